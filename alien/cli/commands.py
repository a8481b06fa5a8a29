"""`alien sign` and `alien send-command`: build, sign and send a command, follow its lifecycle events."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import uuid
from pathlib import Path
from typing import Any

from alien.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_TIMEOUT,
    CliFailure,
    Spinner,
    UsageError,
    connect_nats,
    ids_for,
    print_json,
)
from alien.cli.keys import read_seed
from alien.config import AlienConfig
from alien.signing import SigningKeyError, sign_command, utc_now
from alien.wire import command_subject

_FINAL_EXIT = {"command_completed": EXIT_OK, "command_rejected": EXIT_REJECTED, "command_failed": EXIT_FAILED}
_LIFECYCLE = ("command_received", "command_progress", *_FINAL_EXIT)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sign = sub.add_parser("sign", help="print a signed command")
    _command_args(sign)
    sign.add_argument("--seed-file", type=Path, required=True, help="operator seed file (SO...)")
    sign.add_argument("--entity-id", required=True, help="the target entity")
    sign.set_defaults(run=_sign)
    send = sub.add_parser("send-command", help="send a command (signed with --seed-file) and print its events")
    _command_args(send)
    send.add_argument("--seed-file", type=Path, help="sign with this operator seed file")
    send.add_argument("--entity-id", help="target entity (default: the saved identity / ALIEN_ENTITY_ID)")
    send.add_argument("--org-id", help="organization (default: the saved identity / ALIEN_ORG_ID)")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the final event (default 10)")
    send.set_defaults(run=lambda args: asyncio.run(send_command(AlienConfig(), args)))


def _command_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", required=True, help="command type")
    parser.add_argument("--params", help="params as a JSON object")
    parser.add_argument("--ttl", type=float, help="seconds the command stays valid (ttl_s)")
    parser.add_argument("--command-id", help="command_id (default: a new UUID)")


def _sign(args: argparse.Namespace) -> int:
    print_json(_signed(build_command(args), args.seed_file, args.entity_id))
    return EXIT_OK


def build_command(args: argparse.Namespace) -> dict[str, Any]:
    try:
        params = json.loads(args.params) if args.params is not None else {}
    except ValueError as exc:
        raise UsageError(f"--params is not JSON ({exc}); give a JSON object, e.g. '{{\"speed\": 2}}'") from None
    if not isinstance(params, dict):
        raise UsageError("--params must be a JSON object, e.g. '{\"speed\": 2}'")
    command: dict[str, Any] = {"type": args.type, "command_id": args.command_id or uuid.uuid4().hex, "params": params}
    if args.ttl is not None:
        if not math.isfinite(args.ttl) or args.ttl <= 0:
            raise UsageError("--ttl must be a positive number of seconds")
        command["ttl_s"] = args.ttl
    if args.ttl is not None or args.seed_file is not None:
        command["issued_at"] = utc_now()
    return command


def _signed(command: dict[str, Any], seed_file: Path | None, entity_id: str) -> dict[str, Any]:
    if seed_file is None:
        return command
    try:
        return sign_command(command, read_seed(seed_file), entity_id)
    except SigningKeyError as exc:
        raise UsageError(f"{seed_file}: {exc}") from None


def _org_source(config: AlienConfig, args: argparse.Namespace) -> str:
    """Where the addressed organization came from, for a hint that names how to change it."""
    if args.org_id:
        return "--org-id"
    if "org_id" in config.model_fields_set:
        return "ALIEN_ORG_ID"
    return f"saved in {config.config_file} by `alien register`"


async def send_command(config: AlienConfig, args: argparse.Namespace) -> int:
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    org_source = _org_source(config, args)  # before ids_for: loading the saved ids marks org_id as set
    org_id, entity_id = ids_for(config, args.org_id, args.entity_id, need_entity=True)
    command = _signed(build_command(args), args.seed_file, entity_id)
    command_id = command["command_id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    spinner = Spinner()
    spinner.show("connecting to NATS")
    try:
        link = await connect_nats(config, args.timeout)
    except CliFailure:
        spinner.clear()
        raise
    final: asyncio.Future[int] = loop.create_future()

    async def on_event(msg: Any) -> None:
        try:
            event = json.loads(msg.data)
            data = event.get("data") or {}
        except (ValueError, AttributeError):
            return
        if event.get("event_type") not in _LIFECYCLE or data.get("command_id") != command_id:
            return
        spinner.clear()
        print_json(event)
        if event["event_type"] in _FINAL_EXIT and not final.done():
            final.set_result(_FINAL_EXIT[event["event_type"]])
        else:
            spinner.show(f"command {command_id}: {event['event_type']}")

    try:
        await link.nc.subscribe(f"constellation.events.{org_id}.*", cb=on_event)
        await link.nc.flush()  # the subscription is in place before the command goes out
        await link.nc.publish(command_subject(org_id, entity_id), json.dumps(command).encode())
        await link.nc.flush()
        spinner.show(f"command {command_id} sent; waiting for the entity")
        try:
            return await asyncio.wait_for(final, max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            raise CliFailure(
                f"no final event for command {command_id} within {args.timeout:g}s from entity {entity_id} "
                f"in organization {org_id} ({org_source}); check that the entity is running in "
                "that organization (`alien simulate` prints its organization and entity ids: give them with "
                "--org-id and --entity-id), or give a longer --timeout",
                EXIT_TIMEOUT,
            ) from None
    finally:
        spinner.clear()
        await link.close(1)
