"""Write the face-dubbing test cases (issue 20; talkverse.testing.dub_cases) into a folder, one sub-folder per case:
source.mp4 (1280x720, synthetic talking faces as 288 px squares), track.npz (DWPose-layout keypoints), boxes.npy,
own.wav (the source's speech) and new.wav (other speech).

    python scripts/make_face_dub_cases.py OUT_DIR [--seconds 2] [--seed 0]

Then e.g. ``python generate.py --dub_video OUT_DIR/two/source.mp4 --audio OUT_DIR/two/new.wav --dub_region face
--dub_track OUT_DIR/two/track.npz --dub_face_index 1``.
"""

from __future__ import annotations

import argparse

from talkverse.testing.dub_cases import CASES, make_case, write_case


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each case (default 2)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for kind in CASES:
        paths = write_case(make_case(kind, args.seconds, seed=args.seed), f"{args.out_dir}/{kind}")
        print(f"{kind}: {paths['source']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
