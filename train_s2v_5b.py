#!/usr/bin/env python
"""The reference's entry point: ``python train_s2v_5b.py`` = ``talkverse-train`` (talkverse/cli/train.py), with every
flag of the reference's training script. ``python train_s2v_5b.py --help`` lists them."""

import sys

from talkverse.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
