#!/usr/bin/env python
"""Steps of the demo-model recipe (scripts/train_demo.sh calls them in order).

  encoders  the demo's fixed random umT5 (d_model 40) + word tokenizer, and the random wav2vec2 (width 36, 25 states)
            that scripts/fit_demo_audio_encoder.py starts from
  data      synthetic talking-face clips in the TalkVerse format: train (seed 1), held-out (seed 2), long (seed 3,
            9-10 s), minute (seed 5, 60 s); text embeddings re-encoded with the demo umT5 so training and inference
            see the same contexts
  base      a randomly initialised Wan2.2-TI2V-layout base of talkverse/configs/s2v_demo.yaml (the trainer's --ckpt_dir)
  assemble  merge the newest step-N.safetensors (or, with --average N, the mean of the newest N exports) into the base
            and save the TalkVersePipeline folder (transformer in bf16), plus talkverse/demo/face.png and talkverse/demo/speech.wav
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def encoders(work: Path) -> None:
    from talkverse.testing.tiny import tiny_pipeline

    pipe = tiny_pipeline(seed=0)
    out = work / "encoders"
    pipe.text_encoder.save_pretrained(out / "text_encoder")
    pipe.tokenizer.save_pretrained(out / "tokenizer")
    # the random wav2vec2 is the starting point of scripts/fit_demo_audio_encoder.py (-> encoders/audio_encoder)
    pipe.audio_encoder.save_pretrained(out / "audio_encoder_random")
    pipe.feature_extractor.save_pretrained(out / "audio_encoder_random")
    print(f"encoders in {out}")


def _reencode_text(root: Path, work: Path) -> None:
    import csv

    from transformers import UMT5EncoderModel

    from talkverse.data.text_cache import TextEmbeddingCache
    from talkverse.loaders.text_encoder import load_tokenizer
    from talkverse.models.text_encoder import TextEncoder

    enc = TextEncoder(UMT5EncoderModel.from_pretrained(work / "encoders" / "text_encoder", local_files_only=True).eval(),
                      load_tokenizer(work / "encoders" / "tokenizer"), text_len=16)
    cache = TextEmbeddingCache(root / "text_embeddings")
    with open(root / "metadata.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        clip_id = str(Path(row["video_path"]).with_suffix(""))
        cache.write(clip_id, enc.encode([row["caption"]])[0].float())
    cache.write_null(enc.encode([""])[0].float())


def data(work: Path, num_clips: int) -> None:
    from talkverse.testing.synthetic import write_synthetic_dataset

    for name, n, seed, seconds in (("train", num_clips, 1, (4.0, 6.0)), ("heldout", 10, 2, (4.0, 6.0)),
                                   ("long", 3, 3, (9.0, 10.0)), ("minute", 2, 5, (60.0, 60.0))):
        root = work / name
        if not (root / "metadata.csv").exists():
            write_synthetic_dataset(root, n, size=128, seconds=seconds, seed=seed, text_dim=40)
        _reencode_text(root, work)
        print(f"{name}: {n} clips in {root}")


def base(work: Path) -> None:
    from safetensors.torch import save_file

    from talkverse.configs import model_config
    from talkverse.convert.wan_keys import diffusers_to_original, is_new_module_key
    from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel

    torch.manual_seed(0)
    cfg = model_config("s2v_demo")
    model = TalkVerseTransformer3DModel(**cfg)
    sd = {diffusers_to_original(k): v.contiguous() for k, v in model.state_dict().items()}
    sd = {k: v for k, v in sd.items() if not is_new_module_key(k)}
    out = work / "base"
    out.mkdir(parents=True, exist_ok=True)
    name = "diffusion_pytorch_model-00001-of-00001.safetensors"
    save_file(sd, out / name, metadata={"format": "pt"})
    (out / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": {k: name for k in sd}}))
    (out / "config.json").write_text(json.dumps({
        "_class_name": "WanModel", "dim": cfg["num_attention_heads"] * cfg["attention_head_dim"], "eps": cfg["eps"],
        "ffn_dim": cfg["ffn_dim"], "freq_dim": cfg["freq_dim"], "in_dim": cfg["in_channels"], "model_type": "ti2v",
        "num_heads": cfg["num_attention_heads"], "num_layers": cfg["num_layers"], "out_dim": cfg["out_channels"],
        "text_len": cfg["text_len"]}))
    print(f"base in {out}")


def newest_exports(run: Path, n: int = 1) -> list[Path]:
    files = sorted(run.glob("step-*.safetensors"), key=lambda p: int(p.stem.split("-")[1]))
    if len(files) < n:
        raise SystemExit(f"need {n} step-N.safetensors in {run}, found {len(files)}")
    return files[-n:]


def average_exports(files: list[Path], out: Path) -> Path:
    """Uniform mean of TalkVerse exports (same keys), in float64, written as float32 with the newest file's metadata.

    Averaging the last checkpoints of a constant-LR run (a cheap stand-in for an EMA of the weights) gave the demo
    model a steadier lip-sync score than any single checkpoint (docs/demo.md)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    acc: dict[str, torch.Tensor] = {}
    for f in files:
        for k, v in load_file(f).items():
            acc[k] = acc[k] + v.double() if k in acc else v.double()
    with safe_open(files[-1], "pt") as f:
        meta = f.metadata()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: (v / len(files)).float().contiguous() for k, v in acc.items()}, out, metadata=meta)
    return out


