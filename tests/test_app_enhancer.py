"""Prompt enhancement with a tiny random-weight local chat model (built here; no network): the enhancer itself, and
the page's "Enhance prompt" button served by Gradio and called over its API."""

from __future__ import annotations

import socket

import pytest

from app_builders import tiny_chat_model


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    return tiny_chat_model(tmp_path_factory.mktemp("chat"))


def test_enhancer_rewrites_the_prompt(chat_model):
    from talkverse.app.enhancer import SYSTEM_PROMPT, EnhancerError, PromptEnhancer, clean_caption

    enh = PromptEnhancer(chat_model, max_new_tokens=12)
    msgs = enh.messages("  A woman talks.  ")
    assert msgs == [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "A woman talks."}]
    assert "visual description" in SYSTEM_PROMPT and "audio style" in SYSTEM_PROMPT
    text = enh.enhance("A woman talks to the camera.")
    assert text.strip() and text == clean_caption(text) and len(text.split()) <= 12
    with pytest.raises(EnhancerError, match="Write a short prompt first"):
        enh.enhance("   ")
    assert clean_caption(' Caption:  "A man\n speaks."  ') == "A man speaks."


def test_enhance_button_served_and_clicked(chat_model, tmp_path):
    import gradio as gr
    from gradio_client import Client

    from talkverse.app.enhancer import PromptEnhancer
    from talkverse.app.model import ModelCache
    from talkverse.app.settings import AppSettings
    from talkverse.app.ui import build_ui

    demo = build_ui(AppSettings(output_dir=tmp_path), ModelCache(lambda: None),
                    PromptEnhancer(chat_model, max_new_tokens=16))
    button = next(b for b in demo.blocks.values() if isinstance(b, gr.Button) and b.value == "Enhance prompt")
    assert button.visible is True
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue(default_concurrency_limit=1)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        out = client.predict("A man talks to the camera.", api_name="/enhance_prompt")
        assert isinstance(out, str) and out.strip() and out != "A man talks to the camera."
        with pytest.raises(Exception, match="Write a short prompt first"):  # gr.Error reaches the caller as text
            client.predict("", api_name="/enhance_prompt")
    finally:
        demo.close()
