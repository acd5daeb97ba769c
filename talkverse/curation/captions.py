"""Stage 9, captions (docs/curation.md): the configured default caption, or, with ``captions.captioner``, a local
vision-language model (transformers ``image-text-to-text``) that writes the paper's structured caption (appearance
and scene, then speaking style) from the clip's middle frame. With ``captions.text_encoder`` (a saved
TalkVersePipeline folder or a umT5 folder) the caption's umT5 embedding goes to ``text_embeddings/<clip_id>
.safetensors`` and the null embedding to ``text_embeddings/null.safetensors``: the trainer's text cache layout."""

from __future__ import annotations

from pathlib import Path

from .encode import video_path
from .records import reject

STAGE = "captions"
PROMPT = ("Describe this video frame in two sentences. First: the speaker's appearance (age, gender, hair, "
          "clothing) and the scene (place, lighting, camera framing). Second: the speaking style (expression, "
          "emotion, head motion, energy).")


def embedding_path(out: Path, clip_id: str) -> Path:
    return Path(out) / "text_embeddings" / f"{clip_id}.safetensors"


class CaptionStage:
    """A Ray actor: loads the captioner and the text encoder once."""

    def __init__(self, cfg, out: str):
        self.cfg, self.out = cfg, Path(out)
        c = cfg.captions
        self.captioner = self.encoder = None
        if c.captioner:
            from transformers import pipeline

            self.captioner = pipeline("image-text-to-text", model=str(c.captioner), device="cpu")
        if c.text_encoder:
            import torch

            from ..data.text_cache import TextEmbeddingCache
            from ..loaders.text_encoder import load_text_encoder

            self.encoder = load_text_encoder(str(c.text_encoder), text_len=int(c.text_len), torch_dtype=torch.float32,
                                             device="cpu")
            self.cache = TextEmbeddingCache(self.out / "text_embeddings", dtype=torch.float32)
            if not (self.out / "text_embeddings" / "null.safetensors").is_file():
                self.cache.write_null(self.encoder.encode([""], output_device="cpu")[0].float()[:1])

    def caption(self, row: dict) -> str:
        if self.captioner is None:
            return str(self.cfg.captions.default)
        from PIL import Image

        from ..media.video import VideoReader

        with VideoReader(video_path(self.out, row["clip_id"])) as r:
            frame = r.read([r.info.num_frames // 2])[0]
        msgs = [{"role": "user", "content": [{"type": "image", "image": Image.fromarray(frame)},
                                             {"type": "text", "text": PROMPT}]}]
        out = self.captioner(text=msgs, max_new_tokens=120, return_full_text=False)
        return " ".join(str(out[0]["generated_text"]).split())

    def __call__(self, row: dict) -> dict:
        if row["stage"]:
            return row
        try:
            row["caption"] = self.caption(row)
            if self.encoder is not None:
                self.cache.write(row["clip_id"], self.encoder.encode([row["caption"]], output_device="cpu")[0].float())
        except Exception as e:  # noqa: BLE001
            return reject(row, STAGE, "caption_failed", f"{type(e).__name__}: {e}")
        return row
