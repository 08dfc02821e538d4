"""Shared fixtures, and the `corpus` marker's policy (where the corpora are: tests/_corpus.py)."""
from __future__ import annotations

import contextlib
import signal

import pytest

from tests._corpus import SKIP_REASON, locate_corpus
from tests.vmic import VirtualMicUnavailable, virtual_mic


def pytest_configure(config):
    # Several tests stop the commands they start with SIGINT (Ctrl-C) and check they end cleanly. A shell that
    # runs the suite in the background (`./run.sh test &` in a script) starts it with SIGINT ignored, which
    # every child would inherit, so none of them would stop: give the suite Python's own handler, whose
    # children start with the default disposition.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_report_header(config):
    loc = locate_corpus()
    if loc.present:
        return f"corpus: {loc.root} (corpus tests run)"
    if loc.explicit:
        return f"corpus: {loc.problem} (corpus tests fail)"
    return "corpus: none (corpus tests skipped; set EMOTION_MONITOR_DATA=/path/to/data to run them)"


def pytest_collection_modifyitems(config, items):
    unmarked = [i.nodeid for i in items if "corpus_root" in i.fixturenames and i.get_closest_marker("corpus") is None]
    if unmarked:
        raise pytest.UsageError(f"uses corpus_root without @pytest.mark.corpus: {', '.join(unmarked)}")
    # No corpus and none asked for: skip (a skip mark, so the summary names each test). One asked for
    # but absent: the call phase fails (below).
    loc = locate_corpus()
    if not loc.present and not loc.explicit:
        for item in items:
            if item.get_closest_marker("corpus") is not None:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    # EMOTION_MONITOR_DATA was set (CI sets it): a missing corpus is a failure, never a skip.
    loc = locate_corpus()
    if item.get_closest_marker("corpus") is not None and not loc.present:
        pytest.fail(loc.problem, pytrace=False)


@pytest.fixture(scope="session")
def corpus_root():
    """The corpora's root folder (holding ravdess/, tess/, ...); only for tests marked `corpus`, which
    collection skips, or the call phase fails, before their body runs when it holds no corpus."""
    return locate_corpus().root


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
