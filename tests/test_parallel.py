"""Ulysses sequence parallelism: the model's own forward with the SP plan installed == the single-process forward,
under real gloo process groups; and generate.py across processes."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from talkverse.models.sequence import SequenceShard
from talkverse.parallel.ulysses import communication_bytes_per_step


def _model(heads: int = 6):
    from talkverse.configs import model_config
    from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel
    from talkverse.testing.tiny import randomize

    torch.manual_seed(0)
    cfg = dict(model_config("s2v_tiny"), num_attention_heads=heads, attention_head_dim=16)
    return randomize(TalkVerseTransformer3DModel(**cfg).eval())


def _inputs(model, motion: bool, batch: int = 1):
    g = torch.Generator().manual_seed(3)
    c = model.config
    f, h, w = 3, 8, 8
    return dict(hidden_states=torch.randn(batch, c.in_channels, f, h, w, generator=g),
                timestep=torch.tensor([700.0] * batch),
                encoder_hidden_states=torch.randn(batch, 7, c.text_dim, generator=g),
                ref_latents=torch.randn(batch, c.in_channels, 1, h, w, generator=g),
                audio_features=torch.randn(batch, c.audio_num_layers, c.audio_dim, 4 * f, generator=g),
                motion_latents=torch.randn(batch, c.in_channels, 19, h, w, generator=g) if motion else None)


def _worker(rank: int, world: int, init_file: str, queue, shard_weights: bool = False):
    from talkverse.parallel.ulysses import apply_sequence_parallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model, sp = _model(), _model()
        apply_sequence_parallel(sp, dist.group.WORLD)
        results = {}
        if shard_weights:  # --dit_fsdp: FSDP2 over the same ranks; each keeps ~1/world of every sharded tensor
            from torch.distributed.device_mesh import DeviceMesh

            from talkverse.parallel.fsdp import apply_weight_sharding

            apply_weight_sharding(sp, DeviceMesh.from_group(dist.new_group(list(range(world))), "cpu"))
            local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in sp.parameters())
            results["local_fraction"] = local / sum(p.numel() for p in model.parameters())
        for motion in (False, True):
            for batch in (1, 2):
                kw = _inputs(model, motion, batch)
                with torch.no_grad():
                    ref = model(**kw).sample
                    out = sp(**kw).sample
                results[(motion, batch)] = ((out - ref).norm() / ref.norm()).item()
        queue.put((rank, results))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("world, shard_weights", [(2, False), (3, False), (2, True)])
def test_sp_forward_equals_single_process(world, shard_weights, tmp_path):
    """First clip (no motion tokens) and a later clip (motion tokens), batch 1 and 2 (CFG), ≤ 1e-5 relative. With
    f=3, 8x8 latents the sequence has 48 + 16 (ref) [+ 84 motion] tokens: 64 and 148 tokens are not multiples of 3,
    so world 3 exercises the padding. With ``shard_weights`` the DiT's weights are also FSDP2-sharded over the ranks
    (``--dit_fsdp``): in the motion case rank 1 holds no noisy token, and must still gather every layer alike."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, world, str(tmp_path / "init"), queue, shard_weights))
             for r in range(world)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for rank, res in results:
        if shard_weights:  # the causal audio encoder (< 5 %) stays whole on every rank
            assert res.pop("local_fraction") < 0.55, res
        for key, rel in res.items():
            assert rel <= 1e-5, (world, rank, key, rel)


def test_shard_arithmetic():
    s = [SequenceShard(r, 3, 148) for r in range(3)]
    assert s[0].padded == 150 and s[0].local == 50 and [x.start for x in s] == [0, 50, 100]
    assert s[2].clamp(48) == 0 and s[0].clamp(48) == 48 and s[1].clamp(200) == 50


def test_world_one_is_the_plain_forward(tmp_path):
    from talkverse.parallel.ulysses import apply_sequence_parallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        model, sp = _model(heads=6), _model(heads=6)
        apply_sequence_parallel(sp, dist.group.WORLD)  # world 1: the same forward
        with torch.no_grad():
            torch.testing.assert_close(sp(**_inputs(model, True)).sample, model(**_inputs(model, True)).sample,
                                       rtol=1e-5, atol=1e-6)
    finally:
        dist.destroy_process_group()


