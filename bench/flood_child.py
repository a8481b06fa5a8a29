"""The device of bench/flood.py, in a process of its own: a client under a command flood.

    python bench/flood_child.py --markers N --tag T

Talks JSON lines with the harness:
1. registers, queues N `flood_marker` events (the harness has withheld the events stream, so
   they wait in the outbox) and prints `{"subject", "queued"}`;
2. reads `{"expect": count, "started": wall time}`, waits until that many commands were received
   and prints `{"handled_s", "counts", "stats"}`;
3. reads `{"drain": true}` (the stream is back), flushes, closes and prints
   `{"flushed", "dropped", "log_bytes", "log_lines"}`: what the log got from the flood on.
The configuration comes from the environment (bench/flood.py sets it).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
import time
from typing import Any

from alien import AlienClient, AlienConfig
from alien.wire import command_subject

POLL_S = 0.005  # how finely the end of the flood is timed


class CountingStream:
    """Where the log goes: counted, not kept (what a log file would have grown by)."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8", "backslashreplace"))
        self.lines += text.count("\n")
        return len(text)

    def flush(self) -> None:
        pass


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def hear() -> dict[str, Any]:
    line = await asyncio.to_thread(sys.stdin.readline)
    if not line:
        raise SystemExit("the harness went away")
    return dict(json.loads(line))


async def run(markers: int, tag: str) -> None:
    log = CountingStream()
    handler = logging.StreamHandler(log)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])  # a device's usual log level
    config = AlienConfig(_env_file=None)  # type: ignore[call-arg]
    async with AlienClient(config) as client:
        for number in range(markers):
            await client.publish_event("flood_marker", {"tag": tag, "n": number})
        say(subject=command_subject(str(config.org_id), str(config.entity_id)), queued=client.stats().depth)
        expect = await hear()
        log.bytes = log.lines = 0
        while client.command_counts.get("received", 0) < expect["expect"]:
            await asyncio.sleep(POLL_S)
        handled_s = time.time() - expect["started"]
        say(handled_s=handled_s, counts=client.command_counts, stats=dataclasses.asdict(client.stats()))
        await hear()
        flushed = await client.flush(120)
        dropped = {reason: count for reason, count in client.stats().dropped.items() if count}
    say(flushed=flushed, dropped=dropped, log_bytes=log.bytes, log_lines=log.lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markers", type=int, required=True)
    parser.add_argument("--tag", required=True)
    args = parser.parse_args()
    asyncio.run(run(args.markers, args.tag))


if __name__ == "__main__":
    main()
