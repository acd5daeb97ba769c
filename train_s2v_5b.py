#!/usr/bin/env python
"""talkverse training entry point (``torchrun --nproc_per_node=N train_s2v_5b.py ...``).

Not implemented in this release: training (dataset, objective, DDP/FSDP2, resumable checkpoints) is a later
milestone. The model it will train, ``talkverse.TalkVerseTransformer3DModel``, and its checkpoint loading are done.
"""

import sys

if __name__ == "__main__":
    print(__doc__.strip(), file=sys.stderr)
    sys.exit(2)
