"""The models (docs/architecture.md): the S2V DiT (``transformer_talkverse``) and its S2V modules (``audio_encoder``,
``audio_injector``, ``frame_packer``, ``rope``, ``sequence``), the VAE wrapper (``vae``), umT5 and wav2vec2 encoding
(``text_encoder``, ``wav2vec``, ``audio_columns``) and the clip geometry (``geometry``, no torch). Loading lives in
``talkverse.loaders``; import the submodules."""
