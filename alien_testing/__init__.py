"""Test support: a real nats-server launcher, the mothership emulator and pytest fixtures.

Nothing here is imported by the alien client at run time; tests and the demo use it.
"""

from alien_testing.emulator import (
    DEFAULT_API_KEY,
    DEFAULT_BEARER_TOKEN,
    EdgeKey,
    MothershipEmulator,
    ReceivedMessage,
    RequestRecord,
    edge_permissions,
    mint_edge_key,
)
from alien_testing.nats_server import (
    NatsServer,
    NatsServerError,
    NkeyUser,
    TlsFiles,
    find_nats_server_binary,
    free_port,
    generate_nkey_user,
    make_tls_files,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_BEARER_TOKEN",
    "EdgeKey",
    "MothershipEmulator",
    "NatsServer",
    "NatsServerError",
    "NkeyUser",
    "ReceivedMessage",
    "RequestRecord",
    "TlsFiles",
    "edge_permissions",
    "find_nats_server_binary",
    "free_port",
    "generate_nkey_user",
    "make_tls_files",
    "mint_edge_key",
]
