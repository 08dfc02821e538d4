"""Loaders for the original RAVDESS (speech), TESS, ASED and BAVED layouts; the corpus root is always an argument.

RAVDESS: ``Actor_NN/03-01-EE-II-SS-RR-AA.*``; TESS: ``<SPK>_<emotion>/<SPK>_<word>_<emotion>.*``;
ASED v1: ``<NN><Emotion>/<e><N>-SS-RR-GG-PP.*`` (Amharic; gender taken per speaker, by majority, as five
files carry the other code); BAVED: ``<word>/<speaker>-<m|f>-<age>-<word>-<level>-<id>.*`` (Arabic single
words; gender only, the level is arousal, not an emotion). Audio: .wav, .flac or .ogg.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from collections import Counter

from .labels import ASED_GENDER, ased_emotion, ravdess_emotion, ravdess_gender, ravdess_intensity, tess_emotion

__all__ = ["Utterance", "iter_ravdess", "iter_tess", "iter_ased", "iter_baved", "load_corpora", "detect_corpus",
           "words_tell_emotion", "CORPORA", "CORPUS_LANGUAGE"]

AUDIO_EXTS = (".wav", ".flac", ".ogg")
_ASED_RE = re.compile(r"^([nfhsaNFHSA])(\d+)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_BAVED_RE = re.compile(r"^(\d+)-([mf])-(\d+)-(\d)-(\d)-(\d+)$")
_RAVDESS_RE = re.compile(r"^03-01-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_TESS_RE = re.compile(r"^([A-Za-z]+)_([A-Za-z']+)_([A-Za-z]+)$")
# TESS's two speakers are both women (Pichora-Fuller & Dupuis 2020).
_TESS_GENDER = {"OAF": "female", "YAF": "female"}


@dataclass(frozen=True)
class Utterance:
    """One labelled clip. emotion is a name in labels.EMOTIONS or None (gender-only corpora)."""

    path: Path
    corpus: str
    speaker: str
    gender: str
    emotion: str | None
    intensity: str | None = None
    sentence: str | None = None    # ASED: sentences 01-05 are tied to one emotion each, 06-07 are not


def words_tell_emotion(u: Utterance) -> bool:
    """True where a clip's words were written for its emotion: ASED's sentences 01-05, a set per emotion, so
    that a model could score them by their words. RAVDESS's two statements, TESS's carrier phrase and ASED's
    sentences 06-07 are spoken in every emotion."""
    return u.corpus == "ased" and u.sentence is not None and int(u.sentence) <= 5


def _audio_files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.suffix.lower() in AUDIO_EXTS)


def iter_ravdess(root: str | Path) -> Iterator[Utterance]:
    """Speech clips (modality 03, vocal channel 01) under root/Actor_NN/. Other files are ignored."""
    for path in _audio_files(Path(root), "Actor_*/*"):
        m = _RAVDESS_RE.match(path.stem)
        if not m:
            continue
        emo, inten, _stmt, _rep, actor = m.groups()
        a = int(actor)
        yield Utterance(path=path, corpus="ravdess", speaker=f"ravdess_{a:02d}", gender=ravdess_gender(a),
                        emotion=ravdess_emotion(emo), intensity=ravdess_intensity(inten))


def iter_tess(root: str | Path) -> Iterator[Utterance]:
    """Clips under root/<SPK>_<emotion>/ named <SPK>_<word>_<emotion>."""
    for path in _audio_files(Path(root), "*_*/*"):
        m = _TESS_RE.match(path.stem)
        if not m:
            continue
        spk, _word, emo = m.groups()
        spk = spk.upper()
        if spk not in _TESS_GENDER:
            raise ValueError(f"unknown TESS speaker {spk!r} in {path} (expected OAF or YAF)")
        yield Utterance(path=path, corpus="tess", speaker=f"tess_{spk}", gender=_TESS_GENDER[spk],
                        emotion=tess_emotion(emo))


def iter_ased(root: str | Path) -> Iterator[Utterance]:
    """Clips under root/<NN><Emotion>/ named <e><N>-SS-RR-GG-PP; gender is the speaker's majority code."""
    rows = []
    for path in _audio_files(Path(root), "[0-9][0-9]*/*"):
        m = _ASED_RE.match(path.stem)
        if m:
            emo, _n, sentence, _rep, g, spk = m.groups()
            rows.append((path, emo, sentence, g, spk))
    codes: dict[str, Counter] = {}
    for _p, _e, _s, g, spk in rows:
        codes.setdefault(spk, Counter())[g] += 1
    for path, emo, sentence, _g, spk in rows:
        g = codes[spk].most_common(1)[0][0]
        if g not in ASED_GENDER:
            raise ValueError(f"unknown ASED gender code {g!r} for speaker {spk} (expected 01 or 02)")
        yield Utterance(path=path, corpus="ased", speaker=f"ased_{spk}", gender=ASED_GENDER[g],
                        emotion=ased_emotion(emo), intensity=None, sentence=sentence)