def test_communication_volume_8_gpus():
    """Analytic per-step volume at the 704x1280 continuation-clip shape (28,580 tokens, dim 3072, 30 blocks), bf16."""
    v = communication_bytes_per_step(28_580, 3072, 30, 8, cfg_batch=1)
    # each rank holds ceil(28580 / 8) = 3573 tokens; q, k, v and the output each cross one all_to_all per block,
    # sending 7/8 of the rank's [3573, 3072] bf16 slice: 4 * 30 * 3573 * 3072 * 7/8 * 2 B = 2,305,013,760 B
    assert v["all_to_all_bytes"] == 2_305_013_760
    assert v["gather_bytes"] == 3573 * 192 * 7 * 4


# ------------------------------------------------------------------------------ generate.py across processes
@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    import numpy as np
    import soundfile as sf
    from PIL import Image

    from talkverse.testing.tiny import tiny_pipeline

    root = tmp_path_factory.mktemp("sp")
    tiny_pipeline().save_pretrained(str(root / "pipe"))
    t = np.arange(int(0.52 * 16000)) / 16000  # 13 frames of audio -> 2 clips of 8 frames (5 + 8 kept)
    sf.write(root / "a.wav", (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32),
             16000)
    Image.fromarray((np.random.default_rng(0).random((96, 80, 3)) * 255).astype(np.uint8)).save(root / "face.png")
    return root


def _generate(root, out, nproc=1, *extra):
    import subprocess

    from helpers import REPO

    cmd = [sys.executable, str(REPO / "generate.py")] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
         str(REPO / "generate.py")]
    cmd += ["--ckpt_dir", str(root / "pipe"), "--image", str(root / "face.png"), "--audio", str(root / "a.wav"),
            "--size_bucket", "128x128", "--infer_frames", "8", "--sample_steps", "3", "--base_seed", "11",
            "--device", "cpu", "-q", "--save_file", str(out), "--save_frames_npy", str(out.with_suffix(".npy")), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _frames(path):
    import av
    import numpy as np

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float64)


MODES = {"ulysses": ["--ulysses_size", "2"], "cfg": ["--cfg_parallel"],
         "ulysses_fsdp": ["--ulysses_size", "2", "--dit_fsdp"], "cfg_fsdp": ["--cfg_parallel", "--dit_fsdp"]}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_generate_multi_rank_equals_single(saved_tiny, mode):
    """2 clips: `torchrun --nproc_per_node=2 generate.py --ulysses_size 2`, `--cfg_parallel` (2 ranks) and
    `--ulysses_size 2 --dit_fsdp` and `--cfg_parallel --dit_fsdp` (the DiT weights sharded over both ranks; with CFG
    parallelism the two ranks run different branches through the same layers) write the frames of the single-process
    run (H.264 crf 0, compared on the decoded frames)."""
    single = saved_tiny / "single.mp4"
    if not single.exists():
        res = _generate(saved_tiny, single)
        assert res.returncode == 0, res.stderr[-3000:]
    out = saved_tiny / f"{mode}.mp4"
    res = _generate(saved_tiny, out, 2, *MODES[mode])
    assert res.returncode == 0, res.stderr[-3000:]
    import numpy as np

    a, b = np.load(out.with_suffix(".npy")).astype(np.float64), np.load(single.with_suffix(".npy")).astype(np.float64)
    assert a.shape == b.shape and a.shape[0] == 13  # (8 - 3) + 8 frames, 2 clips
    rel = float(((a - b) ** 2).sum() ** 0.5 / (b ** 2).sum() ** 0.5)
    print(f"{mode}: relative difference of the written frames (float, before uint8) {rel:.3e}")
    assert rel <= 1e-4, rel
    # the mp4s themselves: same frame count; lossy H.264 (crf 10) amplifies 1-LSB rounding flips a little
    da, db = _frames(out), _frames(single)
    assert da.shape == db.shape and np.abs(da - db).mean() < 1.0


def test_generate_rejects_incompatible_sizes(saved_tiny):
    res = _generate(saved_tiny, saved_tiny / "x.mp4", 1, "--ulysses_size", "2")
    assert res.returncode == 2 and "does not match the world size 1" in res.stderr, res.stderr[-2000:]


def test_size_errors():
    from talkverse.parallel.distributed import check_sizes

    check_sizes(4, 2, True, 24)
    with pytest.raises(ValueError, match="must divide the number of attention heads \\(24\\)"):
        check_sizes(5, 5, False, 24)
    with pytest.raises(ValueError, match="does not match the world size 4"):
        check_sizes(4, 4, True, 24)
    with pytest.raises(ValueError, match="does not match the world size 3"):
        check_sizes(3, 2, False)
