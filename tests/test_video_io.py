"""Tests for talkverse.media: size tables and the size parser, image loading/fitting, mp4 writing (atomic, with audio)
and the one video reader (streaming with fps resampling, random access)."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from talkverse.media.fitting import fit_image
from talkverse.media.image import ImageError, load_image, to_rgb
from talkverse.media.sizes import BUCKETS, choose_bucket, parse_width_height, resolve_size, table_size
from talkverse.media.video import VideoError, VideoReader, iter_frames, probe_video
from talkverse.media.writer import VideoWriter, frames_to_uint8

# --------------------------------------------------------------------------- buckets


@pytest.mark.parametrize(
    "h, w, b720, b480",
    [
        (1080, 1920, (704, 1280), (448, 896)),  # 16:9 landscape
        (1920, 1080, (1280, 704), (832, 448)),  # 9:16 portrait
        (500, 500, (960, 960), (640, 640)),  # square
    ],
)
def test_choose_bucket_spec_examples(h, w, b720, b480):
    assert choose_bucket(h, w) == b720
    assert choose_bucket(h, w, "fasttalk-720") == b720
    assert choose_bucket(h, w, "fasttalk-480") == b480


def test_choose_bucket_tie_goes_to_first_and_unknown_name():
    # 9/4 = 2.25 is exactly halfway between the 480 keys 2.00 and 2.50 (exact in binary) → the first one wins
    assert choose_bucket(9, 4, "fasttalk-480") == (896, 448)
    assert choose_bucket(1000, 100) == (1920, 512) and choose_bucket(100, 1000) == (448, 2048)
    with pytest.raises(ValueError, match="fasttalk-720"):
        choose_bucket(100, 100, "nope")


def test_bucket_tables():
    assert len(BUCKETS["fasttalk-720"]) == 21 and len(BUCKETS["fasttalk-480"]) == 15
    for table in BUCKETS.values():
        keys = [k for k, _ in table]
        assert keys == sorted(keys)
        for key, (h, w) in table:
            assert h % 64 == 0 and w % 64 == 0
            assert abs(key - h / w) < 0.02
    tok = {hw: (hw[0] // 32) * (hw[1] // 32) for t in BUCKETS.values() for _, hw in t}
    assert tok[(448, 2048)] == 896 and tok[(960, 960)] == 900 and tok[(1920, 512)] == 960
    assert tok[(704, 1280)] == 880 and tok[(1088, 832)] == 884
    assert tok[(320, 1216)] == 380 and tok[(704, 576)] == 396 and tok[(1088, 384)] == 408


def test_table_size():
    assert table_size("1280*704") == (704, 1280)
    assert table_size("1280x704") == (704, 1280)
    assert table_size("448*832") == (832, 448)
    with pytest.raises(ValueError, match=r"1000\*1000 is not in the fasttalk-720/fasttalk-480 tables; valid: 1280\*704"):
        table_size("1000*1000")
    with pytest.raises(ValueError, match="W\\*H"):
        table_size("big")


def test_every_size_string_is_width_first():
    """One parser: "W*H" and "WxH" are width first for --size and for a fixed bucket alike; sizes in code are (H, W)."""
    assert parse_width_height("256x128") == parse_width_height("256*128") == (128, 256)
    assert resolve_size(1000, 10, "256x128") == (128, 256)  # a fixed bucket ignores the source's shape
    assert resolve_size(1000, 10, "fasttalk-720") == (1920, 512)
    assert resolve_size(1, 1, (64, 96)) == (64, 96)
    for bad in ("128", "0x128", "wide"):
        with pytest.raises(ValueError, match="width first"):
            parse_width_height(bad)
    with pytest.raises(ValueError, match="multiples of 32"):
        resolve_size(1, 1, "100x100")


# --------------------------------------------------------------------------- images


def _test_image(h: int = 96, w: int = 128) -> np.ndarray:
    """Smooth synthetic RGB test picture (uint8 [H, W, 3])."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 255, yy / h * 255, (xx + yy) / (w + h) * 255], axis=-1)
    img[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = (250, 40, 40)
    return img.round().astype(np.uint8)


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_load_image_rgb_files(tmp_path, ext):
    arr = _test_image()
    p = tmp_path / f"img.{ext}"
    Image.fromarray(arr).save(p)
    img = load_image(p)
    assert img.mode == "RGB" and img.size == (128, 96)
    err = np.abs(np.asarray(img).astype(int) - arr).mean()
    assert err < (0.01 if ext == "png" else 4.0)


def test_load_image_modes(tmp_path):
    # RGBA: fully transparent → white, opaque kept
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[:, :16] = (10, 20, 30, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = np.asarray(load_image(tmp_path / "a.png"))
    assert (out[:, :16] == (10, 20, 30)).all() and (out[:, 16:] == 255).all()
    # LA
    Image.fromarray(rgba[..., [0, 3]], "LA").save(tmp_path / "la.png")
    assert np.asarray(load_image(tmp_path / "la.png"))[0, 20].tolist() == [255, 255, 255]
    # P with a transparent palette index
    p = Image.fromarray(_test_image()).quantize(16)
    p.info["transparency"] = 0
    p.save(tmp_path / "p.png", transparency=0)
    assert load_image(tmp_path / "p.png").mode == "RGB"
    # L, 1, CMYK
    Image.fromarray(_test_image()[..., 0]).save(tmp_path / "l.png")
    out = np.asarray(load_image(tmp_path / "l.png"))
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 0] == _test_image()[..., 0]).all()
    Image.fromarray(_test_image()).convert("1").save(tmp_path / "b.png")
    assert load_image(tmp_path / "b.png").mode == "RGB"
    Image.fromarray(_test_image()).convert("CMYK").save(tmp_path / "c.jpg")
    assert np.abs(np.asarray(load_image(tmp_path / "c.jpg")).astype(int) - _test_image()).mean() < 6
    # 16-bit gray: scaled to 8 bits, not clipped to white
    g16 = (np.linspace(0, 65535, 64)[None, :].repeat(32, 0)).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    out = np.asarray(load_image(tmp_path / "g16.png"))[..., 0]
    assert out[0, 0] == 0 and out[0, -1] == 255 and 120 < out[0, 32] < 135
    # 32-bit float in [0, 1]
    f = Image.fromarray(np.linspace(0, 1, 64, dtype=np.float32)[None].repeat(32, 0), mode="F")
    out = np.asarray(to_rgb(f))[..., 0]
    assert out[0, 0] == 0 and out[0, -1] == 255


