"""Dubbing only the face (issue 20): face tracks, crop -> generate -> paste back, masked denoising, seams.

Cases from ``talkverse.testing.dub_cases`` (``scripts/make_face_dub_cases.py`` writes the same ones to files): the
synthetic talking faces as 288 px squares in a 1280x720 textured frame."""

from __future__ import annotations

import numpy as np
import pytest

from talkverse.pipelines.face_track import FaceTrackError, track_from_boxes, track_from_keypoints
from talkverse.testing.dub_cases import make_case


# ------------------------------------------------------------------------------------------------ face tracks
def test_track_picks_faces_left_to_right_or_by_size_and_counts_lost_frames():
    two = make_case("two", seconds=0.2)
    left, right = two.boxes[0, 0], two.boxes[0, 1]
    assert left[0] < right[0]
    np.testing.assert_array_equal(track_from_boxes(two.boxes, 1).boxes[0], right)
    # by size: make the right face bigger in the list, index 0 is then the right one
    big = two.boxes.copy()
    big[:, 1, 2:] += 50
    np.testing.assert_array_equal(track_from_boxes(big, 0, "size").boxes[0], big[0, 1])
    # from the DWPose-layout keypoints: the face points' box lies inside the tile and contains the lips' box
    kp = track_from_keypoints(two.keypoints, 1)
    b, m = kp.boxes[0], kp.mouths[0]
    assert right[0] <= b[0] < m[0] < m[2] < b[2] <= right[2] and b[1] < m[1] < m[3] < b[3]
    leaves = make_case("leaves", seconds=1.4)  # the face is away for frames [5, 30)
    assert track_from_keypoints(leaves.keypoints).lost == 25 == track_from_boxes(leaves.boxes).lost


def test_track_errors_are_one_line():
    two = make_case("two", seconds=0.2)
    with pytest.raises(FaceTrackError, match=r"^the box list: --dub_face_index 2 is out of range: 2 faces found"):
        track_from_boxes(two.boxes, 2)
    empty = np.zeros_like(two.keypoints)
    with pytest.raises(FaceTrackError, match=r"^the keypoints: no face found in any of its 5 frames$"):
        track_from_keypoints(empty)
    with pytest.raises(ValueError, match="dub_face_order"):
        track_from_boxes(two.boxes, 0, "tallest")


# ------------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def demo():
    """The shipped demo model (fitted VAE: outside the generated mouth its decode is close to the source)."""
    from talkverse.demo import demo_model_dir
    from talkverse.pipelines.pipeline_talkverse import TalkVersePipeline

    pipe = TalkVersePipeline.from_pretrained(str(demo_model_dir()))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _dub(pipe, paths, out, region="mouth", frames=8, steps=3, **kw):
    """Face dub through the runner, as generate.py does: (result, the frames given to the writer uint8 [T, H, W, 3],
    the decoded source at 25 fps)."""
    from talkverse.media.video import iter_frames
    from talkverse.runner import GenerationOptions, generate_to_file, load_inputs

    opts = GenerationOptions(size_bucket="128x128", frames_per_clip=frames, num_inference_steps=steps,
                             dub_strength=0.9, dub_region=region, dub_track=str(paths["track"]), seed=3,
                             progress=False, **kw).check()
    inputs = load_inputs(None, paths["new"], paths["source"])
    got = []
    try:
        result = generate_to_file(pipe, inputs, opts, out, on_frames=lambda f: got.append(
            ((f.permute(1, 2, 3, 0) + 1) * 127.5).round().byte().numpy()))
    finally:
        inputs.close()
    written = np.concatenate(got)
    source = np.stack(list(iter_frames(paths["source"], 25)))[:len(written)]
    return result, written, source


def _masks(result, frame_hw, n, frames=8):
    """Per output frame: the paste alpha's support (the dilated region) and its feathered band."""
    from talkverse.eval.seam import feather_band

    ranges, out_mask, out_band = [], [], []
    start = 0
    for c in result.face_regions:
        a = c.frame_alpha(frame_hw)
        ranges.append((a > 0, feather_band(a)))
    # clip r covers output frames [start_r, end_r): the pipeline's timeline (tiny: F - 3 then F per clip)
    from talkverse.models.geometry import ClipGeometry
    from talkverse.pipelines.timeline import clip_output_range

    for r, (m, b) in enumerate(ranges):
        s, e = clip_output_range(r, ClipGeometry(frames))
        out_mask += [m] * (min(e, n) - max(s, start))
        out_band += [b] * (min(e, n) - max(s, start))
    return np.stack(out_mask[:n]), np.stack(out_band[:n])


