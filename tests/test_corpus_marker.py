"""The `corpus` marker's policy (tests/conftest.py, tests/_corpus.py): where the corpora are read from, a
skip without them, a failure when EMOTION_MONITOR_DATA names a folder without them, and the marker
required on every test that takes `corpus_root`. Runs a small pytest session of its own in a subprocess."""
import pytest

from tests._corpus import ENV, PROJECT, SKIP_REASON, fixture_path, locate_corpus

pytest_plugins = ["pytester"]

INNER_TESTS = """
import pytest

@pytest.mark.corpus
def test_reads_the_corpus(corpus_root):
    assert (corpus_root / "ravdess").is_dir()

def test_plain():
    pass
"""


def _fake_corpus(path):
    (path / "ravdess" / "Actor_01").mkdir(parents=True)
    return path


def test_locate_corpus(tmp_path):
    corpus, missing = _fake_corpus(tmp_path / "data"), tmp_path / "nowhere"
    assert locate_corpus({ENV: str(corpus)}, default=missing) == locate_corpus({ENV: str(corpus)})
    got = locate_corpus({ENV: str(corpus)}, default=missing)
    assert (got.root, got.present, got.explicit) == (corpus, True, True)
    got = locate_corpus({}, default=corpus)
    assert (got.root, got.present, got.explicit) == (corpus, True, False)
    got = locate_corpus({ENV: " "}, default=missing)   # blank counts as unset
    assert (got.present, got.explicit) == (False, False)
    got = locate_corpus({ENV: str(missing)}, default=corpus)
    assert (got.present, got.explicit) == (False, True) and got.problem.startswith(f"{ENV}={missing}: no corpus")


def test_fixture_clips_are_committed():
    assert fixture_path("ravdess/Actor_01/03-01-01-01-01-01-01.flac").stat().st_size > 10_000
    assert (PROJECT / "tests" / "data" / "README.md").read_text().count("CC BY-NC-SA 4.0") >= 1


def _session(pytester, monkeypatch, *, env: str | None, default, test_source=INNER_TESTS):
    """Run INNER_TESTS under the project's conftest with ../shared/data replaced by ``default``."""
    pytester.makeconftest(f"""
import pathlib
import tests._corpus
tests._corpus.DEFAULT_CORPUS = pathlib.Path({str(default)!r})
pytest_plugins = ["tests.conftest"]
""")
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider --strict-markers\nmarkers =\n    corpus: whole corpora\n")
    pytester.makepyfile(test_inner=test_source)
    monkeypatch.setenv("PYTHONPATH", str(PROJECT))
    if env is None:
        monkeypatch.delenv(ENV, raising=False)
    else:
        monkeypatch.setenv(ENV, env)
    return pytester.runpytest_subprocess("-ra")


def test_corpus_tests_run_on_the_corpus(pytester, monkeypatch, tmp_path):
    corpus = _fake_corpus(tmp_path / "data")
    _session(pytester, monkeypatch, env=str(corpus), default=tmp_path / "nowhere").assert_outcomes(passed=2)
    # ../shared/data (the default) is used when the variable is unset
    _session(pytester, monkeypatch, env=None, default=corpus).assert_outcomes(passed=2)


def test_without_a_corpus_they_are_skipped_with_the_way_to_run_them(pytester, monkeypatch, tmp_path):
    res = _session(pytester, monkeypatch, env=None, default=tmp_path / "nowhere")
    res.assert_outcomes(passed=1, skipped=1)
    res.stdout.fnmatch_lines([f"SKIPPED *test_inner.py*: {SKIP_REASON}"])


def test_a_named_but_missing_corpus_fails(pytester, monkeypatch, tmp_path):
    corpus = _fake_corpus(tmp_path / "data")
    res = _session(pytester, monkeypatch, env=str(tmp_path / "nowhere"), default=corpus)
    res.assert_outcomes(passed=1, failed=1)
    res.stdout.fnmatch_lines([f"{ENV}=*nowhere: no corpus there*", "FAILED test_inner.py::test_reads_the_corpus*"])


def test_corpus_root_without_the_marker_is_a_usage_error(pytester, monkeypatch, tmp_path):
    unmarked = "def test_sneaky(corpus_root):\n    pass\n"
    res = _session(pytester, monkeypatch, env=None, default=_fake_corpus(tmp_path / "data"), test_source=unmarked)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*uses corpus_root without @pytest.mark.corpus: test_inner.py::test_sneaky*"])