def test_load_image_exif_animated_and_arrays(tmp_path):
    im = Image.fromarray(_test_image(48, 64))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° CW on display
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").size == (48, 64)
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=40)
    assert np.asarray(load_image(tmp_path / "anim.gif"))[5, 5, 0] > 200
    arr = _test_image()
    assert (np.asarray(to_rgb(arr)) == arr).all()
    assert to_rgb(Image.fromarray(arr)).mode == "RGB"


def test_load_image_errors(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("hello, not an image")
    with pytest.raises(ImageError, match="notes.txt.*not a readable image"):
        load_image(txt)
    with pytest.raises(ImageError, match="missing.png: not found"):
        load_image(tmp_path / "missing.png")
    Image.new("RGB", (8, 40)).save(tmp_path / "tiny.png")
    with pytest.raises(ImageError, match="tiny.png.*too small"):
        load_image(tmp_path / "tiny.png")
    assert issubclass(ImageError, ValueError)


def test_fit_cover_shape_and_centre():
    img = np.full((200, 300, 3), 100, np.uint8)
    img[90:110, 140:160] = 255  # a centred white square on gray
    for h, w in [(128, 128), (64, 192), (192, 64)]:
        x = fit_image(img, h, w)
        assert x.shape == (3, h, w) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
        m = (x[0] - x[0].min()).clamp(min=0)
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
        cy, cx = (m * ys).sum() / m.sum(), (m * xs).sum() / m.sum()
        assert abs(cy - (h - 1) / 2) < 1.0 and abs(cx - (w - 1) / 2) < 1.0
        assert x.min() > -0.5  # cover never letterboxes: no black borders


def test_fit_identity_exact():
    arr = _test_image(64, 128)
    for mode in ("cover", "pad-compat"):
        x = fit_image(arr, 64, 128, mode=mode)
        ref = torch.from_numpy(arr).permute(2, 0, 1).float() / 255 * 2 - 1
        assert torch.equal(x, ref)


def test_fit_pad_compat_letterbox():
    img = np.full((720, 1280, 3), 200, np.uint8)  # 1280×720 landscape
    x = fit_image(img, 704, 1280, mode="pad-compat")  # resized to 1251×704 → 14 + 15 black columns
    assert x.shape == (3, 704, 1280)
    black_cols = (x == -1).all(dim=0).all(dim=0)
    assert black_cols[:14].all() and not black_cols[14]
    assert black_cols[-15:].all() and not black_cols[-16]
    assert int(black_cols.sum()) == 29
    # portrait into a landscape bucket → black columns; landscape into a portrait bucket → black rows
    y = fit_image(np.full((80, 40, 3), 200, np.uint8), 64, 128, mode="pad-compat")  # 40×80 → 64×128 → 32 + 32 cols
    y_cols = (y == -1).all(dim=0).all(dim=0)
    assert y_cols[:32].all() and y_cols[-32:].all() and int(y_cols.sum()) == 64
    e = fit_image(np.full((128, 256, 3), 200, np.uint8), 64, 128, mode="pad-compat")  # same aspect: no border
    assert e.min() > -0.5
    z = fit_image(np.full((40, 128, 3), 200, np.uint8), 128, 64, mode="pad-compat")  # → 64×204, cropped wide
    assert z.shape == (3, 128, 64) and (z == -1).all(dim=0).all(dim=1).sum() == 64
    with pytest.raises(ValueError, match="pad-compat"):
        fit_image(img, 64, 64, mode="stretch")


# --------------------------------------------------------------------------- writer


@pytest.fixture
def sine_wav(tmp_path):
    sr = 44100
    t = np.arange(sr) / sr
    p = tmp_path / "sine.wav"
    sf.write(p, 0.3 * np.sin(2 * np.pi * 440 * t), sr)
    return p


def _smooth_frames(t: int, h: int = 64, w: int = 64) -> torch.Tensor:
    """Smooth float frames [3, T, H, W] in [-1, 1]."""
    ys = torch.linspace(-0.8, 0.8, h)[:, None]
    xs = torch.linspace(-0.8, 0.8, w)[None, :]
    f = [torch.stack([xs.expand(h, w), ys.expand(h, w), (xs * ys).expand(h, w)]) * (0.5 + 0.5 * i / t) for i in range(t)]
    return torch.stack(f, dim=1)


def test_frames_to_uint8_rounding():
    x = torch.tensor([10.6 / 255 * 2 - 1, -1.5, 1.5, 1.0, -1.0])
    assert frames_to_uint8(x, "nearest").tolist() == [11, 0, 255, 255, 0]
    assert frames_to_uint8(x, "truncate").tolist() == [10, 0, 255, 255, 0]
    with pytest.raises(ValueError):
        frames_to_uint8(x, "ceil")


def test_writer_with_audio(tmp_path, sine_wav):
    frames = _smooth_frames(30)
    out = tmp_path / "sub" / "out.mp4"
    with VideoWriter(out, fps=25, audio=sine_wav, max_frames=25, metadata={"comment": "seed=123"}) as w:
        w.write(frames[:, :10])
        w.write(frames[None, :, 10:])  # batched layout; the last 5 frames are dropped
        assert w.frames_written == 25
    assert out.exists() and not list(out.parent.glob(".*partial*"))
    with av.open(str(out)) as c:
        assert c.metadata.get("comment") == "seed=123"
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        vs, as_ = c.streams.video[0], c.streams.audio[0]
        assert vs.codec_context.name == "h264" and vs.average_rate == 25
        assert as_.codec_context.name == "aac" and as_.codec_context.profile == "LC"
        assert as_.codec_context.sample_rate == 44100
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert decoded[0].shape == (64, 64, 3) and vs.codec_context.pix_fmt == "yuv420p"
    assert len(decoded) == 25
    for i in (0, 12, 24):
        ref = frames_to_uint8(frames[:, i]).permute(1, 2, 0).numpy().astype(np.float64)
        assert np.abs(decoded[i] - ref).mean() < 3
    info = probe_video(out)
    assert info.has_audio and info.num_frames == 25 and info.fps == 25 and (info.width, info.height) == (64, 64)
    assert info.duration == pytest.approx(1.0, abs=0.05)


def test_writer_numpy_and_validation(tmp_path, sine_wav):
    arr = np.zeros((3, 32, 48, 3), np.uint8)
    path = VideoWriter(tmp_path / "np.mp4").__enter__()
    path.write(arr)
    assert path.close() == tmp_path / "np.mp4" and probe_video(tmp_path / "np.mp4").num_frames == 3
    w = VideoWriter(tmp_path / "odd.mp4")
    with pytest.raises(ValueError, match="even"):
        w.write(torch.zeros(3, 2, 33, 32))
    w.abort()
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(ValueError, match="bad.wav"):
        VideoWriter(tmp_path / "x.mp4", audio=bad)
    assert not list(tmp_path.glob(".x*")) and not (tmp_path / "x.mp4").exists()


def test_writer_audio_resampled_stereo(tmp_path):
    # 37.8 kHz is not an AAC rate → 48 kHz; stereo is kept; audio taken from a file's first audio track
    sr = 37800
    t = np.arange(sr // 2) / sr
    wav = tmp_path / "st.wav"
    sf.write(wav, np.stack([np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 500 * t)], axis=1) * 0.2, sr)
    out = tmp_path / "st.mp4"
    with VideoWriter(out, audio=wav, audio_bitrate="128k") as w:
        w.write(_smooth_frames(5, 32, 32))
    with av.open(str(out)) as c:
        cc = c.streams.audio[0].codec_context
        assert cc.sample_rate == 48000 and cc.channels == 2
        n = sum(f.samples for f in c.decode(audio=0))
    assert abs(n / 48000 - 0.5) < 0.05


def test_writer_atomic(tmp_path, sine_wav):
    out = tmp_path / "final.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, audio=sine_wav) as w:
            w.write(_smooth_frames(4))
            raise RuntimeError("boom")
    assert not out.exists() and list(tmp_path.iterdir()) == [sine_wav]
    out.write_bytes(b"previous result")
    with pytest.raises(RuntimeError):
        with VideoWriter(out) as w:
            w.write(_smooth_frames(4))
            raise RuntimeError("boom")
    assert out.read_bytes() == b"previous result" and sorted(tmp_path.iterdir()) == sorted([out, sine_wav])
    with pytest.raises(ValueError, match="no frames"):  # an empty video is an error, not a file
        with VideoWriter(out):
            pass
    assert out.read_bytes() == b"previous result"


# --------------------------------------------------------------------------- reader


def _index_video(path, fps, n, size=32):
    """Write n frames whose gray level encodes the frame index (8 * i)."""
    frames = np.stack([np.full((size, size, 3), 8 * i + 4, np.uint8) for i in range(n)])
    with VideoWriter(path, fps=fps, crf=0) as w:
        w.write(frames)
    return path


def _indices(path, fps=25.0):
    return [int(round((f.astype(float).mean() - 4) / 8)) for f in iter_frames(path, fps)]


def test_iter_frames_resampling(tmp_path):
    v50 = _index_video(tmp_path / "v50.mp4", 50, 30)
    assert _indices(v50) == list(range(0, 30, 2))
    v12 = _index_video(tmp_path / "v12.mp4", 12.5, 10)
    assert _indices(v12) == [i // 2 for i in range(20)]
    v30 = _index_video(tmp_path / "v30.mp4", 30, 15)
    assert _indices(v30) == [math.floor(k * 30 / 25 + 1e-9) for k in range(12)]
    assert _indices(v50, fps=50.0) == list(range(30))
    info = probe_video(v12)
    assert info.fps == 12.5 and info.num_frames == 10 and not info.has_audio
    first = next(iter_frames(v50))
    assert first.shape == (32, 32, 3) and abs(first.mean() - 4) < 2


def test_random_access_reads_native_frames_by_index(tmp_path):
    """``read`` seeks once per run of nearby indices and returns frames in the order asked, repeats included."""
    v = _index_video(tmp_path / "v.mp4", 25, 30)
    with VideoReader(v) as r:
        got = r.read([3, 27, 3, 0, 29, 14])
        assert [int(round((f.astype(float).mean() - 4) / 8)) for f in got] == [3, 27, 3, 0, 29, 14]
        assert [int(round((f.astype(float).mean() - 4) / 8)) for f in r.iter_frames(None)] == list(range(30))
        with pytest.raises(VideoError, match="frame index 30 outside"):
            r.read([30])


def test_probe_video_errors(tmp_path, sine_wav):
    txt = tmp_path / "clip.txt"
    txt.write_text("nope")
    with pytest.raises(VideoError, match="clip.txt"):
        probe_video(txt)
    with pytest.raises(VideoError, match="missing.mp4: not found"):
        probe_video(tmp_path / "missing.mp4")
    with pytest.raises(VideoError, match="sine.wav: has no video stream"):
        probe_video(sine_wav)
    with pytest.raises(VideoError, match="no video stream"):
        next(iter_frames(sine_wav))
