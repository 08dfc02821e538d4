"""Soak run: `emotion-monitor live` on the PulseAudio virtual microphone for many minutes, fed real speech.

    python -m benchmarks.soak [--minutes 10] [--data ../shared/data] [--json OUT]

Plays RAVDESS/TESS clips (with pauses) into the virtual mic while the monitor runs with the default window
and hop, then reports input overflows, dropped windows, events, speech share and per-hop compute.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from ._util import DEFAULT_DATA, ROOT, percentile, write_json
from .vmic import virtual_mic


def _player(mic, clips, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        proc = mic.play(rng.choice(clips))
        while proc.poll() is None and not stop.is_set():
            time.sleep(0.1)
        if proc.poll() is None:
            proc.terminate()
        stop.wait(rng.uniform(0.2, 2.0))  # pauses of varying length between utterances


def run(*, minutes: float, data_dir: Path, seed: int = 0) -> dict:
    clips = sorted((data_dir / "ravdess").glob("Actor_*/*.flac")) + sorted((data_dir / "tess").glob("*/*.flac"))
    if not clips:
        raise SystemExit(f"soak: no clips under {data_dir}")
    with virtual_mic() as mic:
        cmd = [sys.executable, "-m", "streamer", "live", "--no-ui", "--jsonl", "--no-demo",
               "--duration", str(minutes * 60)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **mic.env})
        stop = threading.Event()
        player = threading.Thread(target=_player, args=(mic, clips, stop, seed), daemon=True)
        player.start()
        events = [json.loads(line) for line in proc.stdout]
        err = proc.stderr.read()
        proc.wait()
        stop.set()
        player.join(timeout=5)
    if not events:
        raise SystemExit(f"soak: the monitor produced no events: {err.strip()}")
    compute = [sum(e["timings_ms"].values()) for e in events]
    return {"minutes": minutes, "exit_code": proc.returncode, "events": len(events),
            "speech_share": round(sum(e["speech"] for e in events) / len(events), 3),
            "overflows": events[-1]["overflows"], "dropped_windows": events[-1]["dropped_windows"],
            "hop_compute_ms": {"p50": round(percentile(compute, 50), 3), "p99": round(percentile(compute, 99), 3),
                               "max": round(max(compute), 3)},
            "stderr_tail": err.strip().splitlines()[-3:]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="corpus root with ravdess/ and tess/")
    p.add_argument("--json", default=None, metavar="OUT")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    res = run(minutes=args.minutes, data_dir=args.data, seed=args.seed)
    print(json.dumps(res, indent=2))
    if args.json:
        write_json(args.json, res)
    return 0 if res["exit_code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
