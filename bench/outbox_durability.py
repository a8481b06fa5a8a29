"""Outbox write + acknowledge throughput at each durability setting (memory, process, power).

    .venv/bin/python bench/outbox_durability.py [--messages 20000] [--repeat 3]

Prints messages/s for put() and for ack(), median of the repetitions, per setting. The outbox is
exercised directly (no NATS), so the figures are the outbox's own cost per message.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from alien.outbox import Lane, Outbox, OutgoingMessage
from alien.outbox_store import SqliteStore
from alien.wire import new_message_id

PAYLOAD = b'{"entity_id":"e","timestamp":"2026-11-27T12:00:00.000000Z","data":{"position":{"latitude":47.1}}}'


def run(setting: str, messages: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        store = None if setting == "memory" else SqliteStore(Path(directory) / "outbox.sqlite3", setting)  # type: ignore[arg-type]
        outbox = Outbox(messages + 1, store)
        batch = [
            OutgoingMessage(new_message_id(), "constellation.telemetry.o.e", PAYLOAD, Lane.TELEMETRY)
            for _ in range(messages)
        ]
        start = time.perf_counter()
        for message in batch:
            outbox.put(message)
        put_rate = messages / (time.perf_counter() - start)
        start = time.perf_counter()
        for message in batch:
            outbox.ack(message, duplicate=False)
        ack_rate = messages / (time.perf_counter() - start)
        outbox.close()
        return put_rate, ack_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for setting in ("memory", "process", "power"):
        count = args.messages if setting != "power" else max(1, args.messages // 20)
        runs = [run(setting, count) for _ in range(args.repeat)]
        put = statistics.median(r[0] for r in runs)
        ack = statistics.median(r[1] for r in runs)
        print(f"{setting:8} put {put:>10,.0f} msg/s   ack {ack:>10,.0f} msg/s   ({count} messages x {args.repeat})")


if __name__ == "__main__":
    main()
