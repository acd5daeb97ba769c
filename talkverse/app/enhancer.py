"""Optional prompt enhancement with a local chat model (``--enhancer PATH``; transformers, no download).

A short user prompt is rewritten into the caption style the model was trained on: a visual description of the
speaker and the shot, followed by a description of the audio (voice, tone, pace, emotion) — the two-part form of
the reference's prompt-extension "director" (shared/docs/inference.md §5). The model is any
``AutoModelForCausalLM`` folder whose tokenizer has a chat template; it is loaded on the first click and kept.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

SYSTEM_PROMPT = (
    "You write captions for an audio-driven talking-video model. Rewrite the user's prompt as one English paragraph "
    "of two parts. First, a visual description: who is speaking (apparent age, clothing, hair), their expression and "
    "gestures, the framing (e.g. a close-up facing the camera), the background and the lighting. Second, the audio "
    "style: the voice, its tone, pace and emotion, e.g. 'The audio features a calm female voice speaking clearly at a "
    "moderate pace.' Keep every fact the user gave, invent no names, do not mention subtitles or text on screen, and "
    "write at most 120 words. Answer with the caption only."
)


class EnhancerError(RuntimeError):
    """The enhancer could not produce a prompt; the message is one sentence for the page."""


def clean_caption(text: str) -> str:
    """One paragraph: whitespace collapsed, wrapping quotes and a leading 'Caption:' removed."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"^(caption|prompt)\s*:\s*", "", text, flags=re.IGNORECASE)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    return text


class PromptEnhancer:
    def __init__(self, path: str | Path, device: str = "cpu", max_new_tokens: int = 160, min_new_tokens: int = 8):
        self.path, self.device = Path(path), device
        self.max_new_tokens, self.min_new_tokens = max_new_tokens, min_new_tokens
        self._model = self._tokenizer = None
        self._lock = threading.Lock()

    def messages(self, prompt: str) -> list[dict]:
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt.strip()}]

    def _load(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self._model is None:
            tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            if not getattr(tok, "chat_template", None):
                raise EnhancerError(f"The prompt enhancer at {self.path} has no chat template.")
            model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True).to(self.device).eval()
            self._tokenizer, self._model = tok, model
        return self._tokenizer, self._model

    def enhance(self, prompt: str) -> str:
        import torch

        if not (prompt or "").strip():
            raise EnhancerError("Write a short prompt first; the enhancer rewrites it.")
        with self._lock:
            tok, model = self._load()
            enc = tok.apply_chat_template(self.messages(prompt), add_generation_prompt=True, return_dict=True,
                                          return_tensors="pt")
            enc = {k: v.to(model.device) for k, v in enc.items()}
            pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens,
                                     do_sample=False, pad_token_id=pad)
        text = clean_caption(tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
        if not text:
            raise EnhancerError("The prompt enhancer returned no text; the prompt is unchanged.")
        return text
