"""Wan2.2 VAE: key map, strict loading, normalisation, streaming encode/decode (equality and flat memory)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKLWan
from safetensors.torch import save_file

from talkverse.convert.errors import CheckpointError
from talkverse.convert.vae_keys import diffusers_to_original, original_to_diffusers
from talkverse.loaders.vae import load_original_vae, load_vae, vae_config
from talkverse.models.vae import StreamingDecoder, TalkVerseVAE

REPO = Path(__file__).resolve().parents[1]


def tiny_config() -> dict:
    c = vae_config()
    c.update(base_dim=8, decoder_base_dim=12)
    return c


@pytest.fixture(scope="module")
def tiny_vae() -> TalkVerseVAE:
    torch.manual_seed(0)
    vae = TalkVerseVAE(AutoencoderKLWan(**vae_config(tiny_config())).eval())
    with torch.no_grad():  # every tensor random and non-zero (diffusers zero-inits nothing we rely on)
        for name, p in vae.vae.named_parameters():
            if name.endswith("gamma"):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.normal_(0, 0.05)
    return vae


def original_state(vae: TalkVerseVAE) -> dict[str, torch.Tensor]:
    return {diffusers_to_original(k): v.clone().contiguous() for k, v in vae.vae.state_dict().items()}


# ----------------------------------------------------------------------------------------------- key map / config
def test_preset_is_the_5b_vae():
    c = vae_config()
    assert (c["base_dim"], c["decoder_base_dim"], c["z_dim"], c["patch_size"]) == (160, 256, 48, 2)
    assert c["dim_mult"] == [1, 2, 4, 4] and c["temperal_downsample"] == [False, True, True] and c["is_residual"]
    assert len(c["latents_mean"]) == len(c["latents_std"]) == 48
    assert c["latents_mean"][:3] == [-0.2289, -0.0052, -0.1323] and c["latents_std"][-1] == 0.7744


def test_key_map_covers_5b_model_exactly():
    with torch.device("meta"):
        vae = AutoencoderKLWan(**vae_config())
    sd = vae.state_dict()
    assert len(sd) == 196 and sum(v.numel() for v in sd.values()) == 704_688_668
    originals = [diffusers_to_original(k) for k in sd]
    assert len(set(originals)) == 196
    assert all(k.startswith(("encoder.", "decoder.", "conv1.", "conv2.")) for k in originals)
    assert not any(p in k for k in originals for p in ("down_blocks", "up_blocks", "mid_block", "quant_conv",
                                                       "conv_in", "norm_out", "conv_out", "norm1", "conv_shortcut"))
    assert [original_to_diffusers(k) for k in originals] == list(sd)


def test_key_map_examples():
    cases = {
        "conv1.weight": "quant_conv.weight",
        "conv2.bias": "post_quant_conv.bias",
        "encoder.conv1.weight": "encoder.conv_in.weight",
        "decoder.head.0.gamma": "decoder.norm_out.gamma",
        "decoder.head.2.bias": "decoder.conv_out.bias",
        "encoder.middle.1.to_qkv.weight": "encoder.mid_block.attentions.0.to_qkv.weight",
        "decoder.middle.2.residual.6.weight": "decoder.mid_block.resnets.1.conv2.weight",
        "encoder.downsamples.0.downsamples.2.resample.1.weight": "encoder.down_blocks.0.downsampler.resample.1.weight",
        "encoder.downsamples.1.downsamples.2.time_conv.bias": "encoder.down_blocks.1.downsampler.time_conv.bias",
        "encoder.downsamples.1.downsamples.0.shortcut.weight": "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
        "decoder.upsamples.0.upsamples.3.time_conv.weight": "decoder.up_blocks.0.upsampler.time_conv.weight",
        "decoder.upsamples.2.upsamples.1.residual.3.gamma": "decoder.up_blocks.2.resnets.1.norm2.gamma",
    }
    for src, dst in cases.items():
        assert original_to_diffusers(src) == dst, src


def test_key_map_tiny_fixture(parity_dir):
    from talkverse.convert.state_dict_io import LazyStateDict

    sd = LazyStateDict(parity_dir / "vae" / "Wan2.2_VAE_tiny.pth")
    with torch.device("meta"):
        model = AutoencoderKLWan(**tiny_config()).state_dict()
    mapped = {original_to_diffusers(k): sd.shape(k) for k in sd}
    assert set(mapped) == set(model)
    assert all(tuple(model[k].shape) == tuple(s) for k, s in mapped.items())


# ----------------------------------------------------------------------------------------------- loading
@pytest.mark.parametrize("ext", ["pth", "safetensors"])
def test_from_original_roundtrip(tiny_vae, tmp_path, ext):
    sd = original_state(tiny_vae)
    path = tmp_path / f"vae.{ext}"
    torch.save(sd, path) if ext == "pth" else save_file(sd, str(path))
    loaded = load_original_vae(path, config=tiny_config())
    a, b = tiny_vae.vae.state_dict(), loaded.vae.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(p.is_meta for p in loaded.vae.parameters())


def test_from_diffusers_folder(tiny_vae, tmp_path):
    tiny_vae.vae.save_pretrained(tmp_path / "pipe" / "vae")
    for p in (tmp_path / "pipe", tmp_path / "pipe" / "vae"):
        loaded = load_vae(p)
        assert torch.equal(loaded.latents_inv_std, tiny_vae.latents_inv_std)
        assert all(torch.equal(v, loaded.vae.state_dict()[k]) for k, v in tiny_vae.vae.state_dict().items())


def test_missing_and_mismatched_keys_listed(tiny_vae, tmp_path):
    sd = original_state(tiny_vae)
    del sd["decoder.head.2.bias"]
    sd["conv2.weight"] = torch.zeros(16, 16, 1, 1, 1)
    sd["extra.weight"] = torch.zeros(1)
    save_file(sd, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CheckpointError) as e:
        load_original_vae(tmp_path / "bad.safetensors", config=tiny_config())
    msg = str(e.value)
    assert "decoder.conv_out.bias" in msg and "extra.weight" in msg and "post_quant_conv.weight" in msg
    assert "missing keys (1)" in msg and "unexpected keys (1)" in msg and "shape mismatches (1)" in msg


@pytest.mark.parametrize("ext", ["pth", "safetensors"])
def test_truncated_file(tiny_vae, tmp_path, ext):
    sd = original_state(tiny_vae)
    path = tmp_path / f"vae.{ext}"
    torch.save(sd, path) if ext == "pth" else save_file(sd, str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_original_vae(path, config=tiny_config())


def test_dit_checkpoint_given_as_vae(tmp_path):
    dit = {"patch_embedding.weight": torch.zeros(8, 48, 1, 2, 2), "blocks.0.self_attn.q.weight": torch.zeros(8, 8),
           "head.modulation": torch.zeros(1, 2, 8)}
    save_file(dit, str(tmp_path / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(CheckpointError, match="not a VAE checkpoint"):
        load_original_vae(tmp_path / "diffusion_pytorch_model.safetensors", config=tiny_config())


# ----------------------------------------------------------------------------------------------- normalisation
def test_normalisation_forms(tiny_vae):
    c = vae_config()
    mean = torch.tensor(c["latents_mean"]).view(1, 48, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(c["latents_std"], dtype=torch.float32).view(1, 48, 1, 1, 1)
    z = torch.randn(2, 48, 3, 2, 2)
    assert torch.equal(tiny_vae.denormalize(z), z / inv_std + mean)
    mu = torch.randn(2, 48, 3, 2, 2)
    assert torch.equal(tiny_vae.normalize(mu), (mu - mean) * inv_std)
    # casting the module keeps the fp32 constants
    import copy

    bf16 = copy.deepcopy(tiny_vae).to(torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and bf16.latents_inv_std.dtype == torch.float32
    assert torch.equal(bf16.latents_inv_std, inv_std)


def test_encode_decode_shapes_and_clamp(tiny_vae):
    video = torch.rand(1, 3, 11, 32, 32) * 2 - 1
    z = tiny_vae.encode(video)
    assert z.shape == (1, 48, 3, 2, 2) and z.dtype == torch.float32
    assert torch.equal(z, tiny_vae.encode(video[:, :, :9]))  # frames past 1 + 4(T_lat-1) are dropped
    x = tiny_vae.decode(z * 20)
    assert x.shape == (1, 3, 9, 32, 32) and x.min() >= -1 and x.max() <= 1


# ----------------------------------------------------------------------------------------------- streaming
def test_streaming_decode_equals_one_shot(tiny_vae):
    torch.manual_seed(1)
    clips = [torch.randn(1, 48, 2, 2, 2) for _ in range(4)]
    one_shot = tiny_vae.decode(torch.cat(clips, dim=2))
    dec = tiny_vae.streaming_decoder()
    outs = [dec.decode(c) for c in clips]
    assert [o.shape[2] for o in outs] == [5, 8, 8, 8]
    streamed = torch.cat(outs, dim=2)
    assert streamed.shape == one_shot.shape == (1, 3, 29, 32, 32)
    assert (streamed - one_shot).abs().max().item() <= 1e-5
    frames = torch.cat(list(tiny_vae.decode_stream(iter(clips))), dim=2)
    assert (frames - one_shot).abs().max().item() <= 1e-5
    dec.reset()  # a fresh sequence after reset
    assert (dec.decode(clips[0]) - tiny_vae.decode(clips[0])).abs().max().item() <= 1e-5


def test_streaming_encode_equals_one_shot(tiny_vae):
    torch.manual_seed(2)
    video = torch.rand(1, 3, 19, 32, 32) * 2 - 1  # 17 used + 2 trailing frames
    one_shot = tiny_vae.encode(video)
    enc = tiny_vae.streaming_encoder()
    outs = [enc.push(video[:, :, a:b]) for a, b in ((0, 3), (3, 4), (4, 12), (12, 19))]
    assert [o.shape[2] for o in outs] == [1, 0, 2, 2] and enc.pending == 2
    assert (torch.cat(outs, dim=2) - one_shot).abs().max().item() <= 1e-5
    streamed = torch.cat(list(tiny_vae.encode_stream(video.split(5, dim=2))), dim=2)
    assert (streamed - one_shot).abs().max().item() <= 1e-5


def test_streaming_decoder_state_is_constant(tiny_vae):
    dec = StreamingDecoder(tiny_vae)
    sizes, refs = [], []
    for f in dec.iter_frames(torch.randn(1, 48, 6, 2, 2)):
        sizes.append(dec.cache_bytes())
        refs.append(weakref.ref(f))
        del f
    gc.collect()
    assert len(set(sizes[2:])) == 1  # the cache stops growing after the second latent frame
    assert all(r() is None for r in refs)  # yielded frames are not retained by the decoder
    assert dec.frames_out == 1 + 4 * 5


_PROBE = r"""
import resource, sys
import torch
torch.set_num_threads(1)
from diffusers import AutoencoderKLWan
from talkverse.loaders.vae import vae_config
from talkverse.models.vae import TalkVerseVAE

