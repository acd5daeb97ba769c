"""talkverse.runner on real files, without a model: the input checks and the warnings the CLI prints before it
generates (an upscaled portrait, a dubbing source shorter than the speech)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from talkverse.media.audio import AudioError
from talkverse.media.writer import VideoWriter
from talkverse.runner import MIN_AUDIO_FRAMES, GenerationOptions, input_warnings, load_inputs


@pytest.fixture
def files(tmp_path):
    Image.fromarray(np.full((20, 24, 3), 128, np.uint8)).save(tmp_path / "small.png")  # 24 wide, 20 high
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(tmp_path / "big.png")
    sf.write(tmp_path / "speech.wav", np.zeros(16000, np.float32), 16000)  # 1 s: 25 frames
    with VideoWriter(tmp_path / "dub.mp4") as w:  # 10 frames at 25 fps
        w.write(np.full((10, 64, 64, 3), 100, np.uint8))
    return tmp_path


def test_a_small_portrait_is_upscaled_with_a_warning(files):
    small = load_inputs(files / "small.png", files / "speech.wav")
    warnings = input_warnings(small, GenerationOptions(size_bucket="128x128"), 25)
    assert warnings == [f"{files / 'small.png'}: 24x20 is smaller than the 128x128 video; it is upscaled "
                        "(expect a soft image)"]
    big = load_inputs(files / "big.png", files / "speech.wav")
    assert input_warnings(big, GenerationOptions(size_bucket="128x128"), 25) == []


def test_a_short_dubbing_source_is_stretched_with_a_warning(files):
    inputs = load_inputs(None, files / "speech.wav", files / "dub.mp4")
    warnings = input_warnings(inputs, GenerationOptions(size_bucket="64x64"), 25)
    assert warnings == [f"{files / 'dub.mp4'}: 10 frames at 25 fps, the speech needs 25; its last frame is repeated "
                        "for the remaining 15"]
    assert input_warnings(inputs, GenerationOptions(size_bucket="64x64"), 10) == []  # long enough: no word


def test_speech_shorter_than_one_latent_frame_is_refused(files):
    sf.write(files / "blip.wav", np.zeros(16000 * (MIN_AUDIO_FRAMES - 1) // 25, np.float32), 16000)
    with pytest.raises(AudioError, match=r"blip.wav: is 0.12 s long; at least 0.16 s"):
        load_inputs(files / "big.png", files / "blip.wav")
