"""`alien register`: register this device (or reuse the saved ids) and print the ids as JSON."""

from __future__ import annotations

import argparse
import asyncio

from alien.cli.common import EXIT_OK, print_json, spinning
from alien.config import AlienConfig
from alien.mothership import MothershipClient
from alien.registration import ensure_registered
from alien.wire import redact_url


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    register = sub.add_parser("register", help="register this device (or reuse the saved ids) and print the ids")
    register.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = AlienConfig()
    with spinning(f"registering with {redact_url(config.mothership_url)}"):
        ids = asyncio.run(register(config))
    print_json(ids, pretty=True)
    return EXIT_OK


async def register(config: AlienConfig) -> dict[str, object]:
    config.load()
    async with MothershipClient(config) as mothership:
        await ensure_registered(config, mothership)
        dialect = mothership.dialect
    config.server_dialect = dialect or config.server_dialect
    config.save()
    return {
        "org_id": config.org_id,
        "entity_id": config.entity_id,
        "dialect": dialect,
        "identity_file": config.config_file,
    }
