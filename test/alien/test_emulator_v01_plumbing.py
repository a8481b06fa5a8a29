"""v0.1.x plumbing: streams and consumers per release, release checks, the telemetry decoders and Go time."""

from __future__ import annotations

import copy
import json

import nats
import pytest
from emulator_v01_support import envelope

from alien_testing import MothershipEmulator, NatsServer
from alien_testing.emulator import QUARANTINE_STREAM, stream_specs
from alien_testing.emulator.gojson import GoJSONError, GoTime
from alien_testing.emulator.telemetry_v01 import TelemetryError, decode_envelope, decode_v011

pytestmark = pytest.mark.timeout(60)


# -- plumbing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "streams"),
    [("v0.1.1", 4), ("rc", 5)],
)
def test_stream_specs_by_release(release: str, streams: int) -> None:
    specs = stream_specs("v0.1", release)  # type: ignore[arg-type]
    assert len(specs) == streams
    assert (QUARANTINE_STREAM in [s.name for s in specs]) is (release == "rc")


@pytest.mark.asyncio
async def test_rc_consumers_update_to_five_deliveries(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        for release, max_deliver in (("v0.1.1", 3), ("rc", 5)):
            with MothershipEmulator(nats_server.url, dialect="v0.1", release=release):  # type: ignore[arg-type]
                info = await nc.jetstream().consumer_info("CONSTELLATION_TELEMETRY", "telemetry-processor")
                assert info.config.max_deliver == max_deliver
    finally:
        await nc.close()


def test_release_needs_the_v01_dialect(nats_server: NatsServer) -> None:
    with pytest.raises(ValueError, match="dialect"):
        MothershipEmulator(nats_server.url, release="rc")
    with pytest.raises(ValueError, match="release"):
        MothershipEmulator(nats_server.url, dialect="v0.1", release="v9")  # type: ignore[arg-type]


# -- decoders (no server) -----------------------------------------------------------------------


def test_envelope_decoder_accepts_the_contract_example_and_goes_by_go_rules() -> None:
    message = envelope("default", "ent-1")
    decoded = decode_envelope(json.dumps(message).encode())
    assert (decoded.message_type, decoded.message_id, decoded.timestamp.format()) == (
        "GLOBAL_POSITION_INT",
        33,
        "2026-07-21T20:00:00Z",
    )
    assert decoded.data is not None and decoded.data["lat"] == 329488100.0  # map[string]any: float64
    shouted = {k.upper(): v for k, v in copy.deepcopy(message).items()}  # Go matches keys case-insensitively
    assert decode_envelope(json.dumps(shouted).encode()).entity_id == "ent-1"
    for broken, reason in (
        ({**message, "message_type": "gps"}, "canonical"),
        ({**message, "message_uid": "a.b"}, "safe NATS subject token"),
        ({**message, "message_uid": "x" * 129}, "safe NATS subject token"),
        ({k: v for k, v in message.items() if k != "data"}, "data is required"),
        ({k: v for k, v in message.items() if k != "timestamp"}, "timestamp is required"),
        ({**message, "system_id": 256}, "uint8"),
    ):
        with pytest.raises(TelemetryError, match=reason):
            decode_envelope(json.dumps(broken).encode())
    with pytest.raises(TelemetryError, match="invalid JSON"):
        decode_envelope(json.dumps(message).encode() + b" {}")  # trailing value


def test_v011_decoder_is_lenient_except_for_types_and_zones() -> None:
    decoded = decode_v011(b'{"message_type":"X","data":{"timestamp":"2026-07-21T20:00:00Z"}}')
    assert decoded.timestamp.format() == "2026-07-21T20:00:00Z"  # data.timestamp fallback
    assert decode_v011(b"null").message_type == ""
    for broken in (b'{"timestamp":"2026-07-21T20:00:00"}', b'{"message_id":-1}', b"[]", b'{"data":[]}'):
        with pytest.raises(TelemetryError, match="failed to unmarshal"):
            decode_v011(broken)


def test_go_time_round_trip() -> None:
    assert GoTime.parse("2026-07-21T20:00:00.120000Z").format() == "2026-07-21T20:00:00.12Z"
    assert GoTime.parse("2026-07-21T22:00:00+02:00").ns == GoTime.parse("2026-07-21T20:00:00Z").ns
    assert GoTime.zero().format() == "0001-01-01T00:00:00Z" and GoTime.zero().is_zero()
    for bad in ("2026-07-21T20:00:00", "2026-07-21 20:00:00Z", "2026-13-01T00:00:00Z", "2026-07-21T20:00:00+24:00"):
        with pytest.raises(GoJSONError):
            GoTime.parse(bad)
