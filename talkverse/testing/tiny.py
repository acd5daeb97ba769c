"""Random-weight tiny components with every real class (tests, smoke runs, benchmarks, the demo recipe's start).

Transformer: ``s2v_tiny`` (the parity-fixture size: text_dim 40, audio_dim 36, 25 audio states). VAE:
``AutoencoderKLWan`` at base width 4 (the pipeline fixture's tiny VAE shape, z_dim 48, 16x spatial). umT5 with
d_model 40 and a word-level tokenizer; wav2vec2 with 24 layers of width 36 (25 hidden states). Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..media.constants import SAMPLE_RATE

TINY_WORDS = ("a", "person", "is", "speaking", "to", "the", "camera.", "man", "woman", "talking", "blurry")
TINY_VAE = dict(base_dim=4, decoder_base_dim=4, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
                temperal_downsample=[False, True, True], dropout=0.0, is_residual=True, in_channels=12,
                out_channels=12, patch_size=2, scale_factor_temporal=4, scale_factor_spatial=16)
# The Wan2.1 VAE (S2V-14B) at base width 4: z_dim 16, 8x spatial, no patchify; 2 res blocks, as the real one (the
# Wan2.1 key map of diffusers is written for 2).
TINY_VAE21 = dict(base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                  temperal_downsample=[False, True, True], dropout=0.0, is_residual=False, in_channels=3,
                  out_channels=3, scale_factor_temporal=4, scale_factor_spatial=8)
TINY_CONFIGS = {"s2v-5B": "s2v_tiny", "s2v-14B": "s2v_14b_tiny"}


def randomize(model: torch.nn.Module, seed: int | None = None) -> torch.nn.Module:
    """Every tensor random and non-zero, scaled by 1/sqrt(fan-in): the spec inits leave the head and the padding
    tokens at zero, which would hide whole paths from a test. The audio layer mix stays in [0.5, 1.5]."""
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else p.numel()
            p.copy_(torch.randn_like(p) / fan_in**0.5)
        mix = getattr(getattr(model, "casual_audio_encoder", None), "weights", None)
        if mix is not None:
            mix.uniform_(0.5, 1.5)  # keep the SiLU layer mix well away from 0/0
    return model


def wav2vec_config(hidden_size: int = 36, num_layers: int = 24, **overrides):
    """A tiny ``Wav2Vec2Config`` in the xlsr-53 layout (stable layer norm, layer-norm conv front end, hop 320)."""
    from transformers import Wav2Vec2Config

    kw = dict(hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=2, intermediate_size=48,
              conv_dim=(16,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
              num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, do_stable_layer_norm=True,
              feat_extract_norm="layer", conv_bias=True, vocab_size=8)
    return Wav2Vec2Config(**{**kw, **overrides})


def xlsr53_config(num_layers: int = 24):
    """The wav2vec2-large-xlsr-53 shape (width 1024, 16 heads, ffn 4096, 512-channel front end), random weights."""
    return wav2vec_config(1024, num_layers, num_attention_heads=16, intermediate_size=4096, conv_dim=(512,) * 7,
                          num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16, vocab_size=32)


def tiny_tokenizer(folder: str | Path | None = None):
    """A word-level fast tokenizer that appends EOS like T5's (saved to ``folder`` when given)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(TINY_WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    if folder is not None:
        fast.save_pretrained(str(folder))
    return fast


def tiny_transformer(seed: int = 0, config: str = "s2v_tiny"):
    """Random tiny TalkVerseTransformer3DModel (fp32, CPU, eval), see :func:`randomize`."""
    from ..configs import model_config
    from ..models.transformer_talkverse import TalkVerseTransformer3DModel

    torch.manual_seed(seed)
    return randomize(TalkVerseTransformer3DModel(**model_config(config)).eval())


def tiny_vae(wan21: bool = False):
    """Random tiny AutoencoderKLWan with the Wan2.2 (or, ``wan21``, the Wan2.1) latent statistics."""
    from diffusers import AutoencoderKLWan

    from ..loaders.vae import vae_config

    full = vae_config("vae_wan21" if wan21 else None)
    return AutoencoderKLWan(**(TINY_VAE21 if wan21 else TINY_VAE), latents_mean=full["latents_mean"],
                            latents_std=full["latents_std"]).eval()


def tiny_pipeline(seed: int = 0, model: str = "s2v-5B"):
    """Random tiny TalkVersePipeline (fp32, CPU, eval) of ``model``: "s2v-5B" or "s2v-14B" (pose branch, Wan2.1
    VAE)."""
    from transformers import UMT5Config, UMT5EncoderModel, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from ..pipelines.pipeline_talkverse import TalkVersePipeline
    from ..pipelines.scheduling import make_scheduler

    transformer = tiny_transformer(seed, TINY_CONFIGS[model])
    cfg = transformer.config
    vae = tiny_vae(wan21=model == "s2v-14B")
    t5 = UMT5EncoderModel(UMT5Config(vocab_size=len(TINY_WORDS) + 3, d_model=cfg.text_dim, d_kv=8, d_ff=48,
                                     num_layers=2, num_heads=4, relative_attention_num_buckets=32,
                                     feed_forward_proj="gated-gelu", dropout_rate=0.0, pad_token_id=0,
                                     eos_token_id=1)).eval()
    w2v = Wav2Vec2Model(wav2vec_config(cfg.audio_dim, cfg.audio_num_layers - 1)).eval()
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, do_normalize=True, return_attention_mask=True)
    return TalkVersePipeline(transformer=transformer, vae=vae, scheduler=make_scheduler(5.0), text_encoder=t5,
                             tokenizer=tiny_tokenizer(), audio_encoder=w2v, feature_extractor=fe)
