#!/usr/bin/env python
"""The reference's entry point: ``python generate.py`` = ``talkverse-generate`` (talkverse/cli/generate.py), with every
flag of the reference TalkVerse generate.py. ``python generate.py --help`` lists them."""

import sys

from talkverse.cli.generate import main

if __name__ == "__main__":
    sys.exit(main())
