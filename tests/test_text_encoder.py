"""umT5 text encoder: key map, strict loading, prompt cleaning, tokenising, trimming and zero-padding."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from transformers import UMT5EncoderModel

from talkverse.convert.errors import CheckpointError
from talkverse.convert.t5_keys import TIED_KEY, original_to_transformers, transformers_to_original
from talkverse.loaders.text_encoder import (
    load_original_t5,
    load_original_text_encoder,
    load_text_encoder,
    load_tokenizer,
    t5_config,
)
from talkverse.models.text_encoder import TextEncoder, clean_prompt, pad_context

TINY = dict(vocab_size=64, d_model=16, d_kv=4, d_ff=24, num_layers=2, num_heads=4, relative_attention_num_buckets=32,
            relative_attention_max_distance=128, feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6,
            dropout_rate=0.0, pad_token_id=0, eos_token_id=1)
WORDS = ["a", "cat", "sits", "on", "the", "mat", "&", "b", "c", "talking", "man"]


@pytest.fixture(scope="module")
def tiny_model() -> UMT5EncoderModel:
    torch.manual_seed(0)
    model = UMT5EncoderModel(t5_config(TINY)).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "layer_norm" in n:
                p.uniform_(0.5, 1.5)
    return model


def original_state(model) -> dict[str, torch.Tensor]:
    return {transformers_to_original(k): v.clone().contiguous() for k, v in model.state_dict().items()
            if k != TIED_KEY}


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    """A tiny word-level fast tokenizer (tokenizer.json), EOS appended like T5's."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    folder = tmp_path_factory.mktemp("tok")
    fast.save_pretrained(str(folder))
    return folder


# ----------------------------------------------------------------------------------------------- key map / config
def test_key_map_xxl_and_roundtrip():
    with torch.device("meta"):
        model = UMT5EncoderModel(t5_config())
    keys = [k for k in model.state_dict() if k != TIED_KEY]
    assert len(keys) == 242
    originals = [transformers_to_original(k) for k in keys]
    assert len(set(originals)) == 242 and "token_embedding.weight" in originals and "norm.weight" in originals
    assert "blocks.23.pos_embedding.embedding.weight" in originals and "blocks.0.ffn.gate.0.weight" in originals
    assert [original_to_transformers(k) for k in originals] == keys
    c = model.config
    assert (c.d_model, c.num_heads, c.d_ff, c.num_layers, c.vocab_size) == (4096, 64, 10240, 24, 256384)
    assert c.is_gated_act and c.dense_act_fn == "gelu_new"
    n = sum(p.numel() for p in model.parameters())
    assert 5.6e9 < n < 5.8e9


def test_key_map_examples():
    assert original_to_transformers("token_embedding.weight") == "shared.weight"
    assert original_to_transformers("blocks.3.ffn.fc1.weight") == "encoder.block.3.layer.1.DenseReluDense.wi_1.weight"
    assert original_to_transformers("blocks.3.ffn.gate.0.weight") == \
        "encoder.block.3.layer.1.DenseReluDense.wi_0.weight"
    assert original_to_transformers("blocks.0.pos_embedding.embedding.weight") == \
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    assert original_to_transformers("blocks.1.norm2.weight") == "encoder.block.1.layer.1.layer_norm.weight"


# ----------------------------------------------------------------------------------------------- loading
@pytest.mark.parametrize("ext", ["pth", "safetensors"])
def test_load_original_roundtrip(tiny_model, tmp_path, ext):
    sd = original_state(tiny_model)
    path = tmp_path / f"t5.{ext}"
    torch.save(sd, path) if ext == "pth" else save_file(sd, str(path))
    model = load_original_t5(path, config=TINY, torch_dtype=torch.float32)
    assert model.shared.weight is model.encoder.embed_tokens.weight
    ids = torch.randint(3, 64, (2, 8))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids, attention_mask=mask).last_hidden_state,
                           tiny_model(input_ids=ids, attention_mask=mask).last_hidden_state)


def test_bf16_default(tiny_model, tmp_path):
    save_file(original_state(tiny_model), str(tmp_path / "t5.safetensors"))
    te = load_original_text_encoder(tmp_path / "t5.safetensors", config=TINY, text_len=8)
    assert te.model.shared.weight.dtype == torch.bfloat16


def test_missing_unexpected_and_wrong_file(tiny_model, tmp_path):
    sd = original_state(tiny_model)
    del sd["blocks.1.attn.o.weight"]
    sd["blocks.1.attn.x.weight"] = torch.zeros(1)
    save_file(sd, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CheckpointError) as e:
        load_original_t5(tmp_path / "bad.safetensors", config=TINY)
    assert "encoder.block.1.layer.0.SelfAttention.o.weight" in str(e.value)
    assert "blocks.1.attn.x.weight" in str(e.value)
    save_file({"encoder.conv1.weight": torch.zeros(2, 2)}, str(tmp_path / "vae.safetensors"))
    with pytest.raises(CheckpointError, match="not a umT5 encoder"):
        load_original_t5(tmp_path / "vae.safetensors", config=TINY)
    (tmp_path / "trunc.pth").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError):
        load_original_t5(tmp_path / "trunc.pth", config=TINY)


