"""Training data: metadata rows, clip reading, window sampling, ROI weights, text cache, datasets and sampler."""

from .audio_window import main_slice, segment, window_features, window_samples
from .cached import CachedLatentDataset
from .dataset import ClipSkip, TalkVerseDataset
from .roi import latent_weight_map, roi_masks
from .rows import ClipRow, read_rows
from .sampler import BucketBatchSampler
from .sampling import Window, choose_window, pose_index, reference_frame_index, scene_range_25fps
from .text_cache import TextEmbeddingCache, load_embedding
from .toy import write_toy_dataset
from .transform import cover_frames, target_size
from .video import ClipError, ClipVideo, open_clip_video

__all__ = [
    "BucketBatchSampler", "CachedLatentDataset", "ClipError", "ClipRow", "ClipSkip", "ClipVideo", "TalkVerseDataset",
    "TextEmbeddingCache", "Window", "choose_window", "cover_frames", "latent_weight_map", "load_embedding",
    "main_slice", "open_clip_video", "pose_index", "read_rows", "reference_frame_index", "roi_masks",
    "scene_range_25fps", "segment", "target_size", "window_features", "window_samples", "write_toy_dataset",
]
