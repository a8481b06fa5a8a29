"""A mothership emulator: both REST dialects and the server-side NATS objects of the contract.

Written from what docs/contract.md records (plus the public server source for details the
contract page leaves open); it shares no code with the alien client it is used to test.
"""

from alien_testing.emulator.contract import (
    DEFAULT_API_KEY,
    DEFAULT_BEARER_TOKEN,
    DEFAULT_ORG_ID,
    KV_BUCKET,
    QUARANTINE_STREAM,
    Dialect,
    Release,
    StreamSpec,
    stream_specs,
)
from alien_testing.emulator.edge_auth import EdgeKey, edge_permissions, mint_edge_key
from alien_testing.emulator.records import QuarantinedMessage, ReceivedMessage, RequestRecord, TelemetryVerdict
from alien_testing.emulator.server import MothershipEmulator

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_BEARER_TOKEN",
    "DEFAULT_ORG_ID",
    "KV_BUCKET",
    "QUARANTINE_STREAM",
    "Dialect",
    "EdgeKey",
    "MothershipEmulator",
    "QuarantinedMessage",
    "ReceivedMessage",
    "Release",
    "RequestRecord",
    "StreamSpec",
    "TelemetryVerdict",
    "edge_permissions",
    "mint_edge_key",
    "stream_specs",
]
