"""python -m talkverse.eval VIDEO.mp4 [--audio A] [--method auto|synthetic|mediapipe] [--plot out.png] [--json]"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

DESCRIPTION = """\
Offline evaluation of a talking video (docs: evaluation.md §2, §3).

Lip sync: the AV-corr proxy. A per-frame mouth-openness signal (mediapipe FaceMesh inner-lip aperture/width on real
faces, or the dark-red-pixel readout on the procedural cartoons) is correlated with the log band-passed (300-3400 Hz)
speech energy for lags k in [-max_lag, max_lag] frames. offset = argmax_k r_k (k > 0: the mouth lags the audio),
corr0 = r_0, best = max_k r_k, conf = best - median_k r_k. This is a proxy, NOT SyncNet's Sync-C/Sync-D.

Drift (reference = the first frame): colour chi2 between 16^3-bin RGB histograms, and a pixel-space appearance
distance (mean |difference| of 32x32 thumbnails, a model-free stand-in for identity drift, NOT an identity-embedding
distance), each averaged per second with a least-squares slope per minute.

Exit status: 0 on success, 2 for a missing/unreadable video or audio file or bad arguments.
"""


def _fmt(x, spec="+.3f"):
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def _print_text(ev) -> None:
    print(f"video: {ev.video}  ({ev.num_frames} frames, {ev.width}x{ev.height}, {ev.fps:.3f} fps, "
          f"{ev.num_frames / ev.fps:.2f} s)")
    if ev.sync is None:
        print(f"lip-sync (AV-corr proxy): skipped: {ev.audio_error}")
    else:
        s = ev.sync
        off = "n/a" if s.offset is None else f"{s.offset:+d}"
        print(f"lip-sync (AV-corr proxy, not Sync-C/D): method={ev.method} audio={ev.audio}")
        print(f"  offset={off} frames (k>0: mouth lags audio)  corr0={_fmt(s.corr0)}  best={_fmt(s.best)}  "
              f"conf={_fmt(s.conf)}")
    d = ev.drift
    print("drift vs first frame, per second:")
    print("  colour chi2:         " + " ".join(_fmt(v, ".4f") for v in d.colour_chi2_per_second)
          + f"   slope {_fmt(d.colour_chi2_slope_per_min, '+.4f')}/min")
    print("  appearance distance: " + " ".join(_fmt(v, ".4f") for v in d.appearance_per_second)
          + f"   slope {_fmt(d.appearance_slope_per_min, '+.4f')}/min  (pixel L1 of 32x32 thumbnails)")


def main(argv=None) -> int:
    from talkverse.media.audio import AudioError
    from talkverse.media.video import VideoError
    from talkverse.vision.mouth import METHODS

    from .plot import plot_evaluation
    from .report import evaluate_video

    p = argparse.ArgumentParser(prog="python -m talkverse.eval", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="the video to evaluate (mp4 or anything ffmpeg reads)")
    p.add_argument("--audio", default=None, help="audio file to use instead of the video's own audio track")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="mouth readout: mediapipe (real faces), synthetic (dark-red readout for the procedural "
                        "cartoons) or auto (mediapipe if installed and it finds a face in >50%% of frames, "
                        "else synthetic); default auto")
    p.add_argument("--max_lag", type=int, default=10, help="lag scan range in frames (default 10)")
    p.add_argument("--plot", default=None, metavar="OUT.png",
                   help="write a PNG: mouth vs energy over time, the lag curve, the drift curves")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = p.parse_args(argv)

    try:
        ev = evaluate_video(args.video, audio=args.audio, method=args.method, max_lag=args.max_lag)
    except (VideoError, AudioError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:  # --method mediapipe without mediapipe
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = ev.to_dict()
    if args.plot:
        try:
            out["plot"] = {"path": args.plot, "renderer": plot_evaluation(ev, args.plot)}
        except OSError as e:
            print(f"error: cannot write the plot {args.plot}: {e}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print_text(ev)
        if args.plot:
            print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
