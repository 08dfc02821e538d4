"""Audio features for the monitor: librosa-compatible batch functions, a numba streaming extractor, VAD.

dsp imports no other project package.
"""
from .config import SAMPLE_RATE, FeatureConfig
from .features import delta, log_mel, mel_frequencies, melspectrogram, mfcc, power_to_db
from . import descriptive
from .stream import FeatureFrames, StreamingFeatures
from .windows import FrameWindower, Window, clip_windows

__all__ = [
    "SAMPLE_RATE", "FeatureConfig", "FeatureFrames", "StreamingFeatures", "FrameWindower", "Window", "clip_windows", "descriptive",
    "delta", "log_mel", "mel_frequencies", "melspectrogram", "mfcc", "power_to_db",
]
