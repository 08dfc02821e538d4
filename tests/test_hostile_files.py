"""Fuzz: a few hundred malformed inputs through `predict` and `file`, in-process through the CLI's main().

Each input is made from one espeak-ng sentence by a fixed-seed generator: truncated, bit-flipped and
overwritten WAV/FLAC/OGG/MP3, random bytes behind valid magic numbers, absurd WAV and FLAC header fields,
non-finite and absurd float samples, FIFOs, devices, links and odd names. Every run must end in either
  - a clear error: non-zero exit, exactly one `emotion-monitor: error:` line, nothing else but warnings; or
  - valid output: exit 0, stdout lines that parse as JSON without NaN/Infinity (predict: exactly one);
never a traceback (an exception escaping main) and never a hang (a SIGALRM watchdog per run).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp.audio_file import display_name
from streamer.cli import main
from tests._clips import SR, espeak

SEED = 13
RUN_LIMIT_S = 20  # per CLI run; a decode that takes this long on a 2 s clip is a hang


@dataclass(frozen=True)
class Case:
    path: str
    kind: str


# ----------------------------------------------------------------------------------------------- input makers
def _encodings(tmp: Path, y: np.ndarray) -> dict[str, bytes]:
    out = {}
    for name, fmt, subtype in (("wav", "WAV", "PCM_16"), ("fwav", "WAV", "FLOAT"), ("flac", "FLAC", "PCM_16"),
                               ("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III")):
        path = tmp / f"seed.{name}"
        sf.write(path, y, SR, format=fmt, subtype=subtype)
        out[name] = path.read_bytes()
    return out


_EXT = {"wav": "wav", "fwav": "wav", "flac": "flac", "ogg": "ogg", "mp3": "mp3"}


def _mutations(data: bytes, rng: np.random.Generator) -> list[tuple[str, bytes]]:
    n = len(data)
    out = []
    for i in range(16):  # cut anywhere, header-only cuts included
        cut = int(rng.integers(0, 200)) if i < 4 else int(rng.integers(200, n))
        out.append((f"trunc{cut}", data[:cut]))
    for i in range(16):  # flipped bits, a quarter of them in the first 64 bytes (the header)
        b = bytearray(data)
        hi = 64 if i % 4 == 0 else n
        for pos in rng.integers(0, hi, size=int(rng.integers(1, 65))):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        out.append((f"flip{i}", bytes(b)))
    for i in range(6):  # a run of random bytes overwrites the middle
        start = int(rng.integers(0, n - 1))
        length = int(rng.integers(1, min(4096, n - start) + 1))
        out.append((f"overwrite{i}", data[:start] + rng.bytes(length) + data[start + length:]))
    for i in range(4):  # the real header's first bytes, then noise
        keep = (4, 12, 36, 64)[i]
        out.append((f"magic{keep}", data[:keep] + rng.bytes(int(rng.integers(16, 8192)))))
    return out


def _wav_header_fields(data: bytes) -> list[tuple[str, bytes]]:
    """Absurd values in the canonical 44-byte RIFF header soundfile writes."""
    fields = {"format": (20, "<H", (0, 2, 3, 0xFFFE)), "channels": (22, "<H", (0, 3, 255, 65535)),
              "rate": (24, "<I", (0, 1, 2, 3999, 4000, 768000, 768001, 2**31 - 1, 2**32 - 1)),
              "byterate": (28, "<I", (0, 2**32 - 1)), "align": (32, "<H", (0, 65535)),
              "bits": (34, "<H", (0, 1, 7, 12, 64, 65535)), "datasize": (40, "<I", (0, 1, 2**31, 2**32 - 1)),
              "riffsize": (4, "<I", (0, 2**32 - 1))}
    assert data[36:40] == b"data", "soundfile's WAV header layout changed"
    out = []
    for name, (offset, fmt, values) in fields.items():
        for v in values:
            b = bytearray(data)
            struct.pack_into(fmt, b, offset, v)
            out.append((f"{name}{v}", bytes(b)))
    return out


def _flac_rates(data: bytes) -> list[tuple[str, bytes]]:
    """STREAMINFO's 20-bit sample rate (bytes 18-20 of the file) set to absurd values."""
    out = []
    for rate in (0, 1, 3999, 655350, 2**20 - 1):
        b = bytearray(data)
        b[18], b[19] = rate >> 12 & 0xFF, rate >> 4 & 0xFF
        b[20] = (rate & 0xF) << 4 | (b[20] & 0x0F)
        out.append((f"rate{rate}", bytes(b)))
    return out