def test_t5_tiny_fixture_loads(parity_dir):
    import json

    cfg = json.loads((parity_dir / "t5" / "config.json").read_text())["transformers_equivalent_config"]
    model = load_original_t5(parity_dir / "t5" / "t5_tiny.pth", config=cfg, torch_dtype=torch.float32)
    assert sum(p.numel() for p in model.parameters()) == 40352


# ----------------------------------------------------------------------------------------------- prompts / tokenizer
def test_clean_prompt():
    assert clean_prompt("  a  &amp;amp; b\n\t c  ") == "a & b c"
    assert clean_prompt("x&lt;y") == "x<y"
    assert clean_prompt("\n") == ""


def test_missing_tokenizer_files(tmp_path):
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "tokenizer_config.json").write_text("{}")
    with pytest.raises(FileNotFoundError) as e:
        load_tokenizer(tmp_path / "tok")
    msg = str(e.value)
    assert str(tmp_path / "tok") in msg and "tokenizer.json" in msg and "spiece.model" in msg
    assert "tokenizer_config.json" in msg  # what the folder holds
    with pytest.raises(FileNotFoundError, match="not found"):
        load_tokenizer(tmp_path / "nowhere")


def test_tokenize_encode_trim(tiny_model, tokenizer_dir):
    te = TextEncoder(tiny_model, load_tokenizer(tokenizer_dir), text_len=8)
    ids, mask = te.tokenize(["a  cat\n sits", "the man"])
    assert ids.shape == mask.shape == (2, 8)
    assert ids[0, :4].tolist() == [3, 4, 5, 1] and ids[0, 4:].tolist() == [0] * 4  # EOS then pad
    assert mask.sum(1).tolist() == [4, 3]
    long_ids, long_mask = te.tokenize(" ".join(["a"] * 20))  # truncated to text_len, EOS kept
    assert long_ids.shape == (1, 8) and long_mask.sum().item() == 8 and long_ids[0, -1].item() == 1
    ctx = te.encode(["a  cat\n sits", "the man"])
    assert [tuple(c.shape) for c in ctx] == [(4, 16), (3, 16)]
    with torch.no_grad():
        raw = tiny_model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(ctx[0], raw[0, :4]) and torch.equal(ctx[1], raw[1, :3])
    single = te.encode("the man")[0]  # batch of 1 equals the batched row
    assert torch.allclose(single, ctx[1], atol=1e-6)


def test_pad_context():
    ctx = [torch.randn(3, 4), torch.randn(5, 4)]
    padded = pad_context(ctx, 6)
    assert padded.shape == (2, 6, 4)
    assert torch.equal(padded[0, :3], ctx[0]) and torch.equal(padded[1, :5], ctx[1])
    assert not padded[0, 3:].any() and not padded[1, 5:].any()
    with pytest.raises(ValueError):
        pad_context([torch.randn(7, 4)], 6)


def test_mask_matters(tiny_model):
    """Real positions of a padded prompt depend on the mask (so encode_ids must pass it)."""
    te = TextEncoder(tiny_model, text_len=8)
    ids = torch.tensor([[5, 6, 7, 1, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    masked = te.encode_ids(ids, mask)[0]
    unmasked = te.encode_ids(ids, torch.ones_like(mask))[0][:4]
    assert masked.shape == (4, 16) and not torch.allclose(masked, unmasked, atol=1e-4)


def test_free_and_output_device(tiny_model):
    import copy

    te = TextEncoder(copy.deepcopy(tiny_model), text_len=8)
    ids = torch.tensor([[5, 1, 0, 0, 0, 0, 0, 0]])
    out = te.encode_ids(ids, (ids != 0).long(), output_device="cpu")
    assert out[0].device.type == "cpu"
    te.free()
    assert te.model is None
    with pytest.raises(RuntimeError, match="freed"):
        te.encode_ids(ids, (ids != 0).long())


def test_from_diffusers(tiny_model, tokenizer_dir, tmp_path):
    from transformers import AutoTokenizer

    tiny_model.save_pretrained(str(tmp_path / "pipe" / "text_encoder"))
    AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(tmp_path / "pipe" / "tokenizer"))
    te = load_text_encoder(tmp_path / "pipe", text_len=8, torch_dtype=torch.float32)
    assert te.tokenizer is not None
    ctx = te.encode(["a cat"])
    ref = TextEncoder(tiny_model, load_tokenizer(tokenizer_dir), text_len=8).encode(["a cat"])
    assert torch.equal(ctx[0], ref[0])


def test_t5_parity_suite(parity_dir):
    from talkverse.parity import run_suites

    results = list(run_suites(parity_dir, ["t5"]))
    assert len(results) == 2
    assert all(r.passed for r in results), [r.line() for r in results if not r.passed]
