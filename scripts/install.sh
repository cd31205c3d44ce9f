#!/usr/bin/env bash
# Install xnatfs on a fresh Debian machine: system packages (as root, when missing), then a virtualenv
# in ./.venv with xnatfs and its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v fusermount3 >/dev/null || need_apt+=(fuse3)
command -v dcm2niix   >/dev/null || need_apt+=(dcm2niix)
command -v getfattr   >/dev/null || need_apt+=(attr)
command -v rsync      >/dev/null || need_apt+=(rsync)
command -v curl       >/dev/null || need_apt+=(curl)
command -v openssl    >/dev/null || need_apt+=(openssl)   # the TLS tests make a self-signed certificate
command -v strace     >/dev/null || need_apt+=(strace)    # the fault tests time each system call of ls/cat
PYTHON=${PYTHON:-python3}
"$PYTHON" -c "import ensurepip, venv" 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install.sh: please install these Debian packages (as root): ${need_apt[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]'
echo "xnatfs installed in $(pwd)/.venv"