def _float_wavs(y: np.ndarray, rng: np.random.Generator) -> list[tuple[str, np.ndarray, str]]:
    spots = rng.integers(0, y.size, size=3)
    one_nan, one_inf, neg_inf = y.copy(), y.copy(), y.copy()
    one_nan[spots[0]], one_inf[spots[1]], neg_inf[spots[2]] = np.nan, np.inf, -np.inf
    late_nan = y.copy()
    late_nan[-100:] = np.nan  # after a second of good audio: `file` has written events already
    return [("nan1", one_nan, "FLOAT"), ("inf1", one_inf, "FLOAT"), ("neginf1", neg_inf, "FLOAT"),
            ("nanlate", late_nan, "FLOAT"), ("allnan", np.full_like(y, np.nan), "FLOAT"),
            ("huge1e30", y * 1e30, "FLOAT"), ("huge1e4", y * 1e4, "FLOAT"), ("loud900", y * 900, "FLOAT"),
            ("denormal", np.full_like(y, 1e-40), "FLOAT"), ("double1e300", y.astype(np.float64) * 1e300, "DOUBLE")]


def _special(tmp: Path, good: bytes) -> list[Case]:
    cases = []

    def add(name: str | bytes, kind: str, content: bytes | None = None) -> None:
        path = os.path.join(os.fsencode(tmp) if isinstance(name, bytes) else str(tmp), name)
        if content is not None:
            with open(path, "wb") as f:
                f.write(content)
        cases.append(Case(os.fsdecode(path), kind))

    for ext in ("wav", "flac"):
        os.mkfifo(tmp / f"fifo.{ext}")
        cases.append(Case(str(tmp / f"fifo.{ext}"), "fifo"))
    (tmp / "folder.wav").mkdir()
    cases.append(Case(str(tmp / "folder.wav"), "directory"))
    os.symlink(tmp / "loop_b.wav", tmp / "loop_a.wav")
    os.symlink(tmp / "loop_a.wav", tmp / "loop_b.wav")
    cases.append(Case(str(tmp / "loop_a.wav"), "symlink loop"))
    os.symlink(tmp / "nowhere.wav", tmp / "dangling.wav")
    cases.append(Case(str(tmp / "dangling.wav"), "dangling symlink"))
    cases += [Case("/dev/null", "device"), Case("/dev/zero", "device"), Case("", "empty name"),
              Case(str(tmp / "missing.wav"), "missing"), Case(str(tmp / ("x" * 300 + ".wav")), "name too long")]
    for ext in ("wav", "mp3", "flac"):
        add(f"empty.{ext}", "empty file", b"")
    add(b"non-utf8-\xff\xfe.wav", "non-UTF-8 name", good)
    add("new\nline.wav", "newline in name", good)
    add("spaces and \u00fcnicode \u6587.wav", "unicode name", good)
    add("y" * 251 + ".wav", "255-byte name", good)
    os.symlink(tmp / "good.wav", tmp / "link.wav")
    add("good.wav", "plain", good)
    cases.append(Case(str(tmp / "link.wav"), "symlink"))
    return cases


