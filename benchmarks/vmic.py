"""A real, clocked capture device on machines without a sound card (for the tests and the e2e benchmark).

``virtual_mic()`` starts an isolated user-space PulseAudio (recipe: shared/recipes/virtual-mic.md):
a 16 kHz mono s16le null sink ``vsink`` whose monitor is remapped to the source ``vmic``.
What is played into ``vsink`` (``VirtualMic.play``) is what PortAudio's ``default`` / ``pulse``
input device records. State lives in a temp dir; nothing is written to $HOME.

PortAudio enumerates devices only when it initialises, and ``import sounddevice`` initialises
it, so the context manager re-initialises sounddevice (if imported) after start and after stop.
Streams open in this process at those moments are closed by that.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

__all__ = ["VirtualMic", "VirtualMicUnavailable", "virtual_mic"]

_TOOLS = ("pulseaudio", "pactl", "parec", "paplay")
_INSTALL = ("apt-get install -y --no-install-recommends "
            "pulseaudio pulseaudio-utils libasound2-plugins libportaudio2")
_READY_S = 5.0


class VirtualMicUnavailable(RuntimeError):
    """PulseAudio is missing or failed to start."""


@dataclass
class VirtualMic:
    """A running virtual microphone. ``env`` holds the variables a client process needs."""

    base: Path
    env: dict[str, str]
    server_pid: int
    keepalive: subprocess.Popen
    players: list[subprocess.Popen] = field(default_factory=list)

    def play(self, path: str | os.PathLike) -> subprocess.Popen:
        """Start playing a file into ``vsink`` in real time; returns the paplay process."""
        proc = subprocess.Popen(["paplay", "--device=vsink", str(path)], env=self._full_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.players.append(proc)
        return proc

    def server_alive(self) -> bool:
        return _pid_alive(self.server_pid)

    def kill_server(self) -> None:
        """SIGKILL the PulseAudio server: the capture device vanishes as if unplugged."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.server_pid, signal.SIGKILL)
        _wait_dead(self.server_pid, timeout=5.0)

    def restart_server(self) -> None:
        """Kill the server and start a fresh one on the same socket (a device that comes back)."""
        self.kill_server()
        if self.keepalive.poll() is None:
            self.keepalive.kill()
        self.keepalive.wait(timeout=3)
        # The killed daemon may linger as a zombie until PID 1 reaps it, and pulseaudio
        # refuses to start while its pid file names a PID that still exists.
        (Path(self.env["PULSE_RUNTIME_PATH"]) / "pid").unlink(missing_ok=True)
        self.server_pid = _start_server(self.base, self.env)
        self.keepalive = _start_keepalive(self._full_env())

    def stop(self) -> None:
        """Stop players, the keep-alive and the server, each by its PID."""
        for proc in [*self.players, self.keepalive]:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)
            if proc.stderr is not None:
                proc.stderr.close()
        if _pid_alive(self.server_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.server_pid, signal.SIGTERM)
            if not _wait_dead(self.server_pid, timeout=3.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.server_pid, signal.SIGKILL)
                _wait_dead(self.server_pid, timeout=3.0)

    def log(self) -> str:
        path = self.base / "pulse.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _full_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}


@contextlib.contextmanager
def virtual_mic() -> Iterator[VirtualMic]:
    """Start an isolated PulseAudio virtual microphone; stop it and restore os.environ on exit.

    Raises VirtualMicUnavailable when PulseAudio tools are missing or the server fails.
    """
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        raise VirtualMicUnavailable(f"virtual microphone needs {', '.join(missing)}: {_INSTALL}")
    base = Path(tempfile.mkdtemp(prefix="vmic-"))
    env = _pulse_env(base)
    saved = {key: os.environ.get(key) for key in env}
    mic = None
    try:
        pid = _start_server(base, env)
        keepalive = _start_keepalive({**os.environ, **env})
        mic = VirtualMic(base=base, env=env, server_pid=pid, keepalive=keepalive)
        os.environ.update(env)  # the test process and its children now see the virtual mic
        _rescan_portaudio()
        yield mic
    finally:
        if mic is not None:
            mic.stop()
        else:  # failed half-way: the server may be up without a VirtualMic to stop it
            _kill_pidfile(Path(env["PULSE_RUNTIME_PATH"]) / "pid")
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _rescan_portaudio()
        shutil.rmtree(base, ignore_errors=True)


