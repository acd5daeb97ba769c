"""``python -m talkverse.app``: serve the TalkVerse web UI (``--help`` lists every flag)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
