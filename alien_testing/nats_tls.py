"""TLS for a test nats-server: a throwaway CA, server and client certificates, client contexts.

The certificates are made with the openssl CLI for 127.0.0.1/localhost and are valid for two days.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from alien_testing.nats_binary import NatsServerError

__all__ = ["TlsFiles", "make_tls_files"]


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
