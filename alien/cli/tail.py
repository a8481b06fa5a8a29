"""`alien tail`: an organization's telemetry and events as they arrive, for people or (--json) scripts.

Plain (core) NATS subscriptions only: the streams and consumers are the mothership's, and a
subscriber never takes messages away from them. Ends after --count messages, after --timeout
seconds, or on Ctrl-C / SIGTERM (exit 0; 130 while still connecting). With --count, a timeout
before that many is exit 5.
"""

from __future__ import annotations

import argparse
import asyncio
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from alien.cli import payloads
from alien.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    CliFailure,
    Spinner,
    UsageError,
    connect_nats,
    ids_for,
    number,
    silence_stdout,
    spinning,
    stop_on_signals,
    subject_token_arg,
    unless_stopped,
    whole_number,
)
from alien.cli.encryption import Decryption, read_opener
from alien.config import AlienConfig
from alien.link import NatsLink
from alien.untrusted import shown
from alien.wire import dumps

LINE_LIMIT = 500  # a screen line; longer payloads are for --json

CONNECT_TIMEOUT_S = 10.0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tail = sub.add_parser("tail", help="print telemetry and events as they arrive")
    tail.add_argument(
        "--org-id", type=subject_token_arg, help="organization (default: the saved identity / ALIEN_ORG_ID)"
    )
    tail.add_argument("--entity-id", type=subject_token_arg, help="only this entity")
    tail.add_argument("--json", action="store_true", help="one JSON object per line: subject and decoded payload")
    tail.add_argument(
        "--count", type=whole_number, help="stop after this many messages (exit 5 if --timeout comes first)"
    )
    tail.add_argument("--timeout", type=number, help="stop after this many seconds")
    tail.add_argument(
        "--decrypt",
        type=Path,
        action="append",
        metavar="KEYFILE",
        help="show encrypted values in clear with this seed file's key (SX...; repeatable)",
    )
    tail.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count <= 0:
        raise UsageError("--count must be a positive number of messages")
    if args.timeout is not None and (not math.isfinite(args.timeout) or args.timeout <= 0):
        raise UsageError("--timeout must be a positive number of seconds")
    args.decryption = Decryption(read_opener(args.decrypt) if args.decrypt else None)  # a bad file before connecting
    return asyncio.run(tail(AlienConfig(), args))


async def tail(config: AlienConfig, args: argparse.Namespace) -> int:
    org_id, _ = ids_for(config, args.org_id, None, need_entity=False)
    stop: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def interrupted() -> None:
        if not stop.done():
            stop.set_result("interrupted")

    with stop_on_signals(interrupted):
        with spinning("connecting to NATS", enabled=not args.json):
            connect = connect_nats(config, min(CONNECT_TIMEOUT_S, args.timeout or CONNECT_TIMEOUT_S), "alien-tail")
            link = await unless_stopped(connect, stop)
        if link is None:
            # Ctrl-C before anything was followed: the user gave up waiting, not a normal end
            raise CliFailure("interrupted", EXIT_INTERRUPTED)
        return await _follow(link, org_id, args, stop)


async def _follow(link: NatsLink, org_id: str, args: argparse.Namespace, stop: asyncio.Future[str]) -> int:
    spinner = Spinner(enabled=not args.json)
    printed = 0

    async def on_message(msg: Any) -> None:
        nonlocal printed
        if stop.done():
            return
        payload, problem = payloads.decode(msg.data)
        entity = payloads.entity_of(msg.subject, payload)
        if args.entity_id and entity != args.entity_id:
            return
        spinner.clear()
        payload, notes = args.decryption.payload(msg.subject, entity, payload)
        try:
            print(_line(msg.subject, entity, payload, problem, msg.data, notes, as_json=args.json), flush=True)
        except BrokenPipeError:  # `alien tail | head`: the reader is gone, which is a normal end
            stop.set_result("pipe closed")
            return
        printed += 1
        if args.count is not None and printed >= args.count:
            stop.set_result("count")

    try:
        telemetry = f"constellation.telemetry.{org_id}." + (args.entity_id or ">")
        await link.nc.subscribe(telemetry, cb=on_message)
        await link.nc.subscribe(f"constellation.events.{org_id}.>", cb=on_message)
        await link.nc.flush()
        spinner.show(f"waiting for telemetry and events of organization {org_id}")
        try:
            reason = await asyncio.wait_for(asyncio.shield(stop), args.timeout)
        except asyncio.TimeoutError:
            reason = "timeout"
    finally:
        spinner.clear()
        await link.close(1)
    if reason == "pipe closed":
        silence_stdout()
    if reason == "timeout" and args.count is not None:
        raise CliFailure(
            f"{printed} of {args.count} messages within {args.timeout:g}s; check that entities of "
            f"organization {org_id} are sending (or give a longer --timeout)",
            EXIT_TIMEOUT,
        )
    return EXIT_OK


def _line(
    subject: str,
    entity: str | None,
    payload: Any,
    problem: str | None,
    raw: bytes,
    notes: dict[str, str],
    *,
    as_json: bool,
) -> str:
    now = datetime.now(timezone.utc)
    kind = payloads.kind_of(subject)
    if as_json:
        record: dict[str, Any] = {
            "received": now.isoformat(timespec="milliseconds"),
            "subject": subject,
            "kind": kind,
            "entity_id": entity,
            "payload": payload,
        }
        if notes:  # docs/encryption.md#the-operators-side
            record["decryption"] = notes
        if problem is not None:
            record["error"] = problem
            record["raw"] = raw.decode("utf-8", errors="replace")
        return dumps(record).decode()  # non-finite numbers become null: every line stays JSON
    if problem:
        summary = f"({problem}) {raw[:60].decode('utf-8', errors='replace')!r}"
    else:
        summary = payloads.summarize(subject, Decryption.on_screen(payload, notes))
    # Anyone on the subject writes these: no escape sequence reaches the operator's terminal.
    return shown(f"{now.strftime('%H:%M:%S.%f')[:-3]}  {kind:<9}  {(entity or '-')[:8]:<8}  {summary}", LINE_LIMIT)
