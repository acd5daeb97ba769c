"""Builders for the web-app tests: a tiny random-weight local chat model, the app's stand-in model, test media."""

from __future__ import annotations

import subprocess
from pathlib import Path

CHAT_WORDS = ("a", "the", "person", "woman", "man", "speaks", "talks", "calmly", "to", "camera", "close-up", "voice",
              "warm", "clear", "steady", "pace", "smiling", "office", "light", "soft", "background", "audio",
              "features", "with", "and", "in", "of", "is", "at", "moderate", ".", ",")
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def tiny_chat_model(folder: str | Path, seed: int = 0) -> Path:
    """A 2-layer random LlamaForCausalLM + a word-level tokenizer with a chat template, saved to ``folder``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>", "<|system|>", "<|user|>", "<|assistant|>"]
    vocab = {t: i for i, t in enumerate([*specials, *CHAT_WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", additional_special_tokens=specials[4:])
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024, bos_token_id=1,
                      eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    folder = Path(folder)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def stand_in_pipeline(folder: str | Path) -> Path:
    """The tiny random TalkVersePipeline saved like the demo model (used while talkverse/demo/talkverse-tiny-demo is absent)."""
    from talkverse.testing.tiny import tiny_pipeline

    tiny_pipeline(seed=0).save_pretrained(str(folder))
    return Path(folder)


def speech(path: str | Path, text: str = "Hello, this is a test.") -> Path:
    """espeak-ng speech (the sentence above lasts ~1.6 s: 2 clips of the demo's 24 frames)."""
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    return Path(path)


def astronaut_png(path: str | Path) -> Path:
    from PIL import Image
    from skimage.data import astronaut

    Image.fromarray(astronaut()).save(path)
    return Path(path)