def drop_local_paths(folder: Path) -> None:
    """Remove ``_name_or_path`` (the folder a component was loaded from on this machine) from the saved configs."""
    for cfg in folder.rglob("config.json"):
        data = json.loads(cfg.read_text())
        if data.pop("_name_or_path", None) is not None:
            cfg.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def assemble(work: Path, out: Path, export: Path | None = None, run: Path | None = None, average: int = 1,
             first_clip_motion: str = "zeros") -> None:
    import soundfile as sf
    from diffusers import AutoencoderKLWan
    from PIL import Image
    from transformers import UMT5EncoderModel, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from talkverse.loaders.text_encoder import load_tokenizer
    from talkverse.loaders.transformer import load_transformer
    from talkverse.pipelines.pipeline_talkverse import TalkVersePipeline
    from talkverse.pipelines.scheduling import make_scheduler
    from talkverse.testing.synthetic import babble_audio, draw_identity, reference_image

    if export is None:
        files = newest_exports(run or work / "run", average)
        export = files[-1] if average == 1 else average_exports(
            files, work / "averaged" / f"{files[0].stem}_to_{files[-1].stem}.safetensors")
    transformer = load_transformer(work / "base", export, config="s2v_demo")
    enc = work / "encoders"
    pipe = TalkVersePipeline(transformer=transformer.to(torch.bfloat16), vae=AutoencoderKLWan.from_pretrained(work / "vae", local_files_only=True),
                             scheduler=make_scheduler(5.0),
                             text_encoder=UMT5EncoderModel.from_pretrained(enc / "text_encoder", local_files_only=True),
                             tokenizer=load_tokenizer(enc / "tokenizer"),
                             audio_encoder=Wav2Vec2Model.from_pretrained(enc / "audio_encoder", local_files_only=True),
                             feature_extractor=Wav2Vec2FeatureExtractor.from_pretrained(enc / "audio_encoder", local_files_only=True),
                             first_clip_motion=first_clip_motion)  # docs/demo.md: which mode keeps the identity
    if out.exists():
        shutil.rmtree(out)
    pipe.save_pretrained(str(out))
    drop_local_paths(out)
    (out / "TRAINED_FROM.txt").write_text(f"{export.name} of scripts/train_demo.sh (talkverse/configs/s2v_demo.yaml)"
                                          + (f", the mean of {average} exports" if average > 1 else "") + "\n")
    # Demo inputs: an identity and a babble track that training never saw (seed 4).
    ident = draw_identity(4_000_001)
    Image.fromarray(reference_image(ident, 128)).save(out.parent / "face.png")
    wave, _ = babble_audio(4.0, 4_000_003)
    sf.write(out.parent / "speech.wav", wave, 16000)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"demo pipeline in {out} ({size / 2**20:.1f} MiB), from {export}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["encoders", "data", "base", "assemble"])
    ap.add_argument("--work", default="demo_work", help="working folder")
    ap.add_argument("--num_clips", type=int, default=160, help="training clips (data)")
    ap.add_argument("--out", default="talkverse/demo/talkverse-tiny-demo", help="pipeline folder (assemble)")
    ap.add_argument("--run", default=None, help="training output folder (assemble; default: <work>/run)")
    ap.add_argument("--export", default=None, help="step-N.safetensors to assemble (default: the newest in --run)")
    ap.add_argument("--average", type=int, default=1, help="assemble the mean of the newest N exports in --run")
    ap.add_argument("--first_clip_motion", default="zeros", choices=["drop", "zeros", "reference"],
                    help="the model's first-clip motion default stored in model_index.json (assemble)")
    args = ap.parse_args(argv)
    work = Path(args.work)
    if args.step == "encoders":
        encoders(work)
    elif args.step == "data":
        data(work, args.num_clips)
    elif args.step == "base":
        base(work)
    else:
        assemble(work, Path(args.out), Path(args.export) if args.export else None, Path(args.run) if args.run else None,
                 args.average, args.first_clip_motion)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