def make_inputs(tmp: Path) -> list[Case]:
    rng = np.random.default_rng(SEED)
    y = espeak("Hello, how are you today?", voice="en-us+f3")[:int(1.6 * SR)]
    y = (0.5 * y / np.abs(y).max()).astype(np.float32)
    cases: list[Case] = []

    def write(name: str, kind: str, content: bytes) -> None:
        path = tmp / f"{len(cases):03d}-{name}"
        path.write_bytes(content)
        cases.append(Case(str(path), kind))

    encoded = _encodings(tmp, y)
    for enc, data in encoded.items():
        for tag, content in _mutations(data, rng):
            write(f"{enc}-{tag}.{_EXT[enc]}", f"{enc} {tag.rstrip('0123456789')}", content)
    for tag, content in _wav_header_fields(encoded["wav"]):
        write(f"hdr-{tag}.wav", "wav header", content)
    for tag, content in _flac_rates(encoded["flac"]):
        write(f"flachdr-{tag}.flac", "flac header", content)
    for magic in (b"RIFF\x00\x00\x00\x00WAVE", b"fLaC", b"OggS", b"ID3\x03\x00", b"\xff\xfb\x90\x00", b"FORM"):
        write(f"magic-{magic[:4].hex()}.bin", "random behind magic", magic + rng.bytes(int(rng.integers(8, 20000))))
    for i in range(5):
        write(f"noise{i}.wav", "random bytes", rng.bytes(int(rng.integers(1, 50000))))
    for tag, x, subtype in _float_wavs(y, rng):
        path = tmp / f"{len(cases):03d}-float-{tag}.wav"
        sf.write(path, x, SR, subtype=subtype)
        cases.append(Case(str(path), "float samples"))
    return cases + _special(tmp, encoded["wav"])


# ------------------------------------------------------------------------------------------------------ runner
class Hang(Exception):
    pass


