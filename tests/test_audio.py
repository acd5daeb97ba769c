"""Audio front end: decoding (formats, rates, channels, video tracks), errors, 25 fps decimation and bucketing, the
transformers >= 5 last-hidden-state fix, chunked vs one-pass features, and parity with the reference fixtures."""

from __future__ import annotations

from pathlib import Path

import av  # noqa: E402  (the s2v extra; .ci/run installs it)
import librosa  # noqa: E402,F401
import numpy as np
import pytest
import soundfile as sf  # noqa: E402
import torch

from talkverse.loaders.wav2vec import AudioModelError, check_model_folder, load_wav2vec  # noqa: E402
from talkverse.media.audio import AudioError, load_audio  # noqa: E402
from talkverse.models.audio_columns import (  # noqa: E402
    bucket_clips,
    bucket_columns,
    clip_slice,
    decimate_25fps,
    num_frames_50hz,
    reference_num_clips,
)
from talkverse.models.wav2vec import Wav2Vec2Features, fixed_hidden_states  # noqa: E402
from talkverse.testing.tiny import wav2vec_config  # noqa: E402

SR = 16000


def tone(sr: int, seconds: float = 1.0, channels: int = 1) -> np.ndarray:
    """[channels, samples] float32: 440 Hz + 1 kHz, a different gain per channel."""
    t = np.arange(int(sr * seconds)) / sr
    mono = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 1000 * t)
    return np.stack([mono * (1.0 - 0.3 * c) for c in range(channels)]).astype(np.float32)


def write_av(path: Path, data: np.ndarray, sr: int, codec: str, video: bool = False, audio: bool = True) -> Path:
    """Encode [channels, samples] float32 with PyAV (optionally with a video stream, or a video stream only)."""
    layout = "mono" if data.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as out:
        vs = None
        if video:
            vs = out.add_stream("mpeg4", rate=25)
            vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        if audio:
            st = out.add_stream(codec, rate=sr, layout=layout)
            fmt = st.codec_context.codec.audio_formats[0].name
            frame_size = st.codec_context.frame_size or 1024
            resampler = av.AudioResampler(format=fmt, layout=layout, rate=sr)
            for i in range(0, data.shape[1], frame_size):
                chunk = np.ascontiguousarray(data[:, i:i + frame_size])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                frame.sample_rate = sr
                for f in resampler.resample(frame):
                    out.mux(st.encode(f))
            out.mux(st.encode(None))
        if vs is not None:
            for i in range(25):
                img = np.full((32, 32, 3), i * 8, np.uint8)
                out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            out.mux(vs.encode(None))
    return path


def aligned_rel(ours: np.ndarray, ref: np.ndarray, max_shift: int = 2000) -> float:
    """Relative error after the best integer shift of ``ours`` (codec priming delay), over the common part."""
    best = np.inf
    for s in range(0, max_shift, 1):
        a, b = ours[s:], ref[:len(ours) - s]
        n = min(len(a), len(b)) - 800
        if n < SR // 2:
            break
        a, b = a[400:n], b[400:n]
        best = min(best, np.linalg.norm(a - b) / np.linalg.norm(b))
        if best < 1e-3:
            break
    return best


# ---------------------------------------------------------------------------------------------------- decoding
@pytest.fixture(scope="module")
def mono16k() -> np.ndarray:
    return tone(SR)[0]


def test_wav_16k_mono_is_identity(tmp_path, mono16k):
    sf.write(tmp_path / "a.wav", mono16k, SR, subtype="FLOAT")
    y = load_audio(tmp_path / "a.wav")
    assert y.dtype == np.float32 and y.ndim == 1
    np.testing.assert_array_equal(y, mono16k)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_stereo_44k_matches_librosa_load(tmp_path, subtype):
    data = tone(44100, channels=2)
    sf.write(tmp_path / "s.wav", data.T, 44100, subtype=subtype)
    y = load_audio(tmp_path / "s.wav")
    ref, _ = librosa.load(tmp_path / "s.wav", sr=SR)
    assert len(y) == SR
    np.testing.assert_array_equal(y, ref)  # channel mean, then soxr_hq: bit-exact with librosa.load


def test_stereo_is_channel_mean(tmp_path):
    data = tone(SR, channels=2)
    sf.write(tmp_path / "s.wav", data.T, SR, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), data.mean(0), atol=1e-7)


@pytest.mark.parametrize("rate", [8000, 22050, 48000])
def test_any_rate_resampled_to_16k(tmp_path, rate, mono16k):
    sf.write(tmp_path / "r.wav", tone(rate)[0], rate, subtype="FLOAT")
    y = load_audio(tmp_path / "r.wav")
    assert abs(len(y) - SR) <= 1
    n = min(len(y), SR)
    assert np.linalg.norm(y[200:n - 200] - mono16k[200:n - 200]) / np.linalg.norm(mono16k) < 1e-2


