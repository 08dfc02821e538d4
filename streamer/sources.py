"""Audio sources: microphone, file and demo, all as iterators of fixed-size 16 kHz mono Blocks.

Every source is a context manager with ``close()`` and yields :class:`Block` objects of exactly
``sr * block_ms / 1000`` samples (a finite file's last block may be shorter). Each block carries
two clocks: ``t_start`` on the stream clock (seconds since the source started, advancing with
the audio) and ``wall`` (unix time at which the block's last sample was captured).

This module gathers the public names; each concern lives in its own module:

==========================  ===========================================================
``streamer.blocks``         Block, PIPELINE_SR and the plumbing the sources share
``streamer.devices``        PortAudio devices: list, resolve, re-enumerate
``streamer.mic``            MicSource (ring buffer, resampling, device-loss recovery)
``streamer.clocked``        FileSource and DemoSource (their own clock, optionally paced)
``streamer.recording``      SessionRecorder, record, play
==========================  ===========================================================
"""

from __future__ import annotations

from .blocks import PIPELINE_SR, Block
from .clocked import DemoSource, FileSource
from .devices import DeviceInfo, list_input_devices, rescan_devices
from .mic import MicSource
from .recording import SessionRecorder, play, record

__all__ = [
    "PIPELINE_SR",
    "Block",
    "DeviceInfo",
    "MicSource",
    "FileSource",
    "DemoSource",
    "SessionRecorder",
    "list_input_devices",
    "record",
    "play",
    "rescan_devices",
]
