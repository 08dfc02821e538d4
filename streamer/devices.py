"""Audio devices through PortAudio: the lazy sounddevice import, listing inputs, resolving a device by index or
name, and re-enumerating after a device comes or goes.

sounddevice is imported lazily, so files and the demo work on machines without PortAudio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import NoInputDevice, NoOutputDevice, PortAudioMissing

__all__ = ["DeviceInfo", "list_input_devices", "rescan_devices"]


@dataclass(frozen=True)
class DeviceInfo:
    """An audio input device as PortAudio lists it; ``hostapi`` is the host API's name."""

    index: int
    name: str
    max_input_channels: int
    default_samplerate: float
    hostapi: str


def _sounddevice():
    """Import sounddevice, turning a missing PortAudio into a clear one-line error."""
    try:
        import sounddevice
    except OSError as exc:
        raise PortAudioMissing(
            f"PortAudio library not found ({exc}); install it, e.g. "
            "'sudo apt-get install libportaudio2' (Debian/Ubuntu) or 'brew install portaudio' (macOS)"
        ) from exc
    return sounddevice


def rescan_devices() -> None:
    """Re-initialise PortAudio so it enumerates devices again (it lists them only at init).

    Closes every open PortAudio stream of this process, so call it only between streams.
    """
    sd = _sounddevice()
    if sd._initialized > 0:
        sd._terminate()
    sd._initialize()


def _device_list(devices, *, kind: str) -> str:
    key = f"max_{kind}_channels"
    listed = [f"{i}: {d['name']}" for i, d in enumerate(devices) if d[key] > 0]
    return "; ".join(listed) if listed else "none"


def _resolve_device(sd, spec: int | str | None, *, kind: str) -> int:
    """Device index for ``spec`` (None = default, int = index, str = name substring).

    Raises NoInputDevice / NoOutputDevice (by ``kind``: "input" | "output") with the list of
    devices when nothing matches.
    """
    error = NoInputDevice if kind == "input" else NoOutputDevice
    key = f"max_{kind}_channels"
    devices = sd.query_devices()
    usable = [i for i, d in enumerate(devices) if d[key] > 0]
    if not usable:
        raise error(f"no audio {kind} device found (PortAudio lists none)")
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec)
    if spec is None:
        default = sd.default.device[0 if kind == "input" else 1]
        return default if default in usable else usable[0]
    if isinstance(spec, (int, np.integer)):
        if int(spec) in usable:
            return int(spec)
        raise error(f"no {kind} device with index {spec}; {kind} devices: "
                    f"{_device_list(devices, kind=kind)}")
    wanted = str(spec).lower()
    exact = [i for i in usable if devices[i]["name"].lower() == wanted]
    matches = exact or [i for i in usable if wanted in devices[i]["name"].lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise error(f"no {kind} device matches {spec!r}; {kind} devices: "
                    f"{_device_list(devices, kind=kind)}")
    names = "; ".join(f"{i}: {devices[i]['name']}" for i in matches)
    raise error(f"{kind} device name {spec!r} is ambiguous; it matches {names}")


def list_input_devices() -> list[DeviceInfo]:
    """Input-capable devices PortAudio currently lists (empty list when there are none)."""
    sd = _sounddevice()
    hostapis = sd.query_hostapis()
    return [
        DeviceInfo(index=i, name=d["name"], max_input_channels=int(d["max_input_channels"]),
                   default_samplerate=float(d["default_samplerate"]),
                   hostapi=hostapis[d["hostapi"]]["name"])
        for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0
    ]