@contextlib.contextmanager
def watchdog(seconds: int):
    def fire(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _no_nan(token: str):
    raise ValueError(f"{token} in JSON output")


def _check_json_lines(stdout: str, *, exactly_one: bool) -> str | None:
    lines = stdout.splitlines()
    if exactly_one and len(lines) != 1:
        return f"{len(lines)} stdout lines, expected 1"
    for line in lines:
        try:
            json.loads(line, parse_constant=_no_nan)
        except ValueError as exc:
            return f"invalid JSON line ({exc}): {line[:120]!r}"
    return None


_ALLOWED_EXTRA = ("emotion-monitor: warning:", )


def classify(command: str, case: Case, capfd) -> tuple[str, str]:
    """(outcome, detail) with outcome in "error" | "valid" | "traceback" | "hang" | "unclear"."""
    args = [command, case.path, "--json" if command == "predict" else "--jsonl"]
    try:
        with watchdog(RUN_LIMIT_S):
            rc = main(args)
    except Hang as exc:
        capfd.readouterr()
        return "hang", str(exc)
    except SystemExit as exc:  # argparse: also one line (tested below), but no name here should cause it
        rc = exc.code
    except BaseException as exc:  # noqa: BLE001 - anything escaping main() is a traceback for the user
        capfd.readouterr()
        return "traceback", f"{type(exc).__name__}: {exc}"
    out, err = capfd.readouterr()
    if "Traceback" in err:
        return "traceback", err[-300:]
    lines = err.splitlines()
    errors = [ln for ln in lines if ln.startswith("emotion-monitor: error:")]
    other = [ln for ln in lines if ln not in errors and not ln.startswith(_ALLOWED_EXTRA)
             and "no speech detected" not in ln and "clipped" not in ln]
    if other:
        return "unclear", f"stray stderr line {other[0][:160]!r}"
    bad_json = _check_json_lines(out, exactly_one=command == "predict" and rc == 0)
    if bad_json:
        return "unclear", bad_json
    if rc == 0:
        return ("valid", "") if not errors else ("unclear", "exit 0 with an error line")
    if len(errors) != 1:
        return "unclear", f"exit {rc} with {len(errors)} error lines"
    if case.path and display_name(case.path) not in errors[0]:
        return "unclear", f"error line does not name the file: {errors[0][:160]!r}"
    return "error", errors[0]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return make_inputs(tmp_path_factory.mktemp("hostile"))


def test_fuzzed_files_end_in_a_clear_error_or_valid_output(inputs, capfd):
    counts: dict[str, int] = {}
    failures = []
    by_kind: dict[str, set] = {}
    for case in inputs:
        for command in ("predict", "file"):
            outcome, detail = classify(command, case, capfd)
            counts[outcome] = counts.get(outcome, 0) + 1
            by_kind.setdefault(case.kind, set()).add(outcome)
            if outcome not in ("error", "valid"):
                failures.append(f"{command} {display_name(case.path)} [{case.kind}]: {outcome}: {detail}")
    summary = (f"{len(inputs)} inputs, {2 * len(inputs)} runs: {counts.get('error', 0)} clear errors, "
               f"{counts.get('valid', 0)} valid outputs, {counts.get('hang', 0)} hangs, "
               f"{counts.get('traceback', 0)} tracebacks, {counts.get('unclear', 0)} unclear")
    with capfd.disabled():
        print(f"\nhostile files: {summary}")
    assert not failures, summary + "\n" + "\n".join(failures[:30])
    assert len(inputs) >= 250
    # The generator must exercise both outcomes, and the special files must get the answer they deserve.
    assert counts.get("error", 0) >= 100 and counts.get("valid", 0) >= 100, summary
    for kind in ("fifo", "directory", "symlink loop", "device", "empty name", "empty file", "float samples"):
        assert "error" in by_kind[kind], kind
    for kind in ("non-UTF-8 name", "newline in name", "unicode name", "255-byte name", "symlink", "plain"):
        assert by_kind[kind] == {"valid"}, (kind, by_kind[kind])


def test_special_files_get_accurate_messages(inputs, capfd):
    expected = {"fifo": "FIFO", "directory": "is a directory", "symlink loop": "symbolic links",
                "dangling symlink": "no such file", "device": "character device", "empty name": "file name is empty",
                "missing": "no such file", "name too long": "name too long", "empty file": "file is empty"}
    for case in inputs:
        if case.kind in expected:
            outcome, detail = classify("predict", case, capfd)
            assert outcome == "error" and expected[case.kind] in detail, (case.kind, detail)


def test_non_finite_samples_never_reach_json(inputs, capfd):
    for case in inputs:
        if case.kind != "float samples":
            continue
        tag = Path(case.path).stem.split("-", 2)[-1]
        for command in ("predict", "file"):
            outcome, detail = classify(command, case, capfd)
            if tag in ("loud900", "denormal"):  # within range: a prediction (or "no speech"), valid JSON
                assert outcome == "valid", (command, tag, detail)
            else:
                assert outcome == "error" and ("not finite" in detail or "as large as" in detail), \
                    (command, tag, detail)


def test_cut_flac_predicts_on_the_readable_part_with_one_warning(inputs, capfd):
    flac = next(c for c in inputs if c.path.endswith("good.wav"))  # the clean clip, re-encoded below
    y, sr = sf.read(flac.path, dtype="float32")
    cut = Path(flac.path).with_name("cut.flac")
    sf.write(cut, y, sr, format="FLAC")
    cut.write_bytes(cut.read_bytes()[:-1])
    with watchdog(RUN_LIMIT_S):
        rc = main(["predict", str(cut), "--json"])
    out, err = capfd.readouterr()
    warnings_ = [ln for ln in err.splitlines() if ln.startswith("emotion-monitor: warning:")]
    assert rc == 0 and len(warnings_) == 1 and "could not be read" in warnings_[0], err
    assert "error" not in err
    assert json.loads(out)["speech_seconds"] > 0.5
    with watchdog(RUN_LIMIT_S):
        rc = main(["file", str(cut), "--jsonl"])
    out, err = capfd.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and len(err.splitlines()) == 1 and "could not be read" in err, err
    assert events[-1]["t"] > 1.3  # every hop up to the cut (the clip is 1.6 s), not an early stop
