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
