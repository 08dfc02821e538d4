"""The HTML report of `bench`: one self-contained page, inline SVG only (no scripts, no network)."""
from __future__ import annotations

import html
import json

import numpy as np

from models.labels import EMOTIONS
from web.protocol import LABEL_COLORS

_EMOTION_COLORS = LABEL_COLORS  # the live page's colours, so the two read alike
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1180px;color:#1d232b}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:2em} table{border-collapse:collapse;margin:.5em 0}
td,th{border-bottom:1px solid #e3e6ea;padding:3px 10px;text-align:right} td:first-child,th:first-child{text-align:left}
.met{color:#1f8a3b;font-weight:600} .missed{color:#c62828;font-weight:600} svg{display:block;margin:.4em 0}
.note{color:#5b6470} code{background:#f3f4f6;padding:1px 4px;border-radius:3px}
"""


def _esc(x) -> str:
    return html.escape(str(x))


def histogram_svg(values, *, title: str, unit: str = "ms", bins: int = 40, width: int = 560, height: int = 200,
                  marks: dict | None = None) -> str:
    """Histogram of values with vertical lines at ``marks`` {label: value}; log-spaced bins if the range is wide."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return f"<p class=note>{_esc(title)}: no samples</p>"
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo + 1e-9
    logx = lo > 0 and hi / lo > 50
    edges = np.geomspace(lo, hi, bins + 1) if logx else np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(v, bins=edges)
    ml, mr, mt, mb = 48, 12, 24, 34
    pw, ph = width - ml - mr, height - mt - mb

    def x(val):
        f = (np.log(val) - np.log(lo)) / (np.log(hi) - np.log(lo)) if logx else (val - lo) / (hi - lo)
        return ml + pw * float(np.clip(f, 0, 1))

    top = max(int(counts.max()), 1)
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
           f'<text x="{ml}" y="15" font-weight="600">{_esc(title)}</text>']
    for c, a, b in zip(counts, edges[:-1], edges[1:]):
        h = ph * c / top
        out.append(f'<rect x="{x(a):.1f}" y="{mt + ph - h:.1f}" width="{max(x(b) - x(a) - 1, 0.5):.1f}" '
                   f'height="{h:.1f}" fill="#4a90e2"/>')
    out.append(f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="#333"/>')
    for t in (np.geomspace(lo, hi, 5) if logx else np.linspace(lo, hi, 5)):
        out.append(f'<text x="{x(t):.1f}" y="{mt + ph + 14}" font-size="11" text-anchor="middle">{t:.3g}</text>')
    out.append(f'<text x="{ml + pw / 2}" y="{height - 3}" font-size="11" text-anchor="middle">{_esc(unit)}'
               f'{" (log scale)" if logx else ""}; n = {v.size}</text>')
    out.append(f'<text x="12" y="{mt + ph / 2}" font-size="11" transform="rotate(-90 12 {mt + ph / 2})" '
               f'text-anchor="middle">count</text><text x="{ml - 4}" y="{mt + 8}" font-size="10" '
               f'text-anchor="end">{top}</text>')
    for i, (label, val) in enumerate((marks or {}).items()):
        if val is None:
            continue
        xv = x(val)
        out.append(f'<line x1="{xv:.1f}" y1="{mt}" x2="{xv:.1f}" y2="{mt + ph}" stroke="#c62828" '
                   'stroke-dasharray="3,2"/>'
                   f'<text x="{xv + 3:.1f}" y="{mt + 10 + 12 * i}" font-size="10" fill="#c62828">{_esc(label)} '
                   f'{val:.3g}</text>')
    out.append("</svg>")
    return "".join(out)


def stage_bars_svg(stages: dict, *, width: int = 760) -> str:
    """Horizontal bars: median cost per speech hop of each stage, with a p99 tick."""
    names = list(stages)
    row, ml, mr = 22, 150, 150
    height = 36 + row * len(names)
    top = max(max((s["p99"] or 0) for s in stages.values()), 1e-6)
    pw = width - ml - mr
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
           '<text x="0" y="14" font-weight="600">per-stage cost per speech hop: bar = median, tick = p99 (ms)</text>']
    for i, n in enumerate(names):
        y = 26 + i * row
        med, p99 = stages[n]["median"] or 0.0, stages[n]["p99"] or 0.0
        out.append(f'<text x="{ml - 6}" y="{y + 13}" font-size="12" text-anchor="end">{_esc(n)}</text>'
                   f'<rect x="{ml}" y="{y + 3}" width="{max(pw * med / top, 0.5):.1f}" height="13" fill="#4a90e2"/>'
                   f'<line x1="{ml + pw * p99 / top:.1f}" y1="{y}" x2="{ml + pw * p99 / top:.1f}" y2="{y + 19}" '
                   f'stroke="#c62828" stroke-width="2"/>'
                   f'<text x="{ml + pw * max(med, p99) / top + 6:.1f}" y="{y + 13}" font-size="11">{med:.4f} / '
                   f'{p99:.4f}</text>')
    out.append("</svg>")
    return "".join(out)


def timeline_svg(stream, rows, *, width: int = 1160, px_per_s: float = 8.0) -> str:
    """Two lanes over stream time: the true emotion of each clip, and the smoothed label of each event."""
    seconds = stream.y.size / 16000
    pw = max(seconds * px_per_s, 200)
    ml, lane = 84, 18
    w = int(ml + pw + 10)
    height = 30 + 2 * lane + 26
    title = f"actor {stream.actor}, {'with ~1 s pauses' if stream.pauses else 'without pauses'}"
    out = [f'<svg width="{w}" height="{height}" viewBox="0 0 {w} {height}" role="img">',
           f'<text x="0" y="14" font-weight="600">{_esc(title)}</text>',
           f'<text x="{ml - 6}" y="{30 + 13}" font-size="11" text-anchor="end">true</text>',
           f'<text x="{ml - 6}" y="{30 + lane + 13}" font-size="11" text-anchor="end">smoothed</text>']

    def x(t):
        return ml + pw * t / seconds

    utts = stream.utterances
    for k, u in enumerate(utts):
        end = utts[k + 1].onset_s if k + 1 < len(utts) else seconds
        out.append(f'<rect x="{x(u.onset_s):.1f}" y="30" width="{max(x(end) - x(u.onset_s), 0.5):.1f}" '
                   f'height="{lane - 2}" fill="{_EMOTION_COLORS.get(u.emotion, "#888")}"><title>{_esc(u.emotion)} '
                   f'from {u.onset_s:.1f} s</title></rect>')
    hop = float(np.median(np.diff([r[0] for r in rows]))) if len(rows) > 1 else 0.1
    for t, speech, label, _ in rows:
        if speech and label is not None:
            out.append(f'<rect x="{x(t - hop):.1f}" y="{30 + lane}" width="{max(x(t) - x(t - hop), 0.5):.2f}" '
                       f'height="{lane - 2}" fill="{_EMOTION_COLORS.get(label, "#888")}"/>')
    for t in range(0, int(seconds) + 1, 10):
        out.append(f'<text x="{x(t):.1f}" y="{30 + 2 * lane + 14}" font-size="10" text-anchor="middle">{t}s</text>')
    out.append("</svg>")
    return "".join(out)


def _legend() -> str:
    return " ".join(f'<span style="display:inline-block;width:11px;height:11px;background:{c}"></span> {_esc(n)}'
                    for n, c in ((e, _EMOTION_COLORS[e]) for e in EMOTIONS))


def _goals_table(res: dict) -> str:
    rows = []
    for name, g in res["goals"].items():
        cls = "met" if g["met"] else ("missed" if g["met"] is False else "")
        word = "met" if g["met"] else ("missed" if g["met"] is False else "n/a")
        rows.append(f"<tr><td>{_esc(name)}</td><td>{_esc(g['value'])}</td><td>{_esc(g['target'])}</td>"
                    f"<td class={cls}>{word}</td></tr>")
    return "<table><tr><th>goal</th><th>value</th><th>target</th><th></th></tr>" + "".join(rows) + "</table>"


def _headline_table(res: dict) -> str:
    h, e, r = res["hop_latency_ms"], res["e2e_latency_ms"], res["reaction_s"]
    rows = [
        ("speedup vs old app per speech hop", f"{res['speedup_vs_baseline']}x ({res['baseline_ms_per_hop']} ms / "
                                              f"{res['ours_ms_per_hop']} ms)"),
        ("real-time factor, one core", res["rtf"]),
        ("hop compute p50 / p95 / p99 ms (speech hops)", f"{h['p50']} / {h['p95']} / {h['p99']}"),
        (f"end to end p50 / p95 / p99 ms ({res['e2e_source']})", f"{e['p50']} / {e['p95']} / {e['p99']}"),
        ("reaction median / p90 s, miss rate", f"{r['median']} / {r['p90']}, {r['miss_rate']}"),
        ("timeline accuracy on speech", res["timeline_accuracy"]),
        ("cold start to first prediction s", res["cold_start_s"]),
        ("peak RSS MB (monitor process)", res["peak_rss_mb"]),
    ]
    return "<table>" + "".join(f"<tr><td>{_esc(a)}</td><td>{_esc(b)}</td></tr>" for a, b in rows) + "</table>"


def render_html(res: dict, art) -> str:
    """The whole report page for a results dict and the run's Artifacts."""
    h, e = res["hop_latency_ms"], res["e2e_latency_ms"]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>emotion-monitor bench</title>"
             f"<style>{_CSS}</style></head><body><h1>emotion-monitor bench</h1>",
             f"<p class=note>{_esc(res['command'])} &middot; {_esc(res['machine']['cpu_model'])} &middot; "
             f"window {res['window_ms']:g} ms, hop {res['hop_ms']:g} ms &middot; source: "
             f"{_esc(res['source']['description'])}</p>",
             "<h2>Headline</h2>", _headline_table(res), "<h2>Goals</h2>", _goals_table(res),
             "<h2>Latency</h2>",
             histogram_svg(art.hop_total_ms, title="hop compute per speech hop (one core)",
                           marks={"p50": h["p50"], "p99": h["p99"]}),
             histogram_svg(art.e2e_ms, title=f"end to end: capture to websocket client ({res['e2e_source']})",
                           marks={"p50": e["p50"], "p99": e["p99"]}),
             "<h2>Stages</h2>", stage_bars_svg(res["stages_ms"]),
             "<h2>Reaction to emotion changes (held-out actors 19 and 20)</h2>",
             f"<p>{_legend()}</p>"]
    parts += [timeline_svg(stream, rows) for stream, rows in art.timelines]
    if "sessions" in res:
        from .sessions import html_section

        parts.append(html_section(res["sessions"]))
    parts.append("<h2>All numbers</h2><pre>" + _esc(json.dumps(res, indent=1)) + "</pre></body></html>")
    return "\n".join(parts)
