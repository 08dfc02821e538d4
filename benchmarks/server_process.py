"""`emotion-monitor serve --port 0` in a subprocess, for the end-to-end and stalled-viewer parts of `bench`."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ._util import ROOT
from .bench_options import BenchError


class ServerProcess:
    """`emotion-monitor serve --port 0` in a subprocess; stderr is collected by a thread."""

    def __init__(self, source_args: list[str]):
        cmd = [sys.executable, "-m", "streamer", "serve", "--port", "0", "--history-seconds", "0", *source_args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.port: int | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True, name="bench-serve-stderr").start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            m = re.search(r"serving the live page at http://[^:/]+:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout: float = 60.0) -> int:
        self._ready.wait(timeout)
        if self.port is None:
            raise BenchError(f"the server did not start: {self.tail()}")
        return self.port

    def tail(self) -> str:
        return " | ".join(self.lines[-3:]) or f"exit {self.proc.poll()}"

    def peak_rss_mb(self) -> float | None:
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        m = re.search(r"VmHWM:\s+(\d+) kB", status)
        return round(int(m.group(1)) / 1024, 1) if m else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
