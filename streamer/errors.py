"""Exceptions raised by the audio side of the streamer.

Every message is a single line (newlines and runs of whitespace collapse), so the CLI can
print ``f"error: {exc}"`` and nothing else.
"""

from __future__ import annotations

__all__ = [
    "StreamerError",
    "PortAudioMissing",
    "NoInputDevice",
    "NoOutputDevice",
    "DeviceLost",
    "AudioFileError",
    "ConfigError",
    "PortBusy",
]


class StreamerError(Exception):
    """Base class: a user-facing failure with a one-line message."""

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


class PortAudioMissing(StreamerError):
    """The PortAudio shared library is not installed (``import sounddevice`` raised OSError)."""


class NoInputDevice(StreamerError):
    """No audio input device exists, or none matches the requested index / name."""


class NoOutputDevice(StreamerError):
    """No audio output device exists, or none matches the requested index / name."""


class DeviceLost(StreamerError):
    """The input device stopped delivering audio and could not be reopened in time."""


class AudioFileError(StreamerError):
    """An audio file is missing, unreadable, unsupported or empty."""


class ConfigError(StreamerError):
    """Options that cannot work together (e.g. a hop longer than the window) or a backend that is not installed."""


class PortBusy(StreamerError):
    """The address to serve on cannot be bound (in use, not permitted, not an address of this machine)."""
