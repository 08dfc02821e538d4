#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine:
#   ./run.sh            set up (system packages, .venv) and start the live monitor (demo stream without a mic)
#   ./run.sh test       set up everything the tests need and run the whole suite
# Extra arguments after "monitor" go to `emotion-monitor live`, after "test" to pytest.
set -euo pipefail
cd "$(dirname "$0")"

MODE=monitor
case "${1:-}" in monitor|test) MODE="$1"; shift ;; esac  # anything else (e.g. --device X) goes to `live`
RUNTIME_PKGS="libportaudio2 espeak-ng"
TEST_PKGS="$RUNTIME_PKGS pulseaudio pulseaudio-utils libasound2-plugins sox chromium"

need_python() {
    command -v python3 >/dev/null || { echo "run.sh: python3 (3.10+) is required: apt-get install python3 python3-venv" >&2; exit 1; }
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "run.sh: Python 3.10+ required, found $(python3 -V)" >&2; exit 1; }
}

system_packages() {  # install what is missing as root; otherwise name the command and stop
    local missing=() p
    python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "run.sh: installing system packages: ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "run.sh: missing system packages; run: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
}

venv() {  # create or refresh .venv with the project and the given extras
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -U pip >/dev/null 2>&1 || true  # best effort
    # Build-backend chatter goes to a log; it is shown only if the install fails.
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$1" >.venv/install.log 2>&1 \
        || { cat .venv/install.log >&2; echo "run.sh: pip install failed (log: .venv/install.log)" >&2; exit 1; }
}

need_python
case "$MODE" in
    monitor)
        system_packages $RUNTIME_PKGS
        venv ""
        exec .venv/bin/emotion-monitor live "$@" ;;
    test)
        system_packages $TEST_PKGS
        venv "[test]"
        # silero-vad only as the VAD benchmark's anchor: --no-deps keeps torch out.
        .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "silero-vad>=5" >/dev/null
        exec .venv/bin/python -m pytest "$@" ;;
    *)
        echo "usage: ./run.sh [monitor|test] [args...]" >&2; exit 2 ;;
esac
