"""A random-weight TalkVersePipeline at a tiny size, with every real component class (tests, smoke runs).

Transformer: ``configs/s2v_tiny.yaml`` (the parity-fixture size: text_dim 40, audio_dim 36, 25 audio states).
VAE: ``AutoencoderKLWan`` at base width 4 (the pipeline fixture's tiny VAE shape, z_dim 48, 16x spatial). umT5 with
d_model 40 and a word-level tokenizer; wav2vec2 with 24 layers of width 36 (25 hidden states). Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_WORDS = ("a", "person", "is", "speaking", "to", "the", "camera.", "man", "woman", "talking", "blurry")
TINY_VAE = dict(base_dim=4, decoder_base_dim=4, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
                temperal_downsample=[False, True, True], dropout=0.0, is_residual=True, in_channels=12,
                out_channels=12, patch_size=2, scale_factor_temporal=4, scale_factor_spatial=16)


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


def tiny_pipeline(seed: int = 0):
    """Random tiny TalkVersePipeline (fp32, CPU, eval)."""
    from diffusers import AutoencoderKLWan
    from transformers import UMT5Config, UMT5EncoderModel, Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from ..configs import model_config
    from ..models.transformer_talkverse import TalkVerseTransformer3DModel
    from ..models.vae import vae_config
    from .pipeline_talkverse import TalkVersePipeline
    from .scheduling import make_scheduler

    torch.manual_seed(seed)
    cfg = model_config("s2v_tiny")
    transformer = TalkVerseTransformer3DModel(**cfg).eval()
    with torch.no_grad():  # the spec inits leave the head and padding tokens at zero; make every path visible
        for p in transformer.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else p.numel()
            p.copy_(torch.randn_like(p) / fan_in**0.5)
        transformer.casual_audio_encoder.weights.uniform_(0.5, 1.5)
    full_vae = vae_config()
    vae = AutoencoderKLWan(**TINY_VAE, latents_mean=full_vae["latents_mean"], latents_std=full_vae["latents_std"]).eval()
    t5 = UMT5EncoderModel(UMT5Config(vocab_size=len(TINY_WORDS) + 3, d_model=cfg["text_dim"], d_kv=8, d_ff=48,
                                     num_layers=2, num_heads=4, relative_attention_num_buckets=32,
                                     feed_forward_proj="gated-gelu", dropout_rate=0.0, pad_token_id=0,
                                     eos_token_id=1)).eval()
    w2v_cfg = Wav2Vec2Config(hidden_size=cfg["audio_dim"], num_hidden_layers=cfg["audio_num_layers"] - 1,
                             num_attention_heads=2, intermediate_size=48, conv_dim=(16,) * 7,
                             conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
                             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, do_stable_layer_norm=True,
                             feat_extract_norm="layer", conv_bias=True, vocab_size=8)
    w2v = Wav2Vec2Model(w2v_cfg).eval()
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True, return_attention_mask=True)
    return TalkVersePipeline(transformer=transformer, vae=vae, scheduler=make_scheduler(5.0), text_encoder=t5,
                             tokenizer=tiny_tokenizer(), audio_encoder=w2v, feature_extractor=fe)