def peak_kib():
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

lat, hw, keep_frames = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
c = vae_config(); c.update(base_dim=4, decoder_base_dim=4)  # small activations next to the frames
torch.manual_seed(0)
dec = TalkVerseVAE(AutoencoderKLWan(**c).eval()).streaming_decoder()
g = torch.Generator().manual_seed(1)
try:  # forget the import-time peak (Linux); else ru_maxrss from here on
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
kept, marks, before = [], [], peak_kib()
for _ in range(4):
    for f in dec.iter_frames(torch.randn(1, 48, lat, hw // 16, hw // 16, generator=g)):
        if keep_frames: kept.append(f.clone())
    marks.append(peak_kib() - before)
print(marks[0], marks[-1])
"""


def _within_bar(one: int, four: int) -> bool:
    return four <= 1.2 * one + 2048  # +2 MiB allocator slack


def test_streaming_decode_peak_memory_flat():
    """Fresh processes stream 4 clips of 20 latent frames at 64x64 and record the peak-RSS growth after clip 1 and
    after clip 4. Streaming stays within 1.2x of one clip; a control run that keeps every decoded frame (~16 MB)
    must break that bar, which shows the probe would see accumulation."""
    # A fixed mmap threshold makes glibc return freed large blocks, so RSS follows the live tensors instead of
    # heap fragmentation (with the dynamic threshold the streaming run's RSS drifts up by allocator noise).
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    procs = {keep: subprocess.Popen([sys.executable, "-c", _PROBE, "20", "64", keep], env=env, cwd=REPO,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for keep in "01"}
    marks = {}
    for keep, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        marks[keep] = tuple(int(m) for m in out.split())
    assert _within_bar(*marks["0"]), marks
    assert not _within_bar(*marks["1"]), marks


def test_vae_parity_suite(parity_dir):
    from talkverse.parity import run_suites

    results = list(run_suites(parity_dir, ["vae"]))
    assert len(results) >= 7
    assert all(r.passed for r in results), [r.line() for r in results if not r.passed]
