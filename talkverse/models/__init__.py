from .audio_encoder import CausalAudioEncoder
from .audio_injector import AudioCrossAttention, AudioInjector
from .frame_packer import FramePackMotioner
from .transformer_talkverse import TalkVerseTransformer3DModel, TalkVerseTransformerBlock

__all__ = [
    "AudioCrossAttention",
    "AudioInjector",
    "CausalAudioEncoder",
    "FramePackMotioner",
    "TalkVerseTransformer3DModel",
    "TalkVerseTransformerBlock",
]
