"""A mothership emulator: both REST dialects and the server-side NATS objects of the contract.

Written from MOTHERSHIP_CONTRACT.md alone (plus the public server source for details the
contract leaves open); it shares no code with the alien client it is used to test.
"""

from alien.testing.emulator.contract import (
    DEFAULT_API_KEY,
    DEFAULT_BEARER_TOKEN,
    DEFAULT_ORG_ID,
    KV_BUCKET,
    Dialect,
    StreamSpec,
    stream_specs,
)
from alien.testing.emulator.records import ReceivedMessage, RequestRecord
from alien.testing.emulator.server import MothershipEmulator

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_BEARER_TOKEN",
    "DEFAULT_ORG_ID",
    "KV_BUCKET",
    "Dialect",
    "MothershipEmulator",
    "ReceivedMessage",
    "RequestRecord",
    "StreamSpec",
    "stream_specs",
]
