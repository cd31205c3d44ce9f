"""Helpers of the transfer tests: the emulator's request counter read per kind, md5s, CLI runs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from xnatfs.emulator.server import EmulatorServer
from xnatfs.transfer_commands import run

WRITES = ("PUT ", "POST ", "DELETE ")


def file_gets(server: EmulatorServer) -> int:
    """File downloads served since the last reset (GETs of ``…/files/<path>``)."""
    routes = server.faults.counts()["by_route"]
    return sum(n for key, n in routes.items() if key.startswith("GET ") and key.endswith("/files/<path:path>"))


def writes(server: EmulatorServer) -> int:
    """Requests that change the archive served since the last reset (logins and logouts aside)."""
    routes = server.faults.counts()["by_route"]
    return sum(n for key, n in routes.items() if key.startswith(WRITES) and "JSESSION" not in key)


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cli(command: str, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    """``xnatfs <command> … --json -u admin`` in-process: exit code, parsed summary, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = run(command, [*args, "--json", "-u", "admin", "--no-progress"], out, err)
    text = out.getvalue().strip()
    return code, (json.loads(text) if text else None), err.getvalue()


def cli_process(command: str, *args: str, **kw: Any) -> subprocess.Popen[str]:
    """``xnatfs <command> …`` as its own process (XNATFS_PASSWORD=admin)."""
    env = dict(os.environ, XNATFS_PASSWORD="admin")
    return subprocess.Popen([sys.executable, "-m", "xnatfs", command, *args, "-u", "admin", "--json", "--no-progress"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, **kw)
