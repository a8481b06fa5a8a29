"""`alien` command line (also `python -m alien`).

Commands: `register` registers this device (or reuses the saved ids) and prints them as JSON;
`status` shows the saved identity and the server's dialect and health. Settings come from the
environment and `.env`, exactly as for the library. Exit codes: 0 ok, 1 mothership error,
2 configuration or identity-file error.

Operator tooling for signed commands (alien/signing.py):
- `keys generate [--out FILE]`: a new operator key pair; the seed goes to FILE (mode 0600,
  never overwritten; default `operator.nk`), the public key (to put in
  ALIEN_COMMAND_TRUSTED_KEYS) is printed.
- `sign --seed-file F --entity-id E --type T [--params JSON] [--ttl S] [--command-id ID]`:
  prints the signed command as JSON.
- `send-command --type T [--params JSON] [--seed-file F] [--ttl S] [--command-id ID]
  [--entity-id E] [--org-id O] [--timeout S]`: signs (with a seed file), publishes on
  `constellation.commands.{org}.{entity}` (ids from the saved identity / environment, or given),
  and prints the command's lifecycle events (one JSON line each) until the final one.
  Exit codes: 0 completed, 3 rejected, 4 failed, 5 no final event within --timeout
  (default 10 s), 1 NATS unreachable or refused, 2 usage, configuration or key error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from alien import __version__
from alien.config import AlienConfig
from alien.errors import AlienError, ConfigError, IdentityFileError, MothershipError
from alien.link import NatsLink
from alien.mothership import MothershipClient
from alien.registration import ensure_registered
from alien.signing import SigningKeyError, generate_keypair, sign_command, utc_now
from alien.wire import command_subject, redact_url

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED, EXIT_FAILED, EXIT_TIMEOUT = 0, 1, 2, 3, 4, 5
_FINAL_EXIT = {"command_completed": EXIT_OK, "command_rejected": EXIT_REJECTED, "command_failed": EXIT_FAILED}
_LIFECYCLE = ("command_received", "command_progress", *_FINAL_EXIT)


class UsageError(Exception):
    """A bad argument (exit 2); the message says which."""


async def _register(config: AlienConfig) -> dict[str, object]:
    config.load()
    async with MothershipClient(config) as mothership:
        await ensure_registered(config, mothership)
        dialect = mothership.dialect
    config.save()
    return {
        "org_id": config.org_id,
        "entity_id": config.entity_id,
        "dialect": dialect,
        "identity_file": config.config_file,
    }


async def _status(config: AlienConfig) -> dict[str, object]:
    config.load()
    async with MothershipClient(config) as mothership:
        dialect = await mothership.detect_dialect()
        health = await mothership.health()
    return {
        "org_id": config.org_id,
        "entity_id": config.entity_id,
        "identity_file": config.config_file,
        "mothership_url": config.mothership_url,
        "dialect": dialect,
        "health": health,
    }


def _keys_generate(out: Path) -> int:
    pair = generate_keypair()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{out} exists; not overwritten (choose another --out)") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(pair.seed + "\n")
    print(pair.public_key)
    print(f"alien: seed written to {out} (mode 0600); trust the key with ALIEN_COMMAND_TRUSTED_KEYS", file=sys.stderr)
    return EXIT_OK


def _read_seed(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the seed file {path}: {exc.strerror}") from None


def _build_command(args: argparse.Namespace) -> dict[str, Any]:
    try:
        params = json.loads(args.params) if args.params is not None else {}
    except ValueError as exc:
        raise UsageError(f"--params is not JSON: {exc}") from None
    if not isinstance(params, dict):
        raise UsageError("--params must be a JSON object")
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
        return sign_command(command, _read_seed(seed_file), entity_id)
    except SigningKeyError as exc:
        raise UsageError(f"{seed_file}: {exc}") from None


async def _send_command(config: AlienConfig, args: argparse.Namespace) -> int:
    config.load()
    org_id, entity_id = args.org_id or config.org_id, args.entity_id or config.entity_id
    if not org_id or not entity_id:
        raise UsageError(
            f"no organization / entity id: give --org-id and --entity-id, or run where {config.config_file} "
            "holds them (or set ALIEN_ORG_ID / ALIEN_ENTITY_ID)"
        )
    command = _signed(_build_command(args), args.seed_file, entity_id)
    command_id = command["command_id"]
    link = NatsLink(config, name="alien-cli")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    try:
        await asyncio.wait_for(link.connect(), args.timeout)
    except asyncio.TimeoutError:
        print(f"alien: NATS ({redact_url(config.nats_url)}) not reachable within {args.timeout:g}s", file=sys.stderr)
        await link.close(1)
        return EXIT_ERROR
    final: asyncio.Future[int] = loop.create_future()

    async def on_event(msg: Any) -> None:
        try:
            event = json.loads(msg.data)
            data = event.get("data") or {}
        except (ValueError, AttributeError):
            return
        if event.get("event_type") not in _LIFECYCLE or data.get("command_id") != command_id:
            return
        print(json.dumps(event), flush=True)
        if event["event_type"] in _FINAL_EXIT and not final.done():
            final.set_result(_FINAL_EXIT[event["event_type"]])

    try:
        await link.nc.subscribe(f"constellation.events.{org_id}.*", cb=on_event)
        await link.nc.flush()  # the subscription is in place before the command goes out
        await link.nc.publish(command_subject(org_id, entity_id), json.dumps(command).encode())
        await link.nc.flush()
        try:
            return await asyncio.wait_for(final, max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            print(f"alien: no final event for command {command_id} within {args.timeout:g}s", file=sys.stderr)
            return EXIT_TIMEOUT
    finally:
        await link.close(1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alien", description="Alien: connect a device to the mothership.")
    parser.add_argument("--version", action="version", version=f"alien {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("register", help="register this device (or reuse saved ids) and print the ids")
    sub.add_parser("status", help="saved identity, server dialect and health")
    keys = sub.add_parser("keys", help="command-signing keys").add_subparsers(dest="keys_command", required=True)
    generate = keys.add_parser("generate", help="a new operator key pair; prints the public key")
    generate.add_argument("--out", type=Path, default=Path("operator.nk"), help="seed file (mode 0600)")

    def command_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--type", required=True, help="command type")
        p.add_argument("--params", help="params as a JSON object")
        p.add_argument("--ttl", type=float, help="seconds the command stays valid (ttl_s)")
        p.add_argument("--command-id", help="command_id (default: a new UUID)")

    sign = sub.add_parser("sign", help="print a signed command")
    command_args(sign)
    sign.add_argument("--seed-file", type=Path, required=True, help="operator seed file (SO...)")
    sign.add_argument("--entity-id", required=True, help="the target entity")
    send = sub.add_parser("send-command", help="sign (optionally), send a command and print its events")
    command_args(send)
    send.add_argument("--seed-file", type=Path, help="sign with this operator seed file")
    send.add_argument("--entity-id", help="target entity (default: the saved identity / ALIEN_ENTITY_ID)")
    send.add_argument("--org-id", help="organization (default: the saved identity / ALIEN_ORG_ID)")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the final event")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "keys":
            return _keys_generate(args.out)
        if args.command == "sign":
            command = _signed(_build_command(args), args.seed_file, args.entity_id)
            print(json.dumps(command))
            return EXIT_OK
        config = AlienConfig()
        if args.command == "send-command":
            return asyncio.run(_send_command(config, args))
        action = _register if args.command == "register" else _status
        print(json.dumps(asyncio.run(action(config)), indent=2))
    except UsageError as exc:
        print(f"alien: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, IdentityFileError) as exc:
        print(f"alien: {exc}", file=sys.stderr)
        return 2
    except MothershipError as exc:
        print(f"alien: {exc}", file=sys.stderr)
        return 1
    except AlienError as exc:
        print(f"alien: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
