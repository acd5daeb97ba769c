"""Training data pipeline (training.md §2-§4, §6, §7, §12): real toy files, no mocks."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import load_script
from talkverse.data.audio_window import segment, window_samples
from talkverse.data.batches import BatchSource
from talkverse.data.cached import CachedLatentDataset
from talkverse.data.dataset import TalkVerseDataset
from talkverse.data.roi import gaussian_kernel, latent_weight_map, roi_masks
from talkverse.data.rows import ClipRow, read_rows, reference_dwpose_path
from talkverse.data.sampling import choose_window, pose_index, reference_frame_index, scene_range_25fps
from talkverse.data.text_cache import TextEmbeddingCache
from talkverse.media.video import VideoError, open_clip
from toy_data import write_toy_dataset


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    csv = write_toy_dataset(root, num_clips=2, frames=[150, 100], corrupt=2)
    return root, csv


# ---------------------------------------------------------------- §4 arithmetic
def test_scene_range_trim_map_longest():
    # internal boundary between 99|100: trim 4 each side; 25 fps: same indices
    assert scene_range_25fps([(0, 99), (100, 299)], 25.0, 300) == (104, 299)
    assert scene_range_25fps([(0, 149)], 25.0, 150) == (0, 149)  # no internal boundary, no trim
    # 50 fps: s25 = floor(104*25/50) = 52, e25 = floor(300*25/50) - 1 = 149
    assert scene_range_25fps([(0, 99), (100, 299)], 50.0, 150) == (52, 149)
    # 30 fps: scene (0, 95) -> (0, floor(96*25/30)-1 = 79); scene (104, 199) -> (86, 165): a tie, the first wins
    assert scene_range_25fps([(0, 99), (100, 199)], 30.0, 166) == (0, 79)
    # scene (104, 219) -> (86, floor(220*25/30)-1 = 182) is longer
    assert scene_range_25fps([(0, 99), (100, 219)], 30.0, 200) == (86, 182)
    # clamped to the 25 fps clip length
    assert scene_range_25fps([(0, 1000)], 25.0, 200) == (0, 199)
    assert scene_range_25fps(None, 25.0, 100) is None and scene_range_25fps([(0, 9)], None, 100) is None


def test_choose_window_long_short_reject():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(400):
        w = choose_window(200, (20, 179), rng=rng)
        assert w.has_motion and w.length == 145 and 20 <= w.start and w.start + 145 - 1 <= 179
        starts.add(w.start)
    assert starts == set(range(20, 36))  # uniform over every legal start
    w = choose_window(200, (52, 149), rng=rng)  # 98 frames: main only
    assert not w.has_motion and w.length == 72 and 52 <= w.start <= 149 - 71
    assert choose_window(200, (52, 149), rng=rng, always_use_motion=True) is None
    assert choose_window(71, None, rng=rng) is None
    assert choose_window(200, (0, 70), rng=rng) is None  # scene shorter than 72
    assert choose_window(100, (0, -1), rng=rng) is None  # no usable scene
    w = choose_window(145, None, rng=rng)
    assert w.start == 0 and w.has_motion


def test_reference_frame_exclusion_zone():
    rng = np.random.default_rng(1)
    refs = np.array([reference_frame_index(200, 30, 72, rng) for _ in range(3000)])
    allowed = set(range(0, 15)) | set(range(30 + 72 + 15, 200))
    assert set(refs.tolist()) <= allowed
    assert set(refs.tolist()) == allowed  # both sides, every frame reachable
    # nothing outside: drawn inside the window (motion frames included)
    refs = [reference_frame_index(150, 0, 145, rng) for _ in range(500)]
    assert min(refs) >= 0 and max(refs) <= 144 and min(refs) < 73


def test_pose_index_mapping():
    assert [pose_index(i, 100, 100) for i in (0, 37, 99)] == [0, 37, 99]
    assert pose_index(0, 50, 100) == 0 and pose_index(99, 50, 100) == 49
    assert pose_index(50, 50, 100) == round(50 * 49 / 99) == 25
    assert pose_index(10, 300, 150) == round(10 * 299 / 149)
    assert pose_index(5, 1, 100) == 0


# ---------------------------------------------------------------- §7 ROI
def test_latent_weight_map_closed_forms():
    T, H, W = 72, 160, 160
    z = np.zeros((T, H, W), np.uint8)
    w = latent_weight_map(z, z, 18, 10, 10)
    assert w.shape == (18, 10, 10) and w.dtype == torch.float32 and torch.equal(w, torch.ones(18, 10, 10))
    full = np.ones_like(z)
    assert torch.allclose(latent_weight_map(full, z, 18, 10, 10), torch.full((18, 10, 10), 2.0))  # boost 1
    assert torch.allclose(latent_weight_map(full, full, 18, 10, 10), torch.full((18, 10, 10), 3.0))
    # tiny face: one latent cell of 100 -> a = 0.01 -> boost min(10, 5) = 5
    tiny = z.copy()
    tiny[:, 16:32, 16:32] = 1
    w = latent_weight_map(tiny, z, 18, 10, 10)
    g0 = gaussian_kernel(1.0, 3)[3].item()
    assert w[:, 1, 1] == pytest.approx(torch.full((18,), 1 + 5 * g0 * g0), rel=1e-6)
    assert w.max().item() == pytest.approx(1 + 5 * g0 * g0, rel=1e-6)
    # a = 0.05 (5 cells) -> boost 2; only frames with the face (every 4th main frame is sampled)
    five = z.copy()
    five[0:4, 0:16, 0:80] = 1  # latent frame 0 only
    w = latent_weight_map(five, z, 18, 10, 10)
    assert torch.equal(w[1:], torch.ones(17, 10, 10))
    # at (0, 0): replicate padding makes the row blur 1 and the column blur the taps over rows -3..0 = g[:4].sum()
    assert w[0, 0, 0].item() == pytest.approx(1 + 2 * gaussian_kernel()[:4].sum().item(), rel=1e-5)
    nanface = np.full((T, H, W), np.nan, np.float32)
    assert torch.equal(latent_weight_map(nanface, z, 18, 10, 10), torch.ones(18, 10, 10))


def test_roi_masks_transform_and_validity(tmp_path):
    kp = np.zeros((4, 1, 133, 3), np.float32)
    kp[:, 0, 23:91] = [120.0, 40.0, 0.9]
    kp[:, 0, 23, :] = [130.0, 60.0, 0.9]  # face box (120, 40)-(130, 60)
    kp[:, 0, 24, :] = [0.0, 0.0, 0.9]  # (0, 0): invalid
    kp[:, 0, 25, :] = [190.0, 90.0, 0.0]  # score 0: invalid
    kp[:, 0, 26, :] = [np.nan, 5.0, 0.9]  # not finite: invalid
    kp[3, 0, 23:91, 2] = 0  # frame 3: no valid face
    bbox = np.array([[50, -10, 150, 120]] * 3 + [[np.nan] * 4], np.float32)  # clamped to the 100x200 image
    np.savez(tmp_path / "p.npz", keypoints_info=kp, person_bbox_xyxy=bbox)
    # 100x200 -> cover 64x64: s = 0.64, resized 64x128, left = 32
    face, body = roi_masks(tmp_path / "p.npz", [0, 1, 2, 3], (100, 200), (64, 64), 4)
    assert face.shape == body.shape == (4, 64, 64)
    ys, xs = np.nonzero(face[0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (44, 51, 25, 38)  # [76.8-32, 83.2-32) x [25.6, 38.4)
    assert body[0].all()  # x 32..96 -> 0..64, y clamped 0..100 -> 0..64
    assert not face[3].any() and not body[3].any()


# ---------------------------------------------------------------- §6 audio window
def test_audio_window_sample_counts():
    assert window_samples(0, 145) == (0, 92160)
    assert window_samples(0, 72) == (0, 45440)
    assert window_samples(10, 72) == (6400, 45440)
    wave = np.arange(1, 1001, dtype=np.float32)
    seg = segment(wave, 0, 72)
    assert seg.shape == (45440,) and seg[999] == 1000 and (seg[1000:] == 1000).all()  # padded with the last sample
    assert (segment(wave, 200, 72) == 0).all()  # nothing left: zeros (silence is valid)
    with pytest.raises(ValueError):
        segment(np.full(50000, np.nan, np.float32), 0, 72)


# ---------------------------------------------------------------- rows, text cache
def test_read_rows(tmp_path, caplog):
    (tmp_path / "a.csv").write_text("video_path,caption,scenes,FPS,extra\nx/openhumanvid/videos/c.1.mp4,hi,\"0,10;bad\",30,7\n"
                                    "y/z.mp4,yo,\"0,99;100,199\",,q\n")
    (tmp_path / "b.csv").write_text("video_path,caption,clip_id,dwpose_path\nw.mp4,c,myid,p/w.npz\n")
    with caplog.at_level(logging.WARNING):
        rows = read_rows([tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path)
    assert len(rows) == 3 and "scenes" in caplog.text
    assert rows[0].scenes is None and rows[0].fps == 30.0 and rows[0].extra == {"extra": "7"}
    assert rows[0].clip_id == "x/openhumanvid/videos/c.1" and rows[0].video_path.is_absolute()
    assert rows[1].scenes == [(0, 99), (100, 199)] and rows[1].fps is None
    assert rows[1].dwpose_path == (tmp_path / "y/z.npz").absolute()
    assert rows[2].clip_id == "myid" and rows[2].dwpose_path == (tmp_path / "p/w.npz").absolute()
    assert reference_dwpose_path("d/openhumanvid/videos/a/b.mp4") == "d/openhumanvid/dwpose//a/b.npz"
    assert reference_dwpose_path("d/panda70m/videos/a.mp4") == "d/panda70m/dwpose/a.mp4.npz"
    (tmp_path / "bad.csv").write_text("path,caption\nx.mp4,c\n")
    with pytest.raises(ValueError, match="bad.csv.*video_path"):
        read_rows(tmp_path / "bad.csv", tmp_path)


def test_text_cache_both_layouts(tmp_path):
    cache = TextEmbeddingCache(tmp_path)
    ctx = torch.randn(5, 8)
    cache.write("a/b", ctx)
    assert torch.allclose(cache.get("a/b"), ctx.bfloat16().float()) and cache.get("a/b").dtype == torch.float32
    cache.write_null(torch.randn(8))
    assert cache.null().shape == (1, 8)
    ref = tmp_path / "ref"
    ref.mkdir()
    torch.save(torch.randn(1, 6, 8), ref / "clip.pt")
    torch.save(torch.randn(8), ref / "null_embedding.pt")
    rc = TextEmbeddingCache(ref)
    assert rc.get("clip").shape == (6, 8) and rc.null().shape == (1, 8)
    with pytest.raises(KeyError, match="nope"):
        rc.get("nope")


# ---------------------------------------------------------------- clips, dataset
def test_clip_random_access_matches_streaming(toy):
    root, _ = toy
    path = root / "videos" / "clip_000.mp4"
    idx = [0, 1, 2, 40, 149, 100, 3, 73]
    with open_clip(path) as clip:
        info = clip.info
        assert (info.num_frames, info.fps, info.height, info.width) == (150, 25.0, 64, 64)
        got = clip.read(idx)
        every = np.stack(list(clip.iter_frames(None)))
    assert got.shape == (8, 64, 64, 3) and got.dtype == np.uint8
    assert np.array_equal(got, every[idx])


def test_clip_errors_name_the_file(tmp_path):
    from talkverse.media.writer import VideoWriter

    with VideoWriter(tmp_path / "v30.mp4", fps=30) as vw:
        vw.write(np.zeros((6, 32, 32, 3), np.uint8))
    with pytest.raises(VideoError, match="v30.mp4.*30.000 fps"):
        open_clip(tmp_path / "v30.mp4")
    with pytest.raises(VideoError, match="nothere.mp4: not found"):
        open_clip(tmp_path / "nothere.mp4")
    import soundfile as sf

    sf.write(str(tmp_path / "a.wav"), np.zeros(1600, np.float32), 16000)
    with pytest.raises(VideoError, match="a.wav"):
        open_clip(tmp_path / "a.wav")
    # 25 fps but no audio stream: skipped with reason "audio"
    with VideoWriter(tmp_path / "mute.mp4", fps=25) as vw:
        vw.write(np.zeros((80, 32, 32, 3), np.uint8))
    row = ClipRow(tmp_path / "mute.mp4", "c", None, None, None, None, "mute", {})
    ds = TalkVerseDataset([row], bucket="32x32", max_retries=0)
    with pytest.raises(RuntimeError, match="mute.*no audio stream"):
        ds[0]
    assert ds.skipped == {"audio": 1}


def test_dataset_items_determinism_and_skips(toy, caplog):
    root, csv = toy
    rows = read_rows(csv, root)
    cache = TextEmbeddingCache(root / "text_embeddings")
    ds = TalkVerseDataset(rows, bucket="64x64", text_cache=cache, seed=3)
    long, short = ds[0], ds[1]
    assert long["has_motion"] and long["video"].shape == (3, 145, 64, 64) and long["audio"].shape == (92160,)
    assert not short["has_motion"] and short["video"].shape == (3, 72, 64, 64) and short["audio"].shape == (45440,)
    for it in (long, short):
        assert it["ref"].shape == (3, 1, 64, 64) and it["roi_weight"].shape == (18, 4, 4)
        assert it["video"].dtype == torch.float32 and -1 <= it["video"].min() and it["video"].max() <= 1
        assert it["context"].shape[1] == 40 and it["size"] == (64, 64)
        assert it["roi_weight"].min() >= 1 and it["roi_weight"].max() > 1.5  # face + body present
        r = it["ref_index"]
        assert r < it["start"] - 15 or r >= it["start"] + it["video"].shape[1] + 15 or \
            it["start"] <= r < it["start"] + it["video"].shape[1]
    ds2 = TalkVerseDataset(rows, bucket="64x64", text_cache=cache, seed=3)
    again = ds2[0]
    assert torch.equal(again["video"], long["video"]) and torch.equal(again["audio"], long["audio"])
    assert again["ref_index"] == long["ref_index"]
    ds2.set_epoch(1)
    e1 = [(ds2[i]["start"], ds2[i]["ref_index"]) for i in (0, 1)]
    assert e1 != [(long["start"], long["ref_index"]), (short["start"], short["ref_index"])]  # new epoch, new draws
    # corrupt (garbage bytes) and missing rows: resampled to a good row, counted, warned once per (clip, reason)
    with caplog.at_level(logging.WARNING):
        for i in (2, 3, 2):
            it = ds[i]
            assert it["index"] in (0, 1) and it["requested_index"] == i
    assert ds.skipped["missing"] >= 2 and ds.skipped["video"] >= 1
    assert caplog.text.count("skipping clip videos/bad_000") == 1
    assert caplog.text.count("skipping clip videos/bad_001 (video)") == 1
    assert [ds.key_of(i) for i in range(4)] == [((64, 64), True), ((64, 64), False), None, None]
    import pickle

    assert torch.equal(pickle.loads(pickle.dumps(ds))[1]["video"], short["video"])  # DataLoader workers
    only_bad = TalkVerseDataset(rows[2:], bucket="64x64", max_retries=3)
    with pytest.raises(RuntimeError, match="bad_00"):
        only_bad[0]


# ---------------------------------------------------------------- the bucket sampler
class _Keys:
    """A dataset of integers whose bucket key is given per index."""

    def __init__(self, keys):
        self.keys = keys

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, i):
        return i


def _source(keys, batch, rank=0, world=1, seed=5):
    return BatchSource(_Keys(keys), batch, lambda items: list(items), key_fn=keys.__getitem__, seed=seed, rank=rank,
                       world_size=world)


def test_batch_source_sharding_buckets_and_resume():
    keys = [((64, 64), True)] * 13 + [((64, 128), True)] * 7 + [((64, 64), False)] * 5
    # two ranks x batch 2 see exactly the global batches of one process x batch 4, each from one bucket
    single = _source(keys, 4)
    r0, r1 = _source(keys, 2, 0, 2), _source(keys, 2, 1, 2)
    for _ in range(12):  # more than one epoch (3 + 1 + 1 = 5 global batches per epoch)
        whole, a, b = single.next_batch(), r0.next_batch(), r1.next_batch()
        assert whole == a + b and len({keys[i] for i in whole}) == 1
    assert single.epoch == r0.epoch == 2
    # resume: a fresh source loaded from the state continues with the same batches
    s = _source(keys, 2)
    head = [s.next_batch() for _ in range(4)]
    state = s.state_dict()
    tail = [s.next_batch() for _ in range(6)]
    r = _source(keys, 2)
    r.load_state_dict(state)
    assert [r.next_batch() for _ in range(6)] == tail and head != tail[:4]
    with pytest.raises(ValueError, match="no bucket holds a full global batch of 16"):
        _source(keys, 8, 0, 2)


# ---------------------------------------------------------------- §12 precache round trip
def _tiny_models(folder: Path):
    """Random tiny AutoencoderKLWan (diffusers folder) and wav2vec2 (save_pretrained folder), as in testing/tiny.py."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from talkverse.testing.tiny import tiny_vae, wav2vec_config

    torch.manual_seed(0)
    vae = tiny_vae()
    vae.save_pretrained(str(folder / "vae"))
    Wav2Vec2Model(wav2vec_config()).eval().save_pretrained(str(folder / "w2v"))
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, do_normalize=True,
                             return_attention_mask=True).save_pretrained(str(folder / "w2v"))
    return vae


