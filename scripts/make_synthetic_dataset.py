#!/usr/bin/env python
"""Write the procedural talking-face dataset (evaluation.md §6) in the TalkVerse training layout.

Same as ``python -m talkverse.testing.synthetic``; see ``--help``. Example:

    python scripts/make_synthetic_dataset.py --out data/syn_train --num_clips 250 --size 128 --seed 0
    python scripts/make_synthetic_dataset.py --out data/syn_heldout --num_clips 20 --size 128 --seed 1
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from talkverse.testing.synthetic import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