@pytest.mark.parametrize("ext,codec,rate,tol", [
    # ogg is written with opus: PyAV's bundled ffmpeg has no vorbis encoder (decoding vorbis is not affected).
    ("flac", "flac", 44100, 1e-4), ("ogg", "libopus", 48000, 0.1),
    ("mp3", "libmp3lame", 44100, 0.1), ("m4a", "aac", 48000, 0.1),
])
def test_compressed_formats(tmp_path, mono16k, ext, codec, rate, tol):
    path = write_av(tmp_path / f"t.{ext}", tone(rate, channels=2), rate, codec)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - SR) < 0.1 * SR  # codecs pad to whole frames
    ref = tone(SR, channels=2).mean(0)
    assert aligned_rel(y, ref) < tol


def test_video_audio_track(tmp_path):
    path = write_av(tmp_path / "v.mp4", tone(48000, channels=2), 48000, "aac", video=True)
    y = load_audio(path)
    assert abs(len(y) - SR) < 0.1 * SR
    assert aligned_rel(y, tone(SR, channels=2).mean(0)) < 0.1


def test_silent_audio_is_valid(tmp_path):
    sf.write(tmp_path / "z.wav", np.zeros(4000, np.float32), 8000)
    y = load_audio(tmp_path / "z.wav")
    assert len(y) == 8000 and not y.any()


# ------------------------------------------------------------------------------------------------------ errors
def _assert_audio_error(path: Path, words: str):
    with pytest.raises(AudioError) as ei:
        load_audio(path)
    msg = str(ei.value)
    assert str(path) in msg and words in msg, msg
    assert isinstance(ei.value, ValueError)
    assert ei.value.__cause__ is None  # no chained deep traceback


def test_error_missing_file(tmp_path):
    _assert_audio_error(tmp_path / "nope.wav", "not found")


def test_error_corrupt_file(tmp_path):
    p = tmp_path / "bad.wav"
    p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" + bytes(range(256)) * 4)
    _assert_audio_error(p, "cannot be decoded")


def test_error_text_file(tmp_path):
    p = tmp_path / "notes.mp3"
    p.write_text("this is not audio\n" * 50)
    _assert_audio_error(p, "cannot be decoded")


def test_error_empty_wav(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0, np.float32), SR)
    _assert_audio_error(p, "no audio samples")


def test_error_zero_byte_file(tmp_path):
    p = tmp_path / "zero.m4a"
    p.write_bytes(b"")
    with pytest.raises(AudioError, match="zero.m4a"):
        load_audio(p)


def test_error_video_without_audio(tmp_path):
    p = write_av(tmp_path / "silent_video.mp4", tone(SR), SR, "aac", video=True, audio=False)
    _assert_audio_error(p, "no audio stream")


def test_model_folder_errors(tmp_path):
    with pytest.raises(AudioModelError, match="not found"):
        check_model_folder(tmp_path / "missing")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(AudioModelError) as ei:
        check_model_folder(tmp_path)
    msg = str(ei.value)
    assert str(tmp_path) in msg and "preprocessor_config.json" in msg and "model.safetensors" in msg
    assert "config.json," not in msg.split("missing")[1].split("preprocessor")[0]


# ----------------------------------------------------------------------------------------- decimation / buckets
def test_num_frames_50hz():
    assert num_frames_50hz(52800) == 164 and num_frames_50hz(8000) == 24
    assert num_frames_50hz(399) == 0 and num_frames_50hz(400) == 1 and num_frames_50hz(720) == 2
    assert num_frames_50hz(int(4.8 * SR)) // 1 == 239  # -> A = 120
    assert -(-num_frames_50hz(int(4.8 * SR)) // 2) == 120 and -(-num_frames_50hz(60 * SR) // 2) == 1500


def synthetic(layers=3, t50=11, c=4) -> torch.Tensor:
    return torch.arange(layers * t50 * c, dtype=torch.float32).reshape(layers, t50, c) + 1


def test_decimation_takes_even_frames_from_zero():
    hs = synthetic(t50=11)
    f = decimate_25fps(hs)
    assert f.shape[1] == 6  # ceil(11/2)
    torch.testing.assert_close(f, hs[:, [0, 2, 4, 6, 8, 10]], rtol=0, atol=0)
    assert decimate_25fps(synthetic(t50=10)).shape[1] == 5


def test_reference_bucketing_rule():
    assert reference_num_clips(82, 120) == 1 and reference_num_clips(82, 12) == 7
    assert reference_num_clips(12, 12) == 2  # an exact multiple gets an extra all-padding clip
    feat = synthetic(t50=5)  # A = 5
    emb = bucket_clips(feat, 2)
    assert emb.shape == (1, 3, 4, 6)  # floor(5/2)+1 = 3 clips
    torch.testing.assert_close(emb[0, :, :, :5], feat.transpose(1, 2), rtol=0, atol=0)
    assert not emb[..., 5:].any()
    assert bucket_clips(feat, 5).shape[-1] == 10 and not bucket_clips(feat, 5)[..., 5:].any()


def test_bucket_explicit_columns_and_clip_slices():
    feat = synthetic(t50=7)
    emb = bucket_columns(feat, 4)  # fewer columns than frames: truncated
    torch.testing.assert_close(emb[0], feat[:, :4].transpose(1, 2), rtol=0, atol=0)
    emb = bucket_clips(feat, 3, num_clips=4)
    assert emb.shape[-1] == 12 and not emb[..., 7:].any()
    for r in range(4):
        s = clip_slice(emb, r, 3)
        assert s.shape == (1, 3, 4, 3)
        torch.testing.assert_close(s, emb[..., 3 * r:3 * r + 3], rtol=0, atol=0)
    with pytest.raises(ValueError):
        bucket_clips(feat, 0)


# -------------------------------------------------------------------------------------------- wav2vec2 model
def tiny_model(layers: int = 2, stable: bool = True, norm: str = "layer"):
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = wav2vec_config(16, layers, intermediate_size=32, conv_dim=(8,) * 7, do_stable_layer_norm=stable,
                         feat_extract_norm=norm)
    model = Wav2Vec2Model(cfg).eval()
    with torch.no_grad():  # make the final LayerNorm visibly non-trivial
        model.encoder.layer_norm.weight.uniform_(0.5, 1.5)
        model.encoder.layer_norm.bias.normal_(0, 0.5)
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, do_normalize=True, return_attention_mask=True)
    return Wav2Vec2Features(model, fe)


