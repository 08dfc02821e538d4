"""Shared fixtures."""
from __future__ import annotations

import contextlib

import pytest

from tests.vmic import VirtualMicUnavailable, virtual_mic


def _start_vmic(stack: contextlib.ExitStack):
    try:
        return stack.enter_context(virtual_mic())
    except VirtualMicUnavailable as exc:
        problem = str(exc)
    # Fail, never skip: CI installs PulseAudio, so a missing one is a broken environment.
    pytest.fail(f"virtual microphone unavailable: {problem}", pytrace=False)


@pytest.fixture(scope="session")
def vmic():
    """Session-wide PulseAudio virtual microphone (see tests/vmic.py); os.environ points at it."""
    with contextlib.ExitStack() as stack:
        yield _start_vmic(stack)


@pytest.fixture
def vmic_private():
    """A separate virtual microphone for one test, e.g. one that kills its server."""
    with contextlib.ExitStack() as stack:
        yield _start_vmic(stack)
