"""The virtual microphone for tests: the code lives in benchmarks/vmic.py (the e2e benchmark uses it too)."""
from benchmarks.vmic import VirtualMic, VirtualMicUnavailable, virtual_mic

__all__ = ["VirtualMic", "VirtualMicUnavailable", "virtual_mic"]
