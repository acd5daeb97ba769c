"""Parallelism for one video on several ranks: the process group (``distributed``), the ("cfg", "sp") layout
(``state``) and Ulysses sequence parallelism (``ulysses``). Applied in one place: ``TalkVersePipeline.enable_parallel``."""