@pytest.mark.slow
def test_only_the_mouth_changes_and_the_seam_is_invisible(demo, tmp_path):
    """1280x720 source, the face ~9 % of it: outside the dilated mouth region every written pixel is the decoded
    source pixel (exactly), that is >= 95 % of the frame; the mp4 keeps it above 40 dB; the region did change; the
    gradient across the feathered band is within 1.5x the source's."""
    from talkverse.eval.fidelity import psnr_per_frame
    from talkverse.eval.seam import seam_measure
    from talkverse.media.video import iter_frames
    from talkverse.testing.dub_cases import write_case

    paths = write_case(make_case("one", seconds=0.6), tmp_path / "one")
    result, out, src = _dub(demo, paths, tmp_path / "out.mp4")
    assert out.shape == (15, 720, 1280, 3) and result.size == (720, 1280) and result.passed_through == 0
    inside, band = _masks(result, (720, 1280), len(out))
    outside = ~inside
    assert outside.mean(axis=(1, 2)).min() >= 0.95
    np.testing.assert_array_equal(out[outside], src[outside])
    assert (out[inside] != src[inside]).mean() > 0.3  # the mouth was regenerated
    decoded = np.stack(list(iter_frames(tmp_path / "out.mp4", 25)))
    mse = ((decoded.astype(float) - src.astype(float)) ** 2)[outside].mean()
    assert 10 * np.log10(255 ** 2 / mse) > 40
    assert psnr_per_frame(decoded, out).min() > 35  # the encode itself is faithful
    seam = seam_measure(out, src, band)
    print(f"seam {seam}, ratio {seam.ratio:.3f}; outside >= {outside.mean(axis=(1, 2)).min():.4f}")
    assert seam.pixels > 0 and seam.ratio <= 1.5, seam


def test_masked_denoising_keeps_the_source_latents_outside_the_mask(demo):
    """After the last step the latents outside the (latent) mask are the source clip's own latents, exactly; inside
    they are generated. Without the mask the same cells move away from the source (the control)."""
    import torch

    from talkverse.pipelines.inpainting import latent_mask

    rng = np.random.default_rng(0)
    src = [rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(5)]
    wav = rng.normal(0, 0.1, 3200).astype(np.float32)  # 0.2 s: 5 frames, one clip of 8
    mask = torch.zeros(128, 128)
    mask[64:112, 32:96] = 1

    def run(m):
        last = {}

        def grab(pipe, i, t, kw):
            last["x"] = kw["latents"].clone()
            return kw

        demo(None, wav, height=128, width=128, frames_per_clip=8, num_inference_steps=3, dub_video=iter(src),
             dub_strength=0.9, dub_mask=m, generator=torch.Generator().manual_seed(1), callback_on_step_end=grab,
             progress=False)
        return last["x"]

    video = torch.from_numpy(np.stack(src)).permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    x0 = demo.encode_video(video).float()
    lm = latent_mask(mask, x0.shape[-2:]).expand_as(x0).bool()
    assert 0 < lm.float().mean() < 0.5
    masked = run(mask)
    assert torch.equal(masked[~lm], x0[~lm])
    assert (masked[lm] - x0[lm]).abs().mean() > 0.05
    assert (run(None)[~lm] - x0[~lm]).abs().mean() > 0.05


@pytest.mark.slow
def test_second_face_only(demo, tmp_path):
    """Two faces, --dub_face_index 1: the first face's box is exactly the source in every written frame; the
    second face's box changed."""
    from talkverse.testing.dub_cases import write_case

    case = make_case("two", seconds=0.36, height=360, width=640, face=144)
    paths = write_case(case, tmp_path / "two")
    result, out, src = _dub(demo, paths, tmp_path / "out.mp4", region="face", frames=12, dub_face_index=1)
    x0, y0, x1, y1 = case.boxes[0, 0].astype(int)
    np.testing.assert_array_equal(out[:, y0:y1, x0:x1], src[:, y0:y1, x0:x1])
    x0, y0, x1, y1 = case.boxes[0, 1].astype(int)
    assert (out[:, y0:y1, x0:x1] != src[:, y0:y1, x0:x1]).any(-1).mean() > 0.2


@pytest.mark.slow
def test_frames_without_the_face_pass_through_and_are_counted(demo, tmp_path):
    """The face is away for 1 s (frames 5-29 of 35): those written frames are the source frames exactly, the result
    counts 25 and says so in its log line; the frames with the face are dubbed."""
    from talkverse.testing.dub_cases import write_case

    paths = write_case(make_case("leaves", seconds=1.4, height=360, width=640, face=144), tmp_path / "leaves")
    result, out, src = _dub(demo, paths, tmp_path / "out.mp4", region="mouth", frames=12, steps=2)
    assert len(out) == 35 and result.passed_through == 25
    assert "25 frames without the face passed through unchanged" in result.line()
    np.testing.assert_array_equal(out[5:30], src[5:30])
    changed = (out != src).any(-1).mean(axis=(1, 2))
    assert (changed[:5] > 0).all() and (changed[30:] > 0).all()