def test_last_hidden_state_fix():
    fx = tiny_model()
    iv = fx.normalize(np.random.default_rng(0).standard_normal(SR).astype(np.float32))
    with torch.no_grad():
        out = fx.model(iv[None], output_hidden_states=True)
    hs = fx.hidden_states(iv)
    assert hs.shape == (fx.num_layers + 1, num_frames_50hz(SR), 16)
    torch.testing.assert_close(hs[-1], out.last_hidden_state[0], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(hs[-1], fx.model.encoder.layer_norm(out.hidden_states[-1])[0], rtol=1e-6,
                                   atol=1e-6)
    naive = fx.naive_hidden_states(iv)
    torch.testing.assert_close(hs[:-1], naive[:-1], rtol=0, atol=0)
    assert (hs[-1] - naive[-1]).abs().max() > 0.1  # the naive last entry lacks the final LayerNorm
    torch.testing.assert_close(fixed_hidden_states(out)[:, 0], hs, rtol=0, atol=0)


@pytest.mark.parametrize("stable", [True, False])
def test_layerwise_features_equal_one_pass(stable):
    """The memory-bounded path (front end in frame-aligned chunks of 0.5 s, encoder layer by layer, states decimated
    as they appear) equals the model's own one-pass forward + decimation, for both encoder variants."""
    fx = tiny_model(layers=3, stable=stable)
    w = np.random.default_rng(1).standard_normal(int(4.3 * SR)).astype(np.float32)
    iv = fx.normalize(w)
    one = decimate_25fps(fx.hidden_states(iv))
    for chunk in (0.5, 1.0, 100.0):
        lw = fx.layerwise_features_25fps(iv, chunk_seconds=chunk)
        assert lw.shape == one.shape
        torch.testing.assert_close(lw, one, rtol=1e-3, atol=2e-5)  # elementwise: float rounding of the convs
        for layer in range(lw.shape[0]):  # per state, relative to its norm: the bar is 1e-4
            assert ((lw[layer] - one[layer]).norm() / one[layer].norm()).item() < 1e-5
    torch.testing.assert_close(fx.features_25fps(w), one, rtol=1e-3, atol=2e-5)


def test_layerwise_groupnorm_front_end_runs_in_one_piece():
    """A GroupNorm front end normalises over time, so chunking it would change the result; it must not be chunked."""
    fx = tiny_model(layers=2, stable=False, norm="group")
    iv = fx.normalize(np.random.default_rng(2).standard_normal(3 * SR).astype(np.float32))
    lw, one = fx.layerwise_features_25fps(iv, chunk_seconds=0.5), decimate_25fps(fx.hidden_states(iv))
    assert ((lw - one).norm() / one.norm()).item() < 1e-6


def test_features_call_shapes():
    fx = tiny_model()
    w = np.zeros(int(1.0 * SR), np.float32)  # silence is valid input
    emb = fx(w, frames_per_clip=12)
    a = -(-num_frames_50hz(SR) // 2)
    assert emb.shape == (1, 3, 16, (a // 12 + 1) * 12)
    assert torch.isfinite(emb).all()
    assert fx(w, frames_per_clip=12, num_clips=5).shape[-1] == 60


# ----------------------------------------------------------------------------------------------------- parity
def test_audio_parity(parity_dir):
    from talkverse.parity import get_suite

    results = list(get_suite("audio")(parity_dir))
    assert len(results) == 3
    for r in results:
        assert r.passed, (r.line(), [d for d in r.details if d[1] > d[2]])


def test_fixture_wavs_equal_librosa_load(parity_dir):
    for name in ("speech", "speech_44k_stereo", "silence"):
        path = parity_dir / "audio" / f"{name}.wav"
        np.testing.assert_array_equal(load_audio(path), librosa.load(path, sr=SR)[0])


def test_fixture_model_folder_loads(parity_dir):
    fx = load_wav2vec(parity_dir / "audio" / "tiny_wav2vec2")
    assert fx.num_layers == 4 and not fx.model.training
