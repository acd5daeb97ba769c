"""The web UI in a real browser: ``python -m talkverse.app`` in a subprocess, driven by playwright-core
(tests/browser/app.mjs) in Debian's headless Chromium (/usr/bin/chromium; no browser is ever downloaded).

The app runs the default demo model when talkverse/demo/talkverse-tiny-demo is in the checkout; until then the tiny random
stand-in pipeline (same 128x128 / 24-frame / 20-step demo settings via --task s2v-tiny-demo). .ci/run installs
chromium, espeak-ng and the npm package. TALKVERSE_APP_SCREENSHOT=path copies the result screenshot there (how
docs/app_screenshot.png is refreshed).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app_builders import astronaut_png, speech, stand_in_pipeline, tiny_chat_model
from talkverse.demo import demo_model_dir

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BROWSER = REPO / "tests" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _node_script_ready() -> None:
    assert shutil.which("node"), "node is needed for the browser tests (Debian: apt-get install nodejs npm)"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} not found: apt-get install chromium (.ci/run does)"
    if not (BROWSER / "node_modules" / "playwright-core").is_dir():  # .ci/run installs it; do it here otherwise
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER, check=True, timeout=300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    pytest.fail(f"the app did not serve {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("app_media")
    (d / "notes.txt").write_text("These are meeting notes, not a picture.\n")
    shutil.copy(d / "notes.txt", d / "notes_as.png")
    shutil.copy(d / "notes.txt", d / "notes_as.wav")
    sf.write(d / "long.wav", np.zeros(16000 * 121, np.float32), 16000)  # 121 s > --max_audio_seconds 120
    return dict(image=astronaut_png(d / "astronaut.png"), audio=speech(d / "speech.wav"), text_file=d / "notes.txt",
                fake_image=d / "notes_as.png", fake_audio=d / "notes_as.wav", long_audio=d / "long.wav")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on a free localhost port: the default demo model, else the stand-in; with a tiny local enhancer."""
    _node_script_ready()
    d = tmp_path_factory.mktemp("app")
    model = [] if demo_model_dir().is_dir() else \
        ["--ckpt_dir", str(stand_in_pipeline(d / "stand_in")), "--task", "s2v-tiny-demo"]
    port = _free_port()
    log = d / "app.log"
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    cmd = [sys.executable, "-m", "talkverse.app", "--port", str(port), "--output_dir", str(d / "outputs"),
           "--enhancer", str(tiny_chat_model(d / "chat")), "--enhancer_max_new_tokens", "12", *model]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(url, proc, log)
        yield dict(url=url, proc=proc, log=log, outputs=d / "outputs", demo=not model)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _drive(mode: str, timeout: float, **opts) -> dict:
    opts = {k: str(v) for k, v in opts.items()}
    proc = subprocess.run(["node", "app.mjs", mode, json.dumps({**opts, "timeout_s": timeout})], cwd=BROWSER,
                          capture_output=True, text=True, timeout=timeout + 120)
    assert proc.returncode == 0, f"{mode}: {proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bad_uploads_show_a_readable_message_and_the_app_keeps_serving(app, media, tmp_path):
    out = _drive("bad-inputs", 90, url=app["url"], screenshot=tmp_path / "errors.png", **media)
    errors = out["errors"]
    assert errors["image_type"].startswith("Invalid file type: notes.txt")  # refused in the page, before upload
    assert errors["image"] == ("The file “notes_as.png” is not an image that can be read. Please upload a PNG, JPEG "
                               "or WebP photo.")
    assert errors["audio"].startswith("The file “notes_as.wav” is not audio that can be read.")
    assert errors["too_long"].startswith("The audio “long.wav” is 121.0 seconds long; this page accepts at most 120 "
                                         "seconds.")
    assert out["page_text_has_traceback"] is False and out["reloaded"] is True
    assert out["enhance_visible"] is True and out["enhanced_prompt"].strip()
    assert app["proc"].poll() is None
    with urllib.request.urlopen(app["url"], timeout=10) as r:
        assert r.status == 200


@pytest.mark.parametrize("portrait", ["photo", "demo_face"])
def test_generate_in_the_browser_plays_a_video_as_long_as_the_audio(app, media, tmp_path, portrait):
    """A real photo (skimage's astronaut: the demo model only knows cartoon faces, so the result is a smear) and the
    demo portrait; the screenshot of the demo portrait's run is the one docs/app_screenshot.png shows."""
    import av

    from talkverse.demo import demo_face

    shot = tmp_path / "app_screenshot.png"
    image = media["image"] if portrait == "photo" else demo_face()
    before = set(app["outputs"].glob("*.mp4"))
    out = _drive("generate", 420, url=app["url"], image=image, audio=media["audio"], screenshot=shot)
    audio_s = sf.info(str(media["audio"])).duration
    print(f"\nbrowser: video {out['duration']:.3f} s vs audio {audio_s:.3f} s; generate {out['generate_s']:.0f} s; "
          f"{'demo model' if app['demo'] else 'stand-in'}; progress seen: {out['progress'][:3]}...")
    assert abs(out["duration"] - audio_s) <= 0.1
    assert (out["width"], out["height"]) == (128, 128) and out["readyState"] >= 1
    assert out["status"].startswith("Done in") and "seed 0" in out["status"]
    assert out["gallery_items"] >= 1
    assert any(p.startswith("Clip 1/") and "step" in p for p in out["progress"]), out["progress"]
    mp4s = list(set(app["outputs"].glob("*.mp4")) - before)
    assert len(mp4s) == 1
    with av.open(str(mp4s[0])) as c:
        assert c.streams.video[0].codec_context.name == "h264" and c.streams.audio[0].codec_context.name == "aac"
    assert shot.is_file() and shot.stat().st_size > 10_000
    if os.environ.get("TALKVERSE_APP_SCREENSHOT") and portrait == "demo_face":
        shutil.copy(shot, os.environ["TALKVERSE_APP_SCREENSHOT"])