def _pulse_env(base: Path) -> dict[str, str]:
    run = base / "run"
    env = {
        "XDG_RUNTIME_DIR": str(run),
        "XDG_CONFIG_HOME": str(base / "config"),
        "PULSE_STATE_PATH": str(base / "state"),
        "PULSE_RUNTIME_PATH": str(run / "pulse"),
        "PULSE_SERVER": f"unix:{run}/pulse/native",
    }
    for key in ("XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "PULSE_STATE_PATH"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    run.chmod(0o700)
    # Clients must never autospawn a daemon of their own (e.g. in $HOME) if ours is gone.
    (base / "config" / "pulse").mkdir(exist_ok=True)
    (base / "config" / "pulse" / "client.conf").write_text("autospawn = no\n")
    return env


def _start_server(base: Path, env: dict[str, str]) -> int:
    full = {**os.environ, **env}
    cmd = [
        "pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "--system=false", "-n",
        "--use-pid-file=yes", f"--log-target=file:{base}/pulse.log", "--log-level=warning",
        "--load=module-native-protocol-unix",
        "--load=module-null-sink sink_name=vsink rate=16000 channels=1 format=s16le",
        "--load=module-remap-source master=vsink.monitor source_name=vmic",
        "--load=module-always-sink",
    ]
    done = subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        log = (base / "pulse.log").read_text(errors="replace") if (base / "pulse.log").exists() else ""
        raise VirtualMicUnavailable(f"pulseaudio failed to start (exit {done.returncode}): "
                                    f"{done.stderr.strip()} {log.strip()[-500:]}")
    deadline = time.monotonic() + _READY_S
    while subprocess.run(["pactl", "info"], env=full, capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise VirtualMicUnavailable(f"pulseaudio did not answer within {_READY_S:g} s")
        time.sleep(0.05)
    for args in (["set-default-sink", "vsink"], ["set-default-source", "vmic"]):
        subprocess.run(["pactl", *args], env=full, check=True, capture_output=True)
    return int((Path(env["PULSE_RUNTIME_PATH"]) / "pid").read_text().split()[0])


def _start_keepalive(env: dict[str, str]) -> subprocess.Popen:
    """parec on vmic keeps the null sink rendering in 20 ms steps instead of 2 s ones.

    We wait for its first bytes: until then the sink may still be inside a 2 s render block,
    and a stream opened meanwhile gets its first callback ~1.6 s late. A daemon thread then
    discards its output.
    """
    proc = subprocess.Popen(["parec", "--device=vmic", "--latency-msec=20", "--raw"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ready, _, _ = select.select([proc.stdout], [], [], _READY_S)
    if not ready or not os.read(proc.stdout.fileno(), 65536):
        proc.kill()
        proc.wait()
        raise VirtualMicUnavailable(f"keep-alive parec delivered no audio within {_READY_S:g} s")
    threading.Thread(target=_drain, args=(proc.stdout,), daemon=True, name="vmic-keepalive").start()
    return proc


def _drain(pipe) -> None:
    with contextlib.suppress(OSError, ValueError):
        while os.read(pipe.fileno(), 65536):
            pass
    with contextlib.suppress(OSError):
        pipe.close()


def _rescan_portaudio() -> None:
    sd = sys.modules.get("sounddevice")
    if sd is None:
        return  # not imported yet: it will enumerate with the current environment
    if sd._initialized > 0:
        sd._terminate()
    sd._initialize()


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as dead: PID 1 in a container may not reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" not in status


def _wait_dead(pid: int, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _kill_pidfile(path: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        _wait_dead(pid, timeout=3.0)
