"""Assemble the trainer's batches from a ``TrainConfig`` (training.md §2, §12): latents pre-computed by
``scripts/precache.py`` (``latent_cache``), or raw clips encoded online by the VAE and wav2vec2 (``csv``)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data.batches import BatchSource
from .batch import collate_latent, encode_raw_sample
from .config import TrainingSetupError


class IndexedLatents:
    """A ``CachedLatentDataset`` whose items carry their dataset index (the key of their per-sample draws)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return {**self.dataset[i], "index": i}


class OnlineEncoded:
    """A ``TalkVerseDataset`` encoded per item into latent samples (VAE + wav2vec2 on the training device; captions
    through umT5 when there is no text cache), exactly as precache does."""

    def __init__(self, dataset, vae, wav2vec, text_encoder=None):
        self.dataset, self.vae, self.wav2vec, self.text = dataset, vae, wav2vec, text_encoder

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __getitem__(self, i: int) -> dict:
        item = self.dataset[i]
        if "context" not in item:
            item["context"] = self.text.encode([item["caption"]], output_device="cpu")[0].float()
        sample = encode_raw_sample(item, self.vae, self.wav2vec, self.dataset.num_frames, self.dataset.motion_frames)
        return {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in sample.items()}


def _null_embedding(folder: Path) -> torch.Tensor:
    from ..data.text_cache import TextEmbeddingCache

    try:
        return TextEmbeddingCache(folder).null()
    except KeyError as e:
        raise TrainingSetupError(f"{e.args[0]}; pass --text_cache with the folder that holds it") from None


def build_batch_source(cfg, model_config, device: torch.device, rank: int, world: int):
    """(BatchSource of this rank, the null text context [1, D]) for the model of ``model_config``."""
    collate = lambda s: collate_latent(s, model_config.text_len)  # noqa: E731
    if cfg.latent_cache:
        from ..data.cached import CachedLatentDataset

        try:
            ds = CachedLatentDataset(cfg.latent_cache)
        except FileNotFoundError as e:
            raise TrainingSetupError(str(e)) from None
        null = _null_embedding(Path(cfg.text_cache or cfg.latent_cache))
        source = BatchSource(IndexedLatents(ds), cfg.batch_size, collate, key_fn=ds.key_of, seed=cfg.seed, rank=rank,
                             world_size=world)
        return source, null
    if not cfg.csv:
        raise TrainingSetupError("pass --csv (with --data_root, --text_cache, --wav2vec_dir) or --latent_cache")
    if not (cfg.text_cache or cfg.text_encoder):
        raise TrainingSetupError("pass --text_cache (cached umT5 embeddings) or --text_encoder (encode on the fly)")
    if not cfg.wav2vec_dir:
        raise TrainingSetupError("--wav2vec_dir is required for online audio features")
    from ..data.dataset import TalkVerseDataset
    from ..data.rows import read_rows
    from ..data.text_cache import TextEmbeddingCache
    from ..loaders.vae import load_vae
    from ..loaders.wav2vec import load_wav2vec

    cache = TextEmbeddingCache(cfg.text_cache) if cfg.text_cache else None
    text = None
    if cache is None:
        from ..loaders.text_encoder import load_text_encoder

        tok = cfg.tokenizer or (Path(cfg.ckpt_dir) / "google" / "umt5-xxl")
        text = load_text_encoder(cfg.text_encoder, tokenizer=tok, device=device)
    ds = TalkVerseDataset(read_rows(cfg.csv, cfg.data_root), bucket=cfg.size_bucket, num_frames=cfg.num_frames,
                          motion_frames=model_config.motion_frames, text_cache=cache, seed=cfg.seed,
                          always_use_motion_frames=cfg.always_use_motion_frames)
    vae = load_vae(cfg.vae or (Path(cfg.ckpt_dir) / "Wan2.2_VAE.pth"), config=cfg.vae_config, device=device)
    data = OnlineEncoded(ds, vae, load_wav2vec(cfg.wav2vec_dir, device=device), text)
    null = cache.null() if cache is not None else text.encode([""], output_device="cpu")[0].float()
    return BatchSource(data, cfg.batch_size, collate, key_fn=ds.key_of, seed=cfg.seed, rank=rank,
                       world_size=world), null
