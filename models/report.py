"""Self-contained HTML report (inline SVG confusion matrices and reliability diagrams) from evaluate's JSON."""
from __future__ import annotations

import html
import json

__all__ = ["render_html"]

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4}.leak{color:#a33}.grid{display:flex;flex-wrap:wrap;gap:24px}figure{margin:0}
figcaption{font-size:.9em;color:#555}"""


def _confusion_svg(cm: list, labels: list, title: str) -> str:
    n = len(labels)
    cell, left, top = 38, 80, 70
    w, h = left + n * cell + 10, top + n * cell + 10
    rows = [sum(r) or 1 for r in cm]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-size="11">',
             f'<text x="{left}" y="14" font-weight="bold">{html.escape(title)}</text>']
    for j, lab in enumerate(labels):
        x = left + j * cell + cell / 2
        parts.append(f'<text x="{x}" y="{top - 6}" transform="rotate(-45 {x} {top - 6})">{html.escape(lab)}</text>')
    for i, lab in enumerate(labels):
        y = top + i * cell
        parts.append(f'<text x="{left - 4}" y="{y + cell / 2 + 4}" text-anchor="end">{html.escape(lab)}</text>')
        for j in range(n):
            frac = cm[i][j] / rows[i]
            shade = int(255 - 200 * frac)
            fill = f"rgb({shade},{shade},255)"
            colour = "#fff" if frac > 0.55 else "#000"
            parts.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" '
                         f'stroke="#fff"><title>true {lab}, predicted {labels[j]}: {cm[i][j]}</title></rect>')
            parts.append(f'<text x="{left + j * cell + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" '
                         f'fill="{colour}">{frac:.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _reliability_svg(bins: dict, title: str) -> str:
    size, pad = 200, 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 2 * pad}" height="{size + 2 * pad}" '
             'font-size="11">', f'<text x="{pad}" y="14" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" stroke="#999"/>',
             f'<line x1="{pad}" y1="{pad + size}" x2="{pad + size}" y2="{pad}" stroke="#bbb" stroke-dasharray="4"/>']
    n = len(bins["count"])
    for b in range(n):
        if not bins["count"][b]:
            continue
        x = pad + b * size / n
        hgt = bins["accuracy"][b] * size
        parts.append(f'<rect x="{x + 1}" y="{pad + size - hgt}" width="{size / n - 2}" height="{hgt}" '
                     f'fill="#69c"><title>confidence {bins["confidence"][b]:.2f}: accuracy '
                     f'{bins["accuracy"][b]:.2f} (n={bins["count"][b]})</title></rect>')
    parts.append(f'<text x="{pad + size / 2}" y="{pad + size + 20}" text-anchor="middle">confidence</text>')
    parts.append(f'<text x="10" y="{pad + size / 2}" transform="rotate(-90 10 {pad + size / 2})" '
                 'text-anchor="middle">accuracy</text></svg>')
    return "".join(parts)


def _fmt(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def render_html(report: dict) -> str:
    """HTML page for the dict written by `evaluate` (see models.train)."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Model evaluation</title><style>{_CSS}</style>"
           "</head><body><h1>Emotion and gender models: evaluation</h1>",
           f"<p>Recipe: <code>{html.escape(json.dumps(report['recipe']))}</code><br>seed {report['seed']}, "
           f"{report['n_clips']} clips, generated {html.escape(report['generated'])}.</p>",
           "<p>Speaker-independent: 5 folds, each holding out a fifth of every corpus's speakers (RAVDESS 4 actors, "
           "one TESS speaker in folds 1-2, ASED 13, BAVED 12, the extra voices round-robin) and trained on all "
           "other speakers. <b>clip</b> = mean of window probabilities over a clip's speech windows, each clip "
           "alone; <b>session</b> = each held-out speaker's clips, shuffled and joined with 1 s of silence, pushed "
           "as one stream through the real Pipeline (speech encoder state and speaker normalisation carried "
           "through the session), a clip scored by the mean raw probabilities of the windows ending inside it; "
           "<b>session prior-corrected</b> = the same stream with each window's probabilities divided by the "
           "session's running mean prediction (streamer.adaptation.PriorCorrection), measured, not shipped unless "
           "the model card says so; <b>session displayed</b> = the same stream scored by what the monitor shows at "
           "those windows (emotion: calibrated and smoothed; gender: the mean over the speech segment so far, "
           "which a pause of 3 s ends); <b>window</b> = every speech window alone. Cross-corpus rows train without one corpus and test on it, "
           "on the classes it shares with the rest. <span class='leak'>Random split (speakers leak)</span> rows "
           "are for comparison only.</p>"]
    for task, res in report["tasks"].items():
        labels = res["labels"]
        out.append(f"<h2>{task}</h2><table><tr><th>split</th><th>test set</th><th>level</th><th>n</th><th>UA</th>"
                   "<th>accuracy</th><th>macro-F1</th><th>ECE</th></tr>")
        figs = []
        for split, by_set in res["results"].items():
            cls = " class='leak'" if split.startswith("random") else ""
            for name, lv in by_set.items():
                for level in ("session", "session displayed", "session prior-corrected", "clip", "window"):
                    s = lv.get(level)
                    if not s:
                        continue
                    out.append(f"<tr{cls}><td>{html.escape(split)}</td><td>{html.escape(name)}</td><td>{level}</td>"
                               f"<td>{s['n']}</td><td>{_fmt(s['ua'])}</td><td>{_fmt(s['accuracy'])}</td>"
                               f"<td>{_fmt(s['macro_f1'])}</td><td>{_fmt(s['ece'])}</td></tr>")
                    if level == ("session" if "session" in lv else "clip"):
                        title = f"{task} · {name} · {split} · {level}"
                        figs.append("<figure>" + _confusion_svg(s["confusion"], lv.get("labels", labels), title)
                                    + _reliability_svg(s["reliability"], "reliability (clip)")
                                    + "</figure>")
        out.append("</table>")
        if res.get("folds"):
            out.append("<details><summary>per fold (speaker-independent, clip UA)</summary><table>"
                       "<tr><th>fold</th><th>UA</th><th>n</th></tr>")
            for f in res["folds"]:
                out.append(f"<tr><td>{html.escape(f['name'])}</td><td>{_fmt(f['ua'])}</td><td>{f['n']}</td></tr>")
            out.append("</table></details>")
        cal = res.get("calibration")
        if cal:
            out.append("<h3>Calibration (temperature scaling on the held-out speakers' windows)</h3><table><tr>"
                       + "".join(f"<th>{html.escape(k)}</th>" for k in cal) + "</tr><tr>"
                       + "".join(f"<td>{_fmt(v) if isinstance(v, float) else html.escape(str(v))}</td>"
                                 for v in cal.values()) + "</tr></table>")
        out.append("<div class='grid'>" + "".join(figs) + "</div>")
    if report.get("experiments"):
        out.append("<h2>Design experiments</h2><p>Speaker-independent folds as above, one seed each; differences "
                   "of 0.02-0.03 are within run-to-run noise (TESS has only two folds).</p><table><tr>"
                   "<th>experiment</th><th>RAVDESS clip UA</th><th>RAVDESS window UA</th><th>TESS clip UA</th>"
                   "<th>TESS window UA</th><th>asterisk voices bal. acc</th></tr>")
        for e in report["experiments"]:
            cells = "".join(f"<td>{_fmt(e.get(k))}</td>" for k in
                            ("ravdess_ua", "ravdess_win", "tess_ua", "tess_win", "asterisk_ua"))
            out.append(f"<tr><td style='text-align:left'>{html.escape(e['name'])}</td>{cells}</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
