"""Which files of a text cache or latent cache folder are what (training.md §2.3, §12), from their names alone: no
torch, so that ``talkverse-train`` checks its folders before anything loads."""

from __future__ import annotations

from pathlib import Path

# The null ("") text embedding: ours (written by TextEmbeddingCache.write_null and precache), then the reference's.
NULL_EMBEDDING_FILES = ("null.safetensors", "null_embedding.pt")


def null_embedding_file(folder: str | Path) -> Path | None:
    """The folder's null text embedding file, or None."""
    return next((p for p in (Path(folder) / n for n in NULL_EMBEDDING_FILES) if p.is_file()), None)


def cached_windows(folder: str | Path) -> list[Path]:
    """The training windows of a latent cache: every ``**/<clip_id>.safetensors`` except hidden (partial) files and
    the top-level null embedding, sorted."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*.safetensors") if not p.name.startswith(".")
                  and p != folder / NULL_EMBEDDING_FILES[0])
