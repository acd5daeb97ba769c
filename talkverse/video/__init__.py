"""Video / image I/O: resolution buckets, reference-image fitting, streaming mp4 writing and reading."""

from .buckets import BUCKETS, choose_bucket, parse_size, valid_sizes
from .image import ImageError, fit_image, image_to_tensor_u8, load_image, to_rgb
from .reader import VideoError, VideoInfo, first_frame, iter_frames, probe_video
from .writer import VideoWriter, frames_to_uint8


__all__ = [
    "BUCKETS",
    "choose_bucket",
    "parse_size",
    "valid_sizes",
    "ImageError",
    "fit_image",
    "image_to_tensor_u8",
    "load_image",
    "to_rgb",
    "VideoError",
    "VideoInfo",
    "first_frame",
    "iter_frames",
    "probe_video",
    "VideoWriter",
    "frames_to_uint8",
]
