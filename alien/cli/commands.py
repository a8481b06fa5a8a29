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
    has_surrogate,
    ids_for,
    number,
    print_json,
    seconds,
    shown,
    subject_token_arg,
)
from alien.cli.encryption import public_key_argument, seal_params
from alien.cli.keys import read_seed
from alien.commands.envelope import MAX_COMMAND_BYTES, MAX_JSON_DEPTH, MAX_TTL_S, TYPE_PATTERN
from alien.config import AlienConfig
from alien.signing import SigningKeyError, sign_command, utc_now
from alien.wire import command_subject

_FINAL_EXIT = {"command_completed": EXIT_OK, "command_rejected": EXIT_REJECTED, "command_failed": EXIT_FAILED}
_LIFECYCLE = ("command_received", "command_progress", *_FINAL_EXIT)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sign = sub.add_parser("sign", help="print a signed command")
    _command_args(sign)
    sign.add_argument("--seed-file", type=Path, required=True, help="operator seed file (SO...)")
    sign.add_argument("--entity-id", type=subject_token_arg, required=True, help="the target entity")
    sign.set_defaults(run=_sign)
    send = sub.add_parser("send-command", help="send a command (signed with --seed-file) and print its events")
    _command_args(send)
    send.add_argument("--seed-file", type=Path, help="sign with this operator seed file")
    send.add_argument(
        "--entity-id", type=subject_token_arg, help="target entity (default: the saved identity / ALIEN_ENTITY_ID)"
    )
    send.add_argument(
        "--org-id", type=subject_token_arg, help="organization (default: the saved identity / ALIEN_ORG_ID)"
    )
    send.add_argument("--timeout", type=seconds, default=10.0, help="seconds to wait for the final event (default 10)")
    send.set_defaults(run=lambda args: asyncio.run(send_command(AlienConfig(), args)))


def _command_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", type=_command_type, required=True, help="command type")
    parser.add_argument("--params", type=_params, help="params as a JSON object")
    parser.add_argument("--ttl", type=_ttl, help="seconds the command stays valid (ttl_s)")
    parser.add_argument("--command-id", type=_command_id, help="command_id (default: a new UUID)")
    parser.add_argument(
        "--encrypt-params",
        type=public_key_argument,
        metavar="DEVICE_KEY",
        help="encrypt the params to the entity's public key (X...; docs/encryption.md)",
    )


# What an entity would reject (alien/commands/envelope.py) is refused here, in one line.
def _command_type(text: str) -> str:
    if not TYPE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not a command type (1 to 64 letters, digits, '_', '.' or '-')"
        )
    return text


def _command_id(text: str) -> str:
    if not 0 < len(text) <= 128 or has_surrogate(text):
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a command id (1 to 128 characters of UTF-8 text)")
    return text


def _ttl(text: str) -> float:
    value = number(text)
    if not (math.isfinite(value) and 0 < value <= MAX_TTL_S):
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a number of seconds in (0, {MAX_TTL_S}]")
    return value


class _Refused(ValueError):
    """A JSON value that parses in Python but cannot be signed or sent (raised from json's hooks)."""


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON (JSON has no NaN or Infinity); give a number, a string or null")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {shown(text)} is too big (JSON has no Infinity)")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # the interpreter's limit on digits (4300 by default)
        raise _Refused(f"an integer of {len(text.lstrip('-'))} digits is too big to convert") from None


def _params(text: str) -> dict[str, Any]:
    """--params: a JSON object an entity accepts, or ArgumentTypeError saying what is wrong."""
    example = "give a JSON object, e.g. '{\"speed\": 2}'"
    too_deep = f"nests deeper than {MAX_JSON_DEPTH - 1} levels, which an entity rejects"
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite, parse_int=_integer)
    except _Refused as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    except ValueError as exc:  # its message gives the position, never the input
        raise argparse.ArgumentTypeError(f"not JSON ({exc}); {example}") from None
    except RecursionError:
        raise argparse.ArgumentTypeError(too_deep) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object; {example}")
    if _depth(value) >= MAX_JSON_DEPTH:  # the command around params is one more level
        raise argparse.ArgumentTypeError(too_deep)
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        surrogate = shown(exc.object[exc.start : exc.end])
        raise argparse.ArgumentTypeError(
            f"holds the lone surrogate {surrogate} (a \\uD800-\\uDFFF escape or bytes that are not UTF-8), "
            "which cannot be sent as UTF-8"
        ) from None
    return value


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (it is only ever asked about what json.loads could build)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def _sign(args: argparse.Namespace) -> int:
    command = _signed(
        seal_params(build_command(args), args.encrypt_params, args.entity_id), args.seed_file, args.entity_id
    )
    _encoded(command)
    print_json(command)
    return EXIT_OK


def build_command(args: argparse.Namespace) -> dict[str, Any]:
    params = args.params if args.params is not None else {}
    command: dict[str, Any] = {"type": args.type, "command_id": args.command_id or uuid.uuid4().hex, "params": params}
    if args.ttl is not None:
        command["ttl_s"] = args.ttl
    if args.ttl is not None or args.seed_file is not None:
        command["issued_at"] = utc_now()
    return command


def _encoded(command: dict[str, Any]) -> bytes:
    """The bytes sent (print_json's encoding too); UsageError if an entity would refuse them as too large."""
    data = json.dumps(command).encode()
    if len(data) > MAX_COMMAND_BYTES:
        raise UsageError(
            f"the command is {len(data)} bytes, more than the {MAX_COMMAND_BYTES} an entity accepts; "
            "give smaller --params"
        )
    return data


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
    if config.identity.org_pinned:
        return "ALIEN_ORG_ID"
    return f"saved in {config.config_file} by `alien register`"


async def send_command(config: AlienConfig, args: argparse.Namespace) -> int:
    org_source = _org_source(config, args)
    org_id, entity_id = ids_for(config, args.org_id, args.entity_id, need_entity=True)
    command = _signed(seal_params(build_command(args), args.encrypt_params, entity_id), args.seed_file, entity_id)
    data = _encoded(command)  # before connecting: a refusal is not worth a connection
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
        await link.nc.publish(command_subject(org_id, entity_id), data)
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