def iter_baved(root: str | Path) -> Iterator[Utterance]:
    """Clips under root/<word>/ named <speaker>-<m|f>-<age>-<word>-<level>-<id>: gender only (emotion None)."""
    for path in _audio_files(Path(root), "[0-9]*/*"):
        m = _BAVED_RE.match(path.stem)
        if not m:
            continue
        spk, g, _age, _word, level, _id = m.groups()
        yield Utterance(path=path, corpus="baved", speaker=f"baved_{int(spk):02d}",
                        gender="male" if g == "m" else "female", emotion=None, intensity=f"arousal{level}")


def detect_corpus(root: str | Path) -> str | None:
    """'ravdess', 'tess', 'ased', 'baved' or None, from the folder layout directly under root."""
    root = Path(root)
    if any(root.glob("Actor_[0-9]*")):
        return "ravdess"
    if any(p.is_dir() and p.name[:3].upper() in _TESS_GENDER for p in root.glob("*_*")):
        return "tess"
    if any(p.is_dir() and re.fullmatch(r"\d\d(Neutral|Fearful|Happy|Sad|Angry)", p.name) for p in root.iterdir()):
        return "ased"
    if (root / "speakers_info.json").is_file() or any(_BAVED_RE.match(p.stem) for p in root.glob("[0-9]/*")):
        return "baved"
    return None


_LOADERS = {"ravdess": iter_ravdess, "tess": iter_tess, "ased": iter_ased, "baved": iter_baved}
CORPORA: tuple[str, ...] = tuple(_LOADERS)
# ISO 639-1 codes of the corpora's languages: a per-language emotion model trains on its language's corpora.
CORPUS_LANGUAGE: dict[str, str] = {"ravdess": "en", "tess": "en", "ased": "am", "baved": "ar"}


def _load_dir(root: Path) -> list[Utterance]:
    kind = detect_corpus(root)
    if kind is not None:
        return list(_LOADERS[kind](root))
    # A parent holding ravdess/ and/or tess/ (and maybe other recognised folders).
    out = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        sub_kind = detect_corpus(sub)
        if sub_kind is not None:
            out.extend(_LOADERS[sub_kind](sub))
    return out


def load_corpora(dirs: Iterable[str | Path]) -> list[Utterance]:
    """All utterances under the given dirs (each a corpus root, or a parent of corpus roots).

    Raises FileNotFoundError for a missing dir and ValueError for a dir with no recognised clips.
    """
    out: list[Utterance] = []
    for d in dirs:
        root = Path(d)
        if not root.is_dir():
            raise FileNotFoundError(f"corpus dir not found: {root}")
        utts = _load_dir(root)
        if not utts:
            raise ValueError(f"no RAVDESS (Actor_NN/03-01-*), TESS (<SPK>_<emotion>/*), ASED (NNEmotion/*) or "
                             f"BAVED (<word>/*) clips (.wav, .flac, .ogg) found under {root}")
        out.extend(utts)
    return out
