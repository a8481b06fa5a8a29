"""Launch the real ``nats-server`` binary on loopback for tests, the demo and fault drills.

One :class:`NatsServer` is one process with its own config file, client port, monitoring port
and JetStream store. It binds 127.0.0.1 only (nothing leaves the machine) and enables JetStream
with the mothership's domain ``constellation`` (docs/contract.md#nats).

This module is the process lifecycle (start, readiness, signals, stop); the binary and ports are
alien_testing/nats_binary.py, users and permissions nats_auth.py, certificates nats_tls.py and the
config file nats_config.py. Their public names are re-exported here, where callers import them.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from alien_testing.nats_auth import NkeyUser, Permissions, check_permissions, generate_nkey_user, maybe_check
from alien_testing.nats_binary import LOOPBACK, NatsServerError, find_nats_server_binary, free_port
from alien_testing.nats_config import auth_config, config_text, server_name
from alien_testing.nats_tls import TlsFiles, make_tls_files

__all__ = [
    "NatsServer",
    "NatsServerError",
    "NkeyUser",
    "Permissions",
    "TlsFiles",
    "find_nats_server_binary",
    "free_port",
    "generate_nkey_user",
    "make_tls_files",
]

_POLL_INTERVAL_S = 0.02
_STOP_TIMEOUT_S = 10.0
_PORT_RETRIES = 3
_LIVE: weakref.WeakSet[NatsServer] = weakref.WeakSet()  # stopped at interpreter exit if forgotten


class NatsServer:
    """A real nats-server on 127.0.0.1 with JetStream; see the module docstring."""

    def __init__(
        self,
        store_dir: Path | str | None = None,
        *,
        port: int | None = None,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        user_permissions: Permissions | None = None,
        nkey_users: Sequence[str | NkeyUser] | None = None,
        tls: TlsFiles | None = None,
        jetstream_domain: str | None = "constellation",
        extra_config: str = "",
        binary: str | None = None,
    ) -> None:
        if token is not None and (user is not None or nkey_users):
            # nats-server refuses a token next to a users list; say so before it does.
            raise ValueError("token auth cannot be combined with user/password or NKey users")
        if (user is None) != (password is None):
            raise ValueError("user and password go together")
        if user_permissions is not None and user is None:
            raise ValueError("user_permissions need a user")
        self._binary = find_nats_server_binary(binary)
        self._own_store = store_dir is None
        self._store_root: Path | None = None if store_dir is None else Path(store_dir)
        self._fixed_port = port is not None
        self._port = port if port is not None else free_port()
        self._monitor_port = free_port()
        self._token = token
        self._user = user
        self._password = password
        self._user_permissions = None if user_permissions is None else check_permissions(user_permissions)
        self._nkey_users = [
            (u, None) if isinstance(u, str) else (u.public_key, maybe_check(u.permissions)) for u in nkey_users or []
        ]
        self._tls = tls
        self._domain = jetstream_domain
        self._extra_config = extra_config
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._started_once = False
        self.start_seconds: float | None = None  # wall time of the last successful start()

    # -- addresses -----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def server_name(self) -> str:
        """The name this server goes by in a cluster and in JetStream's peer and leader fields."""
        return server_name(self._port)

    @property
    def monitor_port(self) -> int:
        return self._monitor_port

    @property
    def url(self) -> str:
        scheme = "tls" if self._tls else "nats"
        return f"{scheme}://{LOOPBACK}:{self._port}"

    @property
    def store_dir(self) -> Path:
        """The JetStream store directory (kept across restart())."""
        return self._root() / "jetstream"

    @property
    def tls(self) -> TlsFiles | None:
        return self._tls

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def connect_options(self) -> dict[str, Any]:
        """nats.connect kwargs for this server's token / user+password / TLS (NKeys: pass the seed)."""
        options: dict[str, Any] = {"servers": [self.url]}
        if self._token is not None:
            options["token"] = self._token
        if self._user is not None:
            options["user"] = self._user
            options["password"] = self._password
        if self._tls is not None:
            options["tls"] = self._tls.client_ssl_context()
            options["tls_hostname"] = LOOPBACK
        return options

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Write the config, start the process and wait (bounded) until it serves clients."""
        if self.running:
            return
        attempts = 1 if (self._fixed_port or self._started_once) else _PORT_RETRIES
        for attempt in range(attempts):
            try:
                self._start_once(timeout)
                self._started_once = True
                return
            except NatsServerError as exc:
                # A free port can be taken between free_port() and the server's bind; retry
                # with new ports only for ports we chose ourselves and never served on.
                if "address already in use" not in str(exc) or attempt == attempts - 1:
                    raise
                self._port = free_port()
                self._monitor_port = free_port()

    def stop(self) -> None:
        """SIGTERM, wait for exit; idempotent. Removes a temporary store directory."""
        self._terminate(signal.SIGTERM)
        if self._own_store and self._store_root is not None:
            shutil.rmtree(self._store_root, ignore_errors=True)
            self._store_root = None

    def kill(self) -> None:
        """SIGKILL (crash drill); the store directory is kept for restart()."""
        self._terminate(signal.SIGKILL)

    def restart(self, timeout: float = 10.0) -> None:
        """Stop (if running) and start again on the same port with the same JetStream store."""
        self._terminate(signal.SIGTERM)
        self.start(timeout)

    def pause(self, timeout: float = 5.0) -> None:
        """SIGSTOP: connections stay open but nothing is answered (a cut network path).

        Returns once the kernel reports the process stopped: signal delivery is asynchronous,
        and a server thread still running on another core would answer one more message.
        """
        self._signal(signal.SIGSTOP)
        self._wait_state(stopped=True, timeout=timeout)

    def resume(self, timeout: float = 5.0) -> None:
        """SIGCONT after pause(); returns once the process runs again."""
        self._signal(signal.SIGCONT)
        self._wait_state(stopped=False, timeout=timeout)

    def log_tail(self, max_chars: int = 2000) -> str:
        """The end of the server's log (it never contains credentials: no trace logging)."""
        path = self._root() / "nats-server.log"
        try:
            return path.read_text(errors="replace")[-max_chars:]
        except OSError:
            return ""

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"NatsServer(url={self.url!r}, running={self.running})"

    # -- internals -----------------------------------------------------------------------------
    def _root(self) -> Path:
        if self._store_root is None:
            self._store_root = Path(tempfile.mkdtemp(prefix="alien-nats-"))
        return self._store_root

    def _config_text(self) -> str:
        auth = auth_config(
            token=self._token,
            user=self._user,
            password=self._password,
            user_permissions=self._user_permissions,
            nkey_users=self._nkey_users,
        )
        return config_text(
            port=self._port,
            monitor_port=self._monitor_port,
            store_dir=self.store_dir,
            jetstream_domain=self._domain,
            auth=auth,
            tls=self._tls,
            extra_config=self._extra_config,
        )

    def _start_once(self, timeout: float) -> None:
        root = self._root()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = root / "nats-server.conf"
        conf.write_text(self._config_text())
        conf.chmod(0o600)  # it may hold a token or password
        log_path = root / "nats-server.log"
        began = time.monotonic()
        self._log_file = open(log_path, "ab")  # closed in _terminate(), with the process
        self._proc = subprocess.Popen(
            [self._binary, "-c", str(conf)],
            # Same process group as the caller on purpose: whoever kills the test run's group
            # (CI, a terminal) takes the server down too instead of leaving it orphaned.
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
        )
        _LIVE.add(self)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self._terminate(signal.SIGKILL)
            raise
        self.start_seconds = time.monotonic() - began

    def _wait_ready(self, timeout: float) -> None:
        """Bounded poll: JetStream health on the monitor port, then a client INFO line."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        health = f"http://{LOOPBACK}:{self._monitor_port}/healthz?js-enabled-only=true"
        js_ready = False
        while True:
            code = self._proc.poll()
            if code is not None:
                raise NatsServerError(f"nats-server exited with code {code} during start:\n{self.log_tail()}")
            if not js_ready:
                js_ready = _http_ok(health)
            if js_ready and _reads_info(self._port):
                return
            if time.monotonic() > deadline:
                raise NatsServerError(f"nats-server not ready after {timeout:.1f}s:\n{self.log_tail()}")
            try:
                # Waiting on the process doubles as the poll interval and notices an early exit.
                self._proc.wait(timeout=_POLL_INTERVAL_S)
            except subprocess.TimeoutExpired:
                pass

    def _wait_state(self, *, stopped: bool, timeout: float) -> None:
        """Bounded poll of every thread's /proc state (Linux); elsewhere the signal alone has to do."""
        assert self._proc is not None
        tasks = Path(f"/proc/{self._proc.pid}/task")
        deadline = time.monotonic() + timeout
        while tasks.is_dir():
            if all(state == stopped for state in _thread_stop_states(tasks)):
                return
            if time.monotonic() > deadline:
                raise NatsServerError(f"nats-server did not {'stop' if stopped else 'continue'} in {timeout}s")
            time.sleep(0.001)  # bounded poll interval on kernel state, not a synchronisation guess

    def _signal(self, sig: signal.Signals) -> None:
        if not self.running:
            raise NatsServerError("nats-server is not running")
        assert self._proc is not None
        self._proc.send_signal(sig)

    def _terminate(self, sig: signal.Signals) -> None:
        _LIVE.discard(self)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            if sig != signal.SIGKILL:
                proc.send_signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
            proc.send_signal(sig)
            try:
                proc.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=_STOP_TIMEOUT_S)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _thread_stop_states(tasks: Path) -> list[bool]:
    """For each live thread, whether it is stopped (the state letter follows the parenthesised name)."""
    states = []
    for stat in tasks.glob("*/stat"):
        try:
            states.append(stat.read_text().rsplit(")", 1)[-1].split()[0] in ("T", "t"))
        except (OSError, IndexError):
            continue  # the thread just exited
    return states


@atexit.register
def _stop_forgotten_servers() -> None:
    for server in list(_LIVE):
        server.stop()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _reads_info(port: int) -> bool:
    """True once the client port accepts and greets with INFO (sent in clear even with TLS)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as sock:
            return sock.recv(5) == b"INFO "
    except OSError:
        return False
