"""The cost of end-to-end encryption (docs/encryption.md): per value, per reading encoded, and in throughput.

- per value: sealing one telemetry value with the content key reused (what a robot does), with a
  new content key each time (one `crypto_box_seal` per reader: what the reuse saves), and opening
  one (an operator, the content key cached);
- per reading: the composer encoding a reading with one encrypted key, against the same reading in
  clear (MAVLink format, in-memory outbox, no NATS): the difference is the cost per message;
- throughput: `publish_telemetry` through the durable outbox into the stream (bench/nats_child.py)
  with that reading, encrypted against in clear, in turns in this run: readings from the first call
  until every message (position and camera event) is acknowledged, per second.
Each reading is a position (GPS_RAW_INT) and a `camera` key, which the MAVLink formats carry in a
`telemetry` event: two messages per reading, in both runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from common import Figure, Servers, Settings, at_least, run_json, stored_since, stream_last_seq
from nats_child import camera_reading

from alien.delivery.outbox import Outbox
from alien.e2e import Opener, Sealer, context, generate_keypair
from alien.e2e.fields import FieldSealer
from alien.e2e.keys import private_key
from alien.rate_limits import TelemetryLimiter
from alien.settings import TelemetrySettings
from alien.telemetry.composer import Composer
from alien.telemetry.wire_format import WireFormat

OPERATOR = generate_keypair()
CAMERA = context("telemetry", "bench-entity", "camera")


def camera(i: int) -> Any:
    return camera_reading(i)["camera"]


def _us_per(count: int, work: Callable[[int], object]) -> float:
    began = time.perf_counter()
    for i in range(count):
        work(i)
    return (time.perf_counter() - began) / count * 1e6


def per_value(count: int) -> tuple[float, float, float]:
    """(seal with the key reused, seal with a new key each time, open) in microseconds per value."""
    reused = Sealer([OPERATOR.public_key])
    fresh = Sealer([OPERATOR.public_key], key_uses=1)
    opener = Opener([private_key(OPERATOR.seed)])
    sealed = [reused.seal(camera(i), CAMERA) for i in range(count)]
    return (
        _us_per(count, lambda i: reused.seal(camera(i), CAMERA)),
        _us_per(max(1, count // 10), lambda i: fresh.seal(camera(i), CAMERA)),
        _us_per(count, lambda i: opener.open(sealed[i], CAMERA)),
    )


def per_reading(count: int, sealed: bool) -> float:
    """Microseconds per reading through the composer (MAVLink encoding, in-memory outbox put)."""
    outbox = Outbox(count * 3 + 10)
    fields = FieldSealer(Sealer([OPERATOR.public_key]), ["camera"]) if sealed else None
    wire_format = WireFormat(TelemetrySettings(telemetry_format="mavlink"), lambda: None)
    composer = Composer(
        outbox, wire_format, lambda: ("bench-org", "bench-entity"), TelemetryLimiter(0, 0, 0, 0), fields
    )
    return _us_per(count, lambda i: composer.telemetry(camera_reading(i)))


def library_rate(servers: Servers, settings: Settings, sealed: bool) -> float:
    """publish_telemetry of readings with a camera key, encrypted or not: readings stored per second."""
    name = "e2e" if sealed else "e2e-plain"
    env = servers.client_env(
        ALIEN_CONFIG_FILE=str(servers.workdir / f"{name}.identity.json"),
        ALIEN_DATA_DIR=str(servers.workdir / f"{name}.data"),
        ENTITY_NAME=f"bench-{name}",
        ENTITY_TYPE="rover",
        ALIEN_HEARTBEAT_PERIOD_S="0",
        ALIEN_OUTBOX_MAX_MESSAGES=str(settings.nats_count * 4),
        **({"ALIEN_E2E_TELEMETRY_KEYS": "camera", "ALIEN_E2E_RECIPIENTS": OPERATOR.public_key} if sealed else {}),
    )
    before = asyncio.run(stream_last_seq(servers.nats.url))
    result = run_json(["bench/nats_child.py", "library", "--count", str(settings.nats_count), "--camera"], env, 300)
    if not result.get("flushed"):
        raise RuntimeError(f"{name}: not every reading was acknowledged: {result}")
    stored = asyncio.run(stored_since(servers.nats.url, before, settle_s=0.5))
    if stored["count"] < settings.nats_count:  # the positions; the camera keys went as events
        raise RuntimeError(f"{name}: {stored['count']} of {settings.nats_count} stored")
    # From the first call to the last PubAck, as the child timed it: the camera's events go out on
    # the control lane, before the positions, so the positions' own window in the stream misses them.
    return settings.nats_count / float(result["elapsed_s"])


def _alternating(repeats: int, measure: Callable[[bool], float]) -> tuple[list[float], list[float]]:
    """(in clear, encrypted), measured in turns: a machine shared with others drifts, and both see the drift."""
    clear: list[float] = []
    sealed: list[float] = []
    for _ in range(repeats):
        clear.append(measure(False))
        sealed.append(measure(True))
    return clear, sealed


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    count = max(200, settings.outbox_count // 4)
    values = [per_value(count) for _ in range(settings.repeats)]
    seal = Figure("e2e_seal_value", "sealing one telemetry value (content key reused)", "us", [v[0] for v in values])
    fresh = Figure(
        "e2e_seal_value_new_key",
        "sealing one telemetry value with a new content key (a crypto_box_seal per reader)",
        "us",
        [v[1] for v in values],
        seal.median,
        "key reused",
    )
    opened = Figure("e2e_open_value", "opening one value (operator, content key cached)", "us", [v[2] for v in values])
    for figure in (seal, fresh, opened):
        figure.higher_is_better = False
    in_clear, sealed = _alternating(settings.repeats, lambda encrypt: per_reading(count, encrypt))
    plain = Figure(
        "e2e_encode_plain", "encoding a reading with a camera key in clear (composer, mavlink)", "us", in_clear
    )
    encrypted = Figure(
        "e2e_encode_sealed", "encoding the same reading, camera encrypted", "us", sealed, plain.median, "in clear"
    )
    for figure in (plain, encrypted):
        figure.higher_is_better = False
    encrypted.note = (
        f"encryption adds {encrypted.median - plain.median:.1f} us per reading here: the value's JSON, one "
        "XChaCha20-Poly1305 encryption and a 24-byte nonce from the OS; the content key's seal "
        "(e2e_seal_value_new_key) is paid once per 10,000 values or 5 minutes"
    )
    in_clear, sealed = _alternating(settings.repeats, lambda encrypt: library_rate(servers, settings, encrypt))
    clear = Figure(
        "e2e_library_throughput_plain",
        "publish_telemetry, a reading with a camera key in clear",
        "readings/s",
        in_clear,
    )
    throughput = at_least(
        Figure(
            "e2e_library_throughput",
            "publish_telemetry, the same reading with its camera key encrypted",
            "readings/s",
            sealed,
            clear.median,
            "in clear",
        ),
        ratio=0.8,
    )
    return [seal, fresh, opened, plain, encrypted, clear, throughput]
