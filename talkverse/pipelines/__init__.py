"""The TalkVersePipeline (``pipeline_talkverse``) and its parts: argument checks, components built once, conditioning,
CFG (``guidance``), dubbing, outputs, the sampling schedule (``scheduling``), clip bookkeeping (``timeline``), the
default prompts (``prompts``, no torch) and the loader (``loading``). Import the submodules; ``talkverse`` exports
the pipeline and ``load_pipeline``."""
