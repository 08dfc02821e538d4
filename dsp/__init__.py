"""Audio features for the monitor: librosa-compatible batch functions, a numba streaming extractor, VAD.

dsp imports no other project package.
"""
from .config import FeatureConfig
from .features import delta, log_mel, melspectrogram, mfcc, power_to_db
from .stream import FeatureFrames, StreamingFeatures

__all__ = [
    "FeatureConfig", "FeatureFrames", "StreamingFeatures",
    "delta", "log_mel", "melspectrogram", "mfcc", "power_to_db",
]
