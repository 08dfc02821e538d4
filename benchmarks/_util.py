"""Small helpers shared by the benchmarks: timing medians, the project root, the corpus location."""
from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_calls(fn, n: int) -> list[float]:
    """Wall seconds of n successive calls of fn()."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median_us(samples) -> float:
    return statistics.median(samples) * 1e6


def percentile(values, q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * (len(s) - 1)))))]


def write_json(path, data) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def _esc(text) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def bars_svg(rows, *, title: str, unit: str = "", width: int = 720, vmax: float | None = None,
             colors: dict | None = None) -> str:
    """Horizontal bar chart as inline SVG. rows: [(label, value, series)]; series picks the colour."""
    palette = colors or {}
    default = ["#4a90e2", "#e67e22", "#2ecc71", "#9b59b6"]
    series = list(dict.fromkeys(r[2] for r in rows))
    top = vmax or max((r[1] for r in rows), default=1.0) or 1.0
    row, ml, mr = 20, 190, 90
    height = 40 + row * len(rows)
    pw = width - ml - mr
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'font-family="sans-serif"><text x="0" y="14" font-weight="600">' + _esc(title) + "</text>"]
    for i, (label, value, s) in enumerate(rows):
        y = 26 + i * row
        color = palette.get(s, default[series.index(s) % len(default)])
        out.append(f'<text x="{ml - 6}" y="{y + 12}" font-size="12" text-anchor="end">{_esc(label)}</text>'
                   f'<rect x="{ml}" y="{y + 2}" width="{max(pw * value / top, 0.5):.1f}" height="14" fill="{color}"/>'
                   f'<text x="{ml + pw * value / top + 5:.1f}" y="{y + 13}" font-size="11">{value:.3g} {_esc(unit)}'
                   "</text>")
    out.append("</svg>")
    return "".join(out)


def write_html(path, *, title: str, body: str) -> None:
    """A self-contained report page (no external assets)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(f"<!doctype html><meta charset='utf-8'><title>{_esc(title)}</title>"
                          "<body style='font-family:sans-serif;max-width:900px;margin:2em auto'>"
                          f"<h1>{_esc(title)}</h1>{body}</body>\n")
