"""talkverse-generate on bad and odd input, as a new user meets it: every mistake is one stderr line naming the file or
the flag and the problem, exit status 2, nothing written at or beside the target, and no model loaded (torch is never
imported). The catalogue below is the table in docs/inference.md."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from talkverse.demo import demo_model_dir, demo_speech

# Runs the CLI in-process of a fresh interpreter and reports whether torch got imported (i.e. whether anything heavy
# started) after main() returns: an observation of the real entry point, not a mock.
PROBE = """import sys
from talkverse.cli.{cli} import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:  # argparse's own errors
    rc = e.code
print('TORCH' if 'torch' in sys.modules else 'NO_TORCH')
sys.exit(rc)"""


def generate(*args, cwd, timeout=300, cli="generate"):
    return subprocess.run([sys.executable, "-c", PROBE.format(cli=cli), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    Image.fromarray((np.random.default_rng(0).random((96, 80, 3)) * 255).astype(np.uint8)).save(d / "face.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "tiny.png")
    (d / "empty.png").write_bytes(b"")
    (d / "notes.txt").write_text("not media")
    (d / "folder").mkdir()
    t = np.arange(16000) / 16000
    sf.write(d / "speech.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    sf.write(d / "short.wav", np.zeros(1600, np.float32), 16000)  # 0.1 s
    sf.write(d / "empty.wav", np.zeros(0, np.float32), 16000)
    full = d / "full.wav"
    sf.write(full, (0.1 * np.random.default_rng(1).standard_normal(int(8.2 * 16000))).astype(np.float32), 16000,
             subtype="PCM_16")
    (d / "truncated.wav").write_bytes(full.read_bytes()[:44 + 960 * 2])  # header says 8.2 s, 0.06 s of data
    from talkverse.media.writer import VideoWriter

    with VideoWriter(d / "silent.mp4") as w:  # a video without an audio track
        w.write(np.zeros((5, 64, 64, 3), np.uint8))
    with VideoWriter(d / "long.mp4") as w:  # 1 s: longer than the 5-frame face track below
        w.write(np.zeros((25, 64, 64, 3), np.uint8))
    (d / "taken.mp4").write_bytes(b"an earlier result")
    (d / "nofaces.json").write_text("[null, null, null]")  # face dubbing: a box list without a face
    np.save(d / "twofaces.npy", np.tile(np.array([[[4, 4, 20, 20], [40, 4, 56, 20]]], float), (5, 1, 1)))
    (d / "batch_bad.json").write_text("[{\"image\": \"face.png\",")
    (d / "batch_empty.jsonl").write_text("# nothing\n")
    return d


def F(name):
    """A path in the media folder (resolved when the case runs)."""
    return ("media", name)


# (flags, words the one error line must contain); every case runs without --ckpt_dir (the demo model) unless it gives
# one. "media" entries are resolved to files of the fixture above.
CASES = [
    # the portrait
    ([F("missing.png"), F("speech.wav")], ["missing.png", "not found"]),
    ([F("notes.txt"), F("speech.wav")], ["notes.txt", "not a readable image"]),
    ([F("folder"), F("speech.wav")], ["folder", "directory"]),
    ([F("tiny.png"), F("speech.wav")], ["tiny.png", "too small"]),
    ([F("empty.png"), F("speech.wav")], ["empty.png", "not a readable image"]),
    # the speech
    ([F("face.png"), F("missing.wav")], ["missing.wav", "not found"]),
    ([F("face.png"), F("notes.txt")], ["notes.txt", "cannot be decoded as audio"]),
    ([F("face.png"), F("silent.mp4")], ["silent.mp4", "no audio stream"]),
    ([F("face.png"), F("empty.wav")], ["empty.wav", "no audio samples"]),
    ([F("face.png"), F("truncated.wav")], ["truncated.wav", "declares 8.20 s", "only 0.06 s"]),
    ([F("face.png"), F("short.wav")], ["short.wav", "0.10 s long", "at least 0.16 s"]),
    ([F("face.png"), F("folder")], ["folder", "not a regular file"]),
]
INPUT_FLAGS = {0: "--image", 1: "--audio"}
FLAG_CASES = [
    # dubbing source
    (["--dub_video", F("notes.txt")], ["notes.txt", "not a readable video"]),
    (["--dub_video", F("missing.mp4")], ["missing.mp4", "not found"]),
    (["--dub_video", F("speech.wav")], ["speech.wav", "no video stream"]),
    (["--dub_video", F("silent.mp4"), "--dub_strength", "1.5"], ["--dub_strength", "(0, 1]"]),
    (["--dub_strength", "0.5"], ["--dub_strength", "only applies to dubbing"]),
    # dubbing only the face (docs/inference.md "Dubbing only the face")
    (["--dub_video", F("silent.mp4"), "--dub_region", "face"], ["silent.mp4", "no face found in any of its"]),
    (["--dub_video", F("silent.mp4"), "--dub_region", "mouth", "--dub_track", F("nofaces.json")],
     ["nofaces.json", "no face found"]),
    (["--dub_video", F("silent.mp4"), "--dub_region", "face", "--dub_track", F("twofaces.npy"), "--dub_face_index",
      "2"], ["twofaces.npy", "--dub_face_index 2 is out of range: 2 faces found"]),
    (["--dub_video", F("long.mp4"), "--dub_region", "face", "--dub_track", F("twofaces.npy")],
     ["twofaces.npy", "the track has 5 frames", "long.mp4 has 25"]),
    (["--dub_video", F("silent.mp4"), "--dub_region", "lips"], ["--dub_region", "invalid choice: 'lips'"]),
    (["--dub_region", "face"], ["--dub_region", "only applies to dubbing"]),
    # the output
    (["--save_file", F("folder")], ["folder", "is a folder"]),
    (["--save_file", F("notes.txt/out.mp4")], ["notes.txt", "is a file, not a folder"]),
    (["--save_file", "/proc/talkverse-test/out.mp4"], ["/proc/talkverse-test/out.mp4", "cannot write there"]),
    (["--save_file", F("taken.mp4")], ["taken.mp4", "exists", "--overwrite"]),
    (["--output_dir", F("notes.txt")], ["notes.txt", "is a file, not a folder"]),
    # sizes and lengths
    (["--infer_frames", "7"], ["--infer_frames", "multiple of 4"]),
    (["--infer_frames", "164"], ["--infer_frames", "[4, 160]"]),
    (["--size", "100*100"], ["100*100", "not in the fasttalk-720/fasttalk-480 tables"]),
    (["--size", "big"], ["big", "W*H"]),
    (["--size_bucket", "100x100"], ["100x100", "multiples of 32"]),
    (["--size_bucket", "tall"], ["tall", "fasttalk-720"]),
    (["--num_clip", "0"], ["--num_clip", "positive integer"]),
    # sampling and encoding
    (["--sample_steps", "0"], ["--sample_steps", "at least 1"]),
    (["--sample_guide_scale", "-1"], ["--sample_guide_scale", ">= 0"]),
    (["--sample_shift", "0"], ["--sample_shift", "positive"]),
    (["--sync_shift_frames", "-2"], ["--sync_shift_frames", ">= 0"]),
    (["--crf", "60"], ["--crf", "0..51"]),
    (["--audio_bitrate", "loud"], ["--audio_bitrate", "192k"]),
    (["--sample_solver", "euler"], ["--sample_solver", "invalid choice"]),
    (["--cfg_truncation", "2"], ["--cfg_truncation", "[0, 1]"]),
    (["--cache", "mag"], ["--cache", "mag_ratios"]),
    (["--cache", "first_block", "--cache_threshold", "-1"], ["--cache", "threshold must be >= 0"]),
    (["--cache", "mag", "--cache_mag_ratios", "1,x"], ["--cache_mag_ratios", "comma-separated numbers"]),
    # devices and parallelism
    (["--device", "cuda"], ["--device cuda", "no CUDA device"]),
    (["--device", "gpu0"], ["--device", "cpu, cuda or cuda:N"]),
    (["--ulysses_size", "2"], ["--ulysses_size 2", "world size 1"]),
    (["--cfg_parallel", "--sample_guide_scale", "1"], ["--cfg_parallel", "needs CFG"]),
    (["--dit_fsdp"], ["--dit_fsdp", "--ulysses_size"]),
    # the model
    (["--task", "s2v-5B"], ["--ckpt_dir is required", "s2v-5B"]),
    (["--ckpt_dir", F("missing_model")], ["missing_model", "not found"]),
    (["--ckpt_dir", demo_model_dir(), "--model_config", "s2v_tiny"], ["--model_config", "its own transformer config"]),
    (["--ckpt_dir", demo_model_dir(), "--wav2vec_dir", F("folder")], ["--wav2vec_dir", "its own audio_encoder"]),
    # batch files
    (["--batch_file", F("missing.jsonl")], ["missing.jsonl", "cannot read batch file"]),
    (["--batch_file", F("batch_bad.json")], ["batch_bad.json", "invalid JSON"]),
    (["--batch_file", F("batch_empty.jsonl")], ["batch_empty.jsonl", "no items"]),
    (["--batch_file", F("batch_empty.jsonl"), "--image", F("face.png")], ["--image", "not used with --batch_file"]),
]


def _resolve(args, media):
    return [str(media / a[1]) if isinstance(a, tuple) else str(a) for a in args]


def _check_one_line(proc, needles, where):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, (where, proc.returncode, proc.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), (where, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (where, needle, lines[0])
    assert proc.stdout.strip().splitlines()[-1] == "NO_TORCH", (where, "a model started loading")


def test_catalogue_of_bad_inputs(media, tmp_path):
    """More than 30 mistakes; each: exit 2, one line naming the file or flag, nothing written, no model loaded."""
    assert len(CASES) + len(FLAG_CASES) >= 30
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p.name for p in media.iterdir())
    for (image, audio), needles in CASES:
        proc = generate("--image", _resolve([image], media)[0], "--audio", _resolve([audio], media)[0], cwd=work)
        _check_one_line(proc, needles, (image, audio))
    for flags, needles in FLAG_CASES:
        args = _resolve(flags, media)
        if "--batch_file" not in flags and "--dub_video" not in flags:
            args = ["--image", str(media / "face.png"), "--audio", str(media / "speech.wav"), *args]
        elif "--dub_video" in flags:
            args = ["--audio", str(media / "speech.wav"), *args]
        _check_one_line(generate(*args, cwd=work), needles, flags)
    # nothing was written anywhere: not in the working folder, not beside any target
    assert [p for p in work.rglob("*") if p.is_file()] == []
    assert sorted(p.name for p in media.iterdir()) == before
    assert (media / "taken.mp4").read_bytes() == b"an earlier result"


def test_check_ckpt_uses_the_same_exit_status(tmp_path):
    proc = generate("--check_ckpt", "--ckpt_dir", tmp_path, cwd=tmp_path)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and str(tmp_path) in lines[0], proc.stderr[-2000:]


def test_help_documents_the_exit_statuses():
    out = subprocess.run([sys.executable, "-m", "talkverse.cli.generate", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for part in ("exit status: 0 written", "1 generation failed", "2 a bad argument", "130 interrupted"):
        assert part in text, part


@pytest.mark.slow
def test_demo_on_user_inputs_warns_and_never_overwrites(media, tmp_path):
    """--image/--audio without --ckpt_dir: the demo model, named, on the user's inputs; the output is named from
    them; a small portrait is upscaled with a warning; -q prints no bar, -v the per-clip stage times; a second run
    refuses to overwrite."""
    args = ["--image", media / "face.png", "--audio", media / "speech.wav", "-q", "-v"]
    proc = generate(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tiny demo model" in proc.stderr
    assert "face.png: 80x96 is smaller than the 128x128 video; it is upscaled" in proc.stderr
    assert "clip 1/2: motion encode" in proc.stderr and "denoise" in proc.stderr and "decode" in proc.stderr
    assert "it/s" not in proc.stderr and "Loading" not in proc.stderr  # no progress bars with -q
    out = tmp_path / "outputs" / "face_128x128_24f_0.mp4"
    assert out.is_file() and f"wrote {out.relative_to(tmp_path)}" in proc.stdout
    again = generate(*args, cwd=tmp_path)
    assert again.returncode == 2 and "exists; pass --overwrite" in again.stderr
    assert generate(*args, "--overwrite", cwd=tmp_path).returncode == 0


@pytest.mark.slow
def test_ctrl_c_during_a_clip_leaves_nothing(tmp_path):
    """SIGINT while clips are being generated: exit 130, 'interrupted; nothing written', no file at or beside the
    target."""
    target = tmp_path / "out" / "talk.mp4"
    cmd = [sys.executable, "-m", "talkverse.cli.generate", "--audio", str(demo_speech()), "--sample_steps", "400",
           "--save_file", str(target)]
    # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT ignored: restore the
    # default so the child gets KeyboardInterrupt however the test run itself was launched.
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    partial = target.with_name(".talk.partial.mp4")
    deadline = time.time() + 240
    while not partial.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert partial.exists(), "generation did not start"
    time.sleep(1.0)  # inside the first clip's denoising
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == "interrupted; nothing written"
    assert "Traceback" not in err
    assert list(target.parent.iterdir()) == []


# ---------------------------------------------------------------- talkverse-train
@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    """Folders shaped like a latent cache, a text cache and a resume state; every case fails on its flags before any
    of their files is read."""
    d = tmp_path_factory.mktemp("train_bad")
    (d / "cache" / "videos").mkdir(parents=True)
    (d / "cache" / "videos" / "clip_0.safetensors").write_bytes(b"x")
    (d / "cache" / "null.safetensors").write_bytes(b"x")
    (d / "no_null" / "v").mkdir(parents=True)
    (d / "no_null" / "v" / "clip_0.safetensors").write_bytes(b"x")
    (d / "empty").mkdir()
    (d / "afile").write_text("not a folder")
    (d / "metadata.csv").write_text("video_path,caption\n")
    return d


# (flags after --ckpt_dir <demo> --latent_cache <cache>, words the one error line must contain)
TRAIN_CASES = [
    (["--ckpt_dir", ("f", "missing")], ["--ckpt_dir", "missing", "not found"]),
    (["--ckpt_dir", ("f", "afile")], ["--ckpt_dir", "afile", "not a folder"]),
    (["--model_config", "s2v_tiny"], ["--model_config", "saved pipeline", "drop --model_config"]),
    (["--model_config", "nope"], ["--model_config", "unknown config preset 'nope'"]),
    (["--init_ckpt", ("f", "missing.safetensors")], ["--init_ckpt", "missing.safetensors", "not found"]),
    (["--latent_cache", ("f", "missing")], ["--latent_cache", "missing", "not found"]),
    (["--latent_cache", ("f", "empty")], ["--latent_cache", "empty", "no cached windows"]),
    (["--latent_cache", ("f", "no_null")], ["--latent_cache", "no_null", "no null text embedding", "--text_cache"]),
    (["--latent_cache", "", "--csv", ("f", "metadata.csv")], ["--csv needs --text_cache", "--text_encoder"]),
    (["--latent_cache", ""], ["pass --latent_cache", "--csv"]),
    (["--latent_cache", "", "--csv", ("f", "missing.csv")], ["--csv", "missing.csv", "not found"]),
    (["--output_path", ("f", "afile")], ["--output_path", "afile", "is a file, not a folder"]),
    (["--output_path", ("f", "afile/run")], ["--output_path", "afile", "is a file, not a folder"]),
    (["--resume", ("f", "empty")], ["--resume", "empty", "not a resume state"]),
    (["--resume", ("f", "missing_state")], ["--resume", "missing_state", "not found"]),
    (["--device", "cuda"], ["--device cuda", "no CUDA device"]),
    (["--max_steps", "0"], ["--max_steps 0", "at least 1"]),
    (["--batch_size", "0"], ["--batch_size 0", "at least 1"]),
    (["--learning_rate", "-0.0001"], ["--learning_rate -0.0001", ">= 0"]),
    (["--max_grad_norm", "0"], ["--max_grad_norm 0.0", "positive"]),
    (["--learning_rate", "abc"], ["--learning_rate", "invalid float value"]),
    (["--text_dropout", "2"], ["--text_dropout 2.0", "[0, 1]"]),
    (["--num_frames", "10"], ["--num_frames 10", "multiple of 4"]),
    (["--size_bucket", "100x100"], ["--size_bucket", "multiples of 32"]),
    (["--timestep_sampling", "shifted:x"], ["--timestep_sampling", "shifted:x"]),
    (["--unfreeze_strategy", "bogus"], ["--unfreeze_strategy", "'bogus'"]),
    (["--gradient_checkpointing", "maybe"], ["--gradient_checkpointing", "true/false"]),
    (["--distributed_policy", "zero3"], ["--distributed_policy", "invalid choice"]),
]


def test_train_catalogue_of_bad_inputs(run_files, tmp_path):
    """talkverse-train on bad flags and folders: exit 2, one line naming the flag and the problem, no run folder
    written, torch never imported (so no model loaded)."""
    for flags, needles in TRAIN_CASES:
        args = [str(run_files / a[1]) if isinstance(a, tuple) else a for a in flags]
        given = dict(zip(args[::2], args[1::2]))
        base = {"--ckpt_dir": str(demo_model_dir()), "--latent_cache": str(run_files / "cache"),
                "--output_path": str(tmp_path / "run")}
        merged = {**base, **given}
        argv = [x for k, v in merged.items() if v != "" for x in (k, v)]
        proc = generate(*argv, cwd=tmp_path, cli="train")
        _check_one_line(proc, needles, flags)
    assert not (tmp_path / "run").exists()


def test_a_copy_of_the_demo_runs_at_the_demo_settings(tmp_path):
    """--ckpt_dir naming a saved pipeline with the demo's transformer config (a fine-tune exported from it) resolves
    to --task s2v-tiny-demo (128x128, 24 frames, 20 steps), not the 720p defaults; another saved pipeline does not."""
    import json
    import shutil

    from talkverse.cli.demo_task import apply_demo_task
    from talkverse.cli.generate import build_parser

    copy = tmp_path / "my_fine_tune"
    (copy / "transformer").mkdir(parents=True)
    shutil.copy(demo_model_dir() / "model_index.json", copy)
    shutil.copy(demo_model_dir() / "transformer" / "config.json", copy / "transformer")
    other = tmp_path / "other"
    shutil.copytree(copy, other)
    cfg = json.loads((other / "transformer" / "config.json").read_text())
    (other / "transformer" / "config.json").write_text(json.dumps({**cfg, "num_layers": cfg["num_layers"] + 1}))
    parser = build_parser()
    for folder, task in ((copy, "s2v-tiny-demo"), (other, "s2v-5B")):
        args = parser.parse_args(["--ckpt_dir", str(folder), "--audio", "a.wav", "--image", "a.png"])
        apply_demo_task(args, parser, bare=False)
        assert args.task == task and args.ckpt_dir == str(folder)
        assert (args.size_bucket, args.infer_frames) == (("128x128", 24) if task == "s2v-tiny-demo"
                                                         else (parser.get_default("size_bucket"), 120))
