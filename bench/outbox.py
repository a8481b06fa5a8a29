"""Outbox write (put) and read (ack) throughput at each durability setting.

The outbox is exercised directly (no NATS): the figures are its own cost per message.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import Figure, Servers, Settings

from alien.delivery.outbox import Lane, Outbox, OutgoingMessage
from alien.delivery.outbox_store import SqliteStore
from alien.wire import new_message_id

PAYLOAD = (
    b'{"message_type":"GLOBAL_POSITION_INT","message_id":33,"system_id":1,"component_id":1,"data":{"lat":473769000,'
    b'"lon":85417000,"alt":408000},"timestamp":"2026-11-27T12:00:00.000000Z"}'
)


def once(setting: str, count: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        store = None if setting == "memory" else SqliteStore(Path(directory) / "outbox.sqlite3", setting)  # type: ignore[arg-type]
        outbox = Outbox(count + 1, store)
        batch = [
            OutgoingMessage(new_message_id(), "constellation.telemetry.o.e", PAYLOAD, Lane.TELEMETRY)
            for _ in range(count)
        ]
        began = time.perf_counter()
        for message in batch:
            outbox.put(message)
        put = count / (time.perf_counter() - began)
        began = time.perf_counter()
        for message in batch:
            outbox.ack(message, duplicate=False)
        ack = count / (time.perf_counter() - began)
        outbox.close()
        return put, ack


def run(servers: Servers, settings: Settings, done: dict[str, Figure]) -> list[Figure]:
    figures = []
    for setting in ("memory", "process", "power"):
        count = settings.outbox_count if setting != "power" else max(20, settings.outbox_count // 20)
        runs = [once(setting, count) for _ in range(settings.repeats)]
        figures.append(
            Figure(f"outbox_put_{setting}", f"outbox write, durability {setting}", "msg/s", [r[0] for r in runs])
        )
        figures.append(
            Figure(f"outbox_ack_{setting}", f"outbox read (ack), durability {setting}", "msg/s", [r[1] for r in runs])
        )
    return figures
