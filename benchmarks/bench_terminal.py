"""`bench` results as rich tables on the terminal (the HTML report is benchmarks.bench_report)."""
from __future__ import annotations

from .compute_run import STAGES


def print_results(res: dict, *, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    g = res["goals"]

    def mark(name):
        met = g[name]["met"]
        return "[green]met[/]" if met else ("[red]missed[/]" if met is False else "-")

    head = Table("metric", "value", "goal", "", title=f"emotion-monitor bench ({res['e2e_source']}, "
                                                         f"window {res['window_ms']:g} ms, hop {res['hop_ms']:g} ms)")
    head.add_row("speedup vs old app (per speech hop)", f"{res['speedup_vs_baseline']:.0f}x "
                 f"({res['baseline_ms_per_hop']:.2f} / {res['ours_ms_per_hop']:.3f} ms)",
                 g["speedup_vs_baseline"]["target"], mark("speedup_vs_baseline"))
    head.add_row("real-time factor (1 core)", f"{res['rtf']:.5f} (push only {res['rtf_push_only']:.5f})",
                 g["rtf"]["target"], mark("rtf"))
    h = res["hop_latency_ms"]
    head.add_row("hop compute p50 / p95 / p99 ms", f"{h['p50']:.3f} / {h['p95']:.3f} / {h['p99']:.3f}",
                 "p99 " + g["hop_compute_p99_ms"]["target"], mark("hop_compute_p99_ms"))
    c = res["cpu_time"]
    head.add_row("  in CPU time: hop p99 ms, RTF, speedup", f"{c['hop_ms']['p99']:.3f}, {c['rtf']:.5f}, "
                 f"{c['speedup_vs_baseline']:.0f}x", "", "")
    e = res["e2e_latency_ms"]
    head.add_row("end to end p50 / p95 / p99 ms", f"{e['p50']:.1f} / {e['p95']:.1f} / {e['p99']:.1f}", "", "")
    r = res["reaction_s"]
    head.add_row("reaction median / p90 s (miss rate)",
                 f"{_fmt(r['median'])} / {_fmt(r['p90'])} ({100 * (r['miss_rate'] or 0):.0f}% of {r['changes']})",
                 "median " + g["reaction_median_s"]["target"], mark("reaction_median_s"))
    for key in ("with_pauses", "without_pauses"):
        v = r.get(key, {})
        head.add_row(f"  {key.replace('_', ' ')}", f"{_fmt(v.get('median'))} / {_fmt(v.get('p90'))} "
                     f"({100 * (v.get('miss_rate') or 0):.0f}%), accuracy {_fmt(v.get('timeline_accuracy'))}", "", "")
    head.add_row("timeline accuracy on speech", _fmt(res["timeline_accuracy"]), "", "")
    head.add_row("cold start to first prediction s", f"{res['cold_start_s']:.2f}", g["cold_start_s"]["target"],
                 mark("cold_start_s"))
    head.add_row("peak RSS MB (monitor / server)", f"{res['peak_rss_mb']:.0f} / {_fmt(res.get('server_peak_rss_mb'))}",
                 "", "")
    for key, run in res.get("stalled_viewer", {}).get("runs", {}).items():
        goal = g.get(f"stalled_viewer_others_p95_ms_at_{key}", {})
        met = goal.get("met")
        stall, base = run["stall"]["latency_ms"], run["no_stall"]["latency_ms"]
        head.add_row(f"{key} viewers, one stalled: others p50 / p95 ms",
                     f"{_fmt(stall['p50'])} / {_fmt(stall['p95'])} (none stalled {_fmt(base['p95'])}); "
                     f"dropped after {_fmt(run['stalled_dropped_after_s'])} s, lost {run['lost']}",
                     "p95 " + goal.get("target", "-"),
                     "[green]met[/]" if met else ("[red]missed[/]" if met is False else "-"))
    console.print(head)
    if "sessions" in res:
        from .sessions import print_table

        print_table(res["sessions"], console)
    st = Table("stage (speech hops)", "median ms", "p95", "p99", "max", "% of hop budget",
               title="per-stage cost per hop")
    for s in STAGES:
        v = res["stages_ms"][s]
        st.add_row(s, f"{v['median']:.4f}", f"{v['p95']:.4f}", f"{v['p99']:.4f}", f"{v['max']:.3f}",
                   f"{100 * v['share_of_hop_budget']:.3f}")
    t = res["hop_latency_ms"]
    st.add_row("[b]total hop compute[/]", f"{t['median']:.4f}", f"{t['p95']:.4f}", f"{t['p99']:.4f}", f"{t['max']:.3f}",
               f"{100 * t['mean'] / res['hop_ms']:.3f}")
    console.print(st)


def _fmt(v) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
