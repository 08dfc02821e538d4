"""Extra gender-only voices: Debian's Asterisk PBX prompt packages (other languages, 8 kHz telephone audio).

`fetch-voices --out DIR` runs `apt-get download` for the packages below and unpacks them with `dpkg-deb -x`
into DIR (never into the repository). Each voice sits in a folder named ``<lang>_<CC>_<f|m>_<Name>``
(e.g. ``en_US_f_Allison``, ``it_IT_m_Carlo``): the gender comes from that name. The same person may
record several languages (Allison Smith: en_US and es_MX), so the speaker id is the name alone.
Licences: core sounds CC BY-SA 3.0 (Allison Smith / Digium), it-menardi CC BY-SA 3.0.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .datasets import AUDIO_EXTS, Utterance

__all__ = ["PACKAGES", "register", "run_fetch_voices", "load_voices", "iter_voices"]

PACKAGES = ("asterisk-core-sounds-en-wav", "asterisk-core-sounds-es-wav", "asterisk-core-sounds-fr-wav",
            "asterisk-core-sounds-it-wav", "asterisk-core-sounds-ru-wav", "asterisk-prompt-it-menardi-wav")
_VOICE_DIR = re.compile(r"^([a-z]{2})_([A-Z]{2})_([fm])_([A-Za-z0-9]+)$")
_MIN_SECONDS = 0.8   # shorter prompts ("a", "1") hold too little voice for a window


def register(subparsers) -> None:
    p = subparsers.add_parser("fetch-voices", help="download extra gender-only voices (Debian asterisk prompts)")
    p.add_argument("--out", type=Path, required=True, help="target directory (outside the repository)")
    p.add_argument("--packages", nargs="*", default=list(PACKAGES))
    p.set_defaults(run=run_fetch_voices)


def run_fetch_voices(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise FileNotFoundError("fetch-voices needs apt-get and dpkg-deb (Debian/Ubuntu)")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", *args.packages], cwd=tmp, check=True)
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(out / deb.name.split("_")[0])], check=True)
    utts = load_voices([out])
    voices = sorted({(u.speaker, u.gender) for u in utts})
    print(f"{len(utts)} clips, voices: {voices}")
    return 0


def iter_voices(root: str | Path):
    """Utterances (emotion None) under every ``<lang>_<CC>_<f|m>_<Name>`` folder below root."""
    import soundfile as sf

    for d in sorted(p for p in Path(root).rglob("*_*_*_*") if p.is_dir() and _VOICE_DIR.match(p.name)):
        lang, cc, g, name = _VOICE_DIR.match(d.name).groups()
        for path in sorted(p for p in d.rglob("*") if p.suffix.lower() in AUDIO_EXTS):
            try:
                if sf.info(str(path)).duration < _MIN_SECONDS:
                    continue
            except RuntimeError:
                continue
            yield Utterance(path=path, corpus="asterisk", speaker=f"asterisk_{name}",
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