def test_precache_and_cached_dataset(tmp_path):
    """Short windows (8 main + 9 motion frames) keep the CPU VAE fast; the arithmetic is the 72/73 one scaled down:
    a 17-frame window encodes jointly to 5 latents (motion [:3], x0 [3:]); an 8-frame one to 2 (motion = zeros)."""
    root = tmp_path / "data"
    csv = write_toy_dataset(root, num_clips=2, frames=[40, 14], corrupt=1)
    vae = _tiny_models(tmp_path)
    precache = load_script("precache")
    out = tmp_path / "cache"
    argv = ["--csv", str(csv), "--data_root", str(root), "--text_cache", str(root / "text_embeddings"),
            "--vae", str(tmp_path / "vae"), "--wav2vec_dir", str(tmp_path / "w2v"), "--out", str(out),
            "--bucket", "64x64", "--num_frames", "8", "--motion_frames", "9", "--dtype", "fp32", "--seed", "3",
            "--device", "cpu"]
    assert precache.main(argv) == 0
    ds = CachedLatentDataset(out)
    assert len(ds) == 2  # the missing row is skipped
    items = {ds[i]["clip_id"]: ds[i] for i in range(2)}
    long, short = items["videos/clip_000"], items["videos/clip_001"]
    assert long["has_motion"] and not short["has_motion"]
    for it in (long, short):
        assert it["x0"].shape == (48, 2, 4, 4) and it["motion"].shape == (48, 3, 4, 4)
        assert it["ref"].shape == (48, 1, 4, 4) and it["audio"].shape == (25, 36, 8)
        assert it["roi_weight"].shape == (2, 4, 4) and it["context"].shape[1] == 40 and it["size"] == (64, 64)
        assert it["x0"].dtype == torch.float32
    assert short["motion"].abs().sum() == 0 and long["motion"].abs().sum() > 0
    for it in (long, short):  # the window's last frame never gets an audio column (quirk, §6 step 3)
        assert it["audio"][..., -1].abs().sum() == 0 and it["audio"][..., -2].abs().sum() > 0
    # the cached window equals the dataset's epoch-0 window, encoded jointly
    rows = read_rows(csv, root)
    dsr = TalkVerseDataset(rows, bucket="64x64", num_frames=8, motion_frames=9,
                           text_cache=TextEmbeddingCache(root / "text_embeddings"), seed=3)
    item = dsr.load_row(0, dsr.rng_for(0, 0, epoch=0))
    from talkverse.models.vae import TalkVerseVAE

    lat = TalkVerseVAE(vae).encode(item["video"][None])[0]
    assert lat.shape[1] == 5
    assert torch.allclose(lat[:, 3:], long["x0"], atol=1e-5) and torch.allclose(lat[:, :3], long["motion"], atol=1e-5)
    assert torch.allclose(item["roi_weight"], long["roi_weight"]) and item["roi_weight"].max() > 1.5
    assert torch.allclose(item["context"], long["context"])
    assert ds.key_of(0) == ((64, 64), True) and ds.bucket_of(1) == (64, 64)
    # existing files are kept without --overwrite
    mtime = (out / "videos" / "clip_000.safetensors").stat().st_mtime_ns
    assert precache.main(argv) == 0
    assert (out / "videos" / "clip_000.safetensors").stat().st_mtime_ns == mtime


def test_precache_help():
    text = load_script("precache").build_parser().format_help()
    for flag in ("--csv", "--data_root", "--text_cache", "--vae", "--vae_config", "--wav2vec_dir", "--out",
                 "--bucket", "--num_frames", "--dtype", "--overwrite"):
        assert flag in text
