"""Regenerate the page's sample clips (web/static/samples/): espeak-ng speech in three prosody styles x two voices.

    python -m web.make_samples [--out DIR]

Each clip is one sentence spoken by espeak-ng (a formant synthesiser: no recording of any person) with SSML
prosody (rate, pitch, pitch range, volume), resampled to 16 kHz mono, padded with 0.3 s of silence and written as
16-bit FLAC, with ``index.json`` (what the page's gallery lists) and ``README.md`` (how they were made, credits).
The styles are prosody, not acted emotions: what the models make of them is the point of the demo.
Needs the ``espeak-ng`` program (run.sh installs it); output is deterministic for one espeak-ng version.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parent / "static" / "samples"
SR = 16000
PAD_S = 0.3
PEAK = 0.89  # -1 dBFS: the loud style is louder than the others, by design, but never clipped


@dataclass(frozen=True)
class Style:
    key: str
    title: str
    rate: str     # SSML prosody values espeak-ng understands
    pitch: str
    range: str
    volume: str
    gain_db: float  # the level the clip keeps relative to the loudest style (soft speech stays soft)
    text: str


@dataclass(frozen=True)
class Voice:
    key: str
    title: str
    espeak: str


STYLES = (
    Style("calm", "calm: slow, low, soft", rate="slow", pitch="low", range="low", volume="soft", gain_db=-8.0,
          text="Let us take a moment. Everything is going to be fine, there is no hurry at all."),
    Style("lively", "lively: fast, high, loud", rate="fast", pitch="high", range="x-high", volume="x-loud",
          gain_db=0.0, text="We won! I cannot believe it, this is the best news all year!"),
    Style("flat", "flat: slow, monotone, quiet", rate="x-slow", pitch="x-low", range="x-low", volume="x-soft",
          gain_db=-14.0, text="I waited all day. Nobody called. I suppose it does not matter anymore."),
)
VOICES = (Voice("female", "female-sounding voice", "en-us+f3"), Voice("male", "male-sounding voice", "en-us+m3"))


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True).stdout
    return " ".join(out.split()[:4])


def render(style: Style, voice: Voice) -> np.ndarray:
    """The sentence at 16 kHz float32, padded, at the style's level."""
    import soundfile as sf
    import soxr

    ssml = (f'<speak><prosody rate="{style.rate}" pitch="{style.pitch}" range="{style.range}" '
            f'volume="{style.volume}">{style.text}</prosody></speak>')
    wav = subprocess.run(["espeak-ng", "-m", "-v", voice.espeak, "--stdout", ssml], check=True,
                         capture_output=True).stdout
    y, sr = sf.read(io.BytesIO(wav), dtype="float32")
    y = soxr.resample(y, sr, SR).astype(np.float32)
    y *= PEAK * 10 ** (style.gain_db / 20) / max(float(np.abs(y).max()), 1e-9)
    pad = np.zeros(int(PAD_S * SR), np.float32)
    return np.concatenate([pad, y, pad])


def generate(out: Path) -> list[dict]:
    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for voice in VOICES:
        for style in STYLES:
            y = render(style, voice)
            name = f"{style.key}-{voice.key}.flac"
            sf.write(out / name, y, SR, format="FLAC", subtype="PCM_16")
            entries.append({"file": name, "title": f"{style.title} ({voice.title})", "style": style.key,
                            "voice": voice.key, "text": style.text, "seconds": round(y.size / SR, 2),
                            "espeak": {"voice": voice.espeak, **{k: v for k, v in asdict(style).items()
                                                                 if k in ("rate", "pitch", "range", "volume")}}})
    (out / "index.json").write_text(json.dumps({"samples": entries}, indent=1) + "\n", encoding="utf-8")
    (out / "README.md").write_text(_readme(entries), encoding="utf-8")
    return entries


def _readme(entries: list[dict]) -> str:
    rows = "\n".join(f"| `{e['file']}` | {e['title']} | {e['seconds']:.1f} s | {e['text']} |" for e in entries)
    return f"""# Sample clips

Synthetic speech for the page's sample gallery: no recording of any person. Made by `python -m web.make_samples`
with {espeak_version()} (https://github.com/espeak-ng/espeak-ng, GPL-3.0-or-later; the program is GPL, the speech
it renders is not a copy of it and carries no licence of its own), voices `en-us+f3` and `en-us+m3`, SSML prosody
per style, resampled to 16 kHz mono with soxr, 0.3 s of silence either side, 16-bit FLAC.
The styles differ in prosody only (rate, pitch, pitch range, loudness); they are not acted emotions, so
whatever the models say about them is a demonstration, not a test of accuracy.

| file | style | length | text |
|---|---|---|---|
{rows}
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Regenerate the page's sample clips with espeak-ng.")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)
    try:
        entries = generate(args.out)
    except FileNotFoundError:
        print("error: espeak-ng is not installed (apt-get install espeak-ng)", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"error: espeak-ng failed: {exc.stderr.decode(errors='replace').strip()}", file=sys.stderr)
        return 1
    total = sum((args.out / e["file"]).stat().st_size for e in entries)
    print(f"{len(entries)} clips, {total / 1024:.0f} KiB, in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
