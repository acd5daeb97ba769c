"""Training (training.md): the config (``config``), model setup and LoRA (``setup``), the flow-matching objective,
the optimiser, checkpoints, DDP/FSDP2 (``parallelize``), data assembly (``data``), the loop (``trainer``) and one run
(``run``). Import the submodules."""
