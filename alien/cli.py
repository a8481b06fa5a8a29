"""`alien` command line (also `python -m alien`).

Commands: `register` registers this device (or reuses the saved ids) and prints them as JSON;
`status` shows the saved identity and the server's dialect and health. Settings come from the
environment and `.env`, exactly as for the library. Exit codes: 0 ok, 1 mothership error,
2 configuration or identity-file error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from alien import __version__
from alien.config import AlienConfig
from alien.errors import AlienError, ConfigError, IdentityFileError, MothershipError
from alien.mothership import MothershipClient
from alien.registration import ensure_registered


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alien", description="Alien: connect a device to the mothership.")
    parser.add_argument("--version", action="version", version=f"alien {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("register", help="register this device (or reuse saved ids) and print the ids")
    sub.add_parser("status", help="saved identity, server dialect and health")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        config = AlienConfig()
        action = _register if args.command == "register" else _status
        print(json.dumps(asyncio.run(action(config)), indent=2))
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
