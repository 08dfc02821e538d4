"""One interface for both backends: make_vad builds either behind advance / flush / reset / delay_frames /
start_hold_frames."""
from __future__ import annotations

from ..config import FeatureConfig
from .config import VadConfig
from .energy import StreamingVad
from .silero import SILERO_CONFIG, SileroVad

VAD_BACKENDS = ("ours", "silero")


def make_vad(backend: str, *, config: VadConfig | None = None, feature_config: FeatureConfig = FeatureConfig()):
    """A streaming VAD of either backend, behind one interface: ``advance(samples=, frames=) -> VadResult``
    (the same audio as samples and as the extractor's frames; each backend reads what it needs), ``flush()``,
    ``reset()``, ``config``, ``delay_frames`` (how far its final decisions trail the newest frame) and
    ``start_hold_frames`` (how many first frames of a stream wait for each other before any is decided).

    config: the decision parameters, applied to either backend; None takes the backend's tuned default
    (VadConfig() for ours, SILERO_CONFIG for silero). Raises ModuleNotFoundError / FileNotFoundError when
    silero's model is not installed.
    """
    if backend == "ours":
        return StreamingVad(VadConfig() if config is None else config, feature_config=feature_config)
    if backend == "silero":
        return SileroVad(SILERO_CONFIG if config is None else config, feature_config=feature_config)
    raise ValueError(f"VAD backend must be one of {VAD_BACKENDS}, got {backend!r}")
