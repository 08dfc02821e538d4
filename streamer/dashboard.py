"""Rich terminal dashboard for `emotion-monitor live`: a pure render function of the latest state."""
from __future__ import annotations

import time
from collections import deque

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from web.protocol import LABEL_COLORS

from .events import PredictionEvent

COLORS = LABEL_COLORS  # the page's colours (web.protocol owns them)
_SPARK = "▁▂▃▄▅▆▇█"


def _bar(p: float, width: int = 28) -> str:
    full = int(round(max(0.0, min(1.0, p)) * width))
    return "█" * full + "·" * (width - full)


class Dashboard:
    """Keeps a short history and renders the current state; update() per event, render() per refresh."""

    def __init__(self, emotions, genders, *, source: str, history: int = 60, model: str = ""):
        self.emotions, self.genders, self.source = tuple(emotions), tuple(genders), source
        self.model = model  # the emotion model's name, so `--language` can be seen to have taken effect
        self.history: deque = deque(maxlen=history)  # (label or None, confidence)
        self.last: PredictionEvent | None = None
        self.probs: dict = {}  # last smoothed probabilities of speech, kept (dimmed) through pauses
        self.message = ""
        self.delay_ms = 0.0

    def update(self, event: PredictionEvent) -> None:
        self.last = event
        self.delay_ms = 1000.0 * (time.time() - event.wall)  # capture of the window's last sample -> shown
        if event.emotion_probs:
            self.probs = event.emotion_probs
        conf = event.emotion_probs.get(event.emotion, 0.0) if event.emotion else 0.0
        self.history.append((event.emotion, conf))

    def _sparkline(self) -> Text:
        text = Text()
        for label, conf in self.history:
            if label is None:
                text.append("·", style="grey35")
            else:
                text.append(_SPARK[min(7, int(conf * 8))], style=COLORS.get(label, "white"))
        return text

    def render(self):
        e = self.last
        title = "[bold reverse yellow] DEMO STREAM - not your microphone [/]" if self.source == "demo" \
            else f"[bold]voice emotion monitor[/] - source: {self.source}"
        if e is None:
            return Panel(Text(self.message or "waiting for audio..."), title=title)
        head = Text()
        if e.emotion and e.uncertain:  # below the calibrated threshold: a guess, not a finding
            head.append(f"uncertain ({e.emotion}?)", style="bold grey62")
            head.append(f"  {100 * e.emotion_probs.get(e.emotion, 0):.0f}%   ")
        elif e.emotion:
            head.append(f"{e.emotion.upper()}", style=f"bold {COLORS.get(e.emotion, 'white')}")
            head.append(f"  {100 * e.emotion_probs.get(e.emotion, 0):.0f}%   ")
        else:
            head.append("no speech  ", style="grey50")
        head.append(f"voice: {e.gender or '-'}", style=COLORS.get(e.gender or "", "white"))
        if e.gender:
            head.append(f" {100 * e.gender_probs[e.gender]:.0f}%")
        bars = Table.grid(padding=(0, 1))
        for label in self.emotions:
            p = self.probs.get(label, 0.0)
            style = COLORS.get(label, "white") if e.speech else "grey42"
            bars.add_row(f"{label:>9}", Text(_bar(p), style=style), f"{100 * p:5.1f}%")
        level = Text(f"level {e.level_dbfs:6.1f} dBFS ")
        level.append(_bar((e.level_dbfs + 70) / 70, 20), style="green" if e.level_dbfs < -3 else "red")
        vad = Text(" SPEECH " if e.speech else " silence ", style="bold black on green" if e.speech else "grey50")
        compute = sum(e.timings_ms.values())
        footer = Text(f"t={e.t:7.1f}s  compute {compute:5.2f} ms/hop  delay {self.delay_ms:4.0f} ms  "
                      f"overflows {e.overflows}  "
                      f"dropped windows {e.dropped_windows}" + _losses(e), style="grey62")
        if e.gap:
            vad = Text(" CAPTURE GAP (device lost) ", style="bold black on grey62")
        parts = [head, bars, Text.assemble(vad, "  ", level), Text("history ").append(self._sparkline()), footer]
        if self.message:
            parts.append(Text(self.message, style="yellow"))
        return Panel(Group(*parts), title=title,
                     subtitle=f"{f'model: {self.model} · ' if self.model else ''}Ctrl-C to stop")


def _losses(e: PredictionEvent) -> str:
    """The capture-loss counters, once any is non-zero (a clean run's footer stays short)."""
    parts = []
    if e.gaps:
        parts.append(f"capture gaps {e.gaps} ({e.gap_seconds:.1f} s)")
    if e.overrun_seconds:
        parts.append(f"capture overwritten {e.overrun_seconds:.2f} s")
    return "".join(f"  {p}" for p in parts)
