"""Checkpoint loaders, above the models and below the pipelines (docs/architecture.md): the DiT (``transformer``),
the VAE (``vae``), umT5 (``text_encoder``), wav2vec2 (``wav2vec``), and the components of a checkpoint folder in the
original or the Diffusers layout (``components``)."""
