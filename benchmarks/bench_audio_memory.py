"""Peak host memory of wav2vec2 feature extraction for long audio (issue 3: "prove one pass is fine at 10 minutes").

Each measurement runs in a fresh subprocess (peak RSS via getrusage, Linux/macOS) on a random-weight model with the
full wav2vec2-large-xlsr-53 shape (24 layers, width 1024, conv 512x7, layer-norm front end, stable-LN encoder):

    python benchmarks/bench_audio_memory.py --seconds 600 --mode layerwise --layers 24
    python benchmarks/bench_audio_memory.py --seconds 60 --mode onepass --layers 24

``--mode layerwise`` is what the pipeline runs (``Wav2Vec2Features.__call__``: front end in chunks, encoder layer by
layer, 25 fps states, per-clip buckets). ``--mode onepass`` is ``model(..., output_hidden_states=True)`` + stacking,
the reference's way. Prints one JSON line per run. ``--layers`` < 24 measures a shallower model (same width) when
the full depth takes too long on a small CPU; each extra layer then adds its weights (50.4 MB) plus one 25 fps state
(T25 x 1024 x 4 B) to the peak, which the script reports as ``extrapolated_24_layers_gb``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

FULL_LAYERS = 24
WIDTH = 1024
LAYER_PARAMS = 12_596_224  # one Wav2Vec2EncoderLayerStableLayerNorm at width 1024 / ffn 4096


def peak_gb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**30 if sys.platform == "darwin" else r / 2**20


def worker(seconds: float, mode: str, layers: int, frames_per_clip: int) -> dict:
    import numpy as np
    import torch
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from talkverse.models.audio_columns import decimate_25fps
    from talkverse.models.wav2vec import Wav2Vec2Features
    from talkverse.testing.tiny import xlsr53_config

    torch.manual_seed(0)
    model = Wav2Vec2Model(xlsr53_config(layers)).eval()
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True)
    fx = Wav2Vec2Features(model, fe)
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * 16000))).astype(np.float32)
    base = peak_gb()
    t0 = time.perf_counter()
    if mode == "layerwise":
        out = fx(wave, frames_per_clip)
    else:
        out = decimate_25fps(fx.hidden_states(fx.normalize(wave)))
    dt = time.perf_counter() - t0
    return {"mode": mode, "seconds_audio": seconds, "layers": layers, "out_shape": list(out.shape),
            "model_gb": sum(p.numel() for p in model.parameters()) * 4 / 2**30, "rss_before_gb": round(base, 3),
            "peak_rss_gb": round(peak_gb(), 3), "wall_s": round(dt, 1), "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, nargs="+", default=[60.0], help="audio lengths to measure")
    ap.add_argument("--mode", choices=["layerwise", "onepass"], nargs="+", default=["layerwise"])
    ap.add_argument("--layers", type=int, default=FULL_LAYERS, help="encoder depth (24 = the real model)")
    ap.add_argument("--frames_per_clip", type=int, default=120)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.seconds[0], args.mode[0], args.layers, args.frames_per_clip)))
        return
    for mode in args.mode:
        for s in args.seconds:
            cmd = [sys.executable, __file__, "--worker", "--seconds", str(s), "--mode", mode, "--layers",
                   str(args.layers), "--frames_per_clip", str(args.frames_per_clip)]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            if args.layers < FULL_LAYERS:
                t25 = res["out_shape"][-1] if mode == "layerwise" else res["out_shape"][1]
                copies = 2 if mode == "layerwise" else 4  # 25 fps states + buckets / 50 Hz tuple + stack
                per_layer = (LAYER_PARAMS * 4 + copies * t25 * WIDTH * 4) / 2**30
                res["extrapolated_24_layers_gb"] = round(res["peak_rss_gb"] + (FULL_LAYERS - args.layers) * per_layer, 3)
            print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
