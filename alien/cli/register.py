"""`alien register`: register this device (or reuse the saved ids) and print the ids as JSON."""

from __future__ import annotations

import argparse
import asyncio

from alien.cli.common import EXIT_ERROR, EXIT_OK, CliFailure, print_json, spinning
from alien.config import AlienConfig
from alien.errors import MothershipUnavailableError, ServerError
from alien.mothership import MothershipClient
from alien.registration import ensure_registered
from alien.settings import MothershipSettings
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
    async with MothershipClient(MothershipSettings.from_config(config)) as mothership:
        if config.org_id and config.entity_id:
            # The library goes on offline with saved ids; `register` exists to check them.
            await _reachable(config, mothership)
        await ensure_registered(config, mothership)
        dialect = mothership.dialect
    config.identity.dialect = dialect or config.server_dialect
    config.save()
    return {
        "org_id": config.org_id,
        "entity_id": config.entity_id,
        "dialect": dialect,
        "identity_file": config.config_file,
    }


async def _reachable(config: AlienConfig, mothership: MothershipClient) -> None:
    try:
        await mothership.health()
    except (MothershipUnavailableError, ServerError) as exc:
        if isinstance(exc, ServerError) and exc.status not in (502, 503, 504):
            raise
        raise CliFailure(
            f"mothership unreachable at {redact_url(config.mothership_url)}, saved ids not checked "
            f"(organization {config.org_id}, entity {config.entity_id} in {config.config_file}); "
            "start the mothership or fix MOTHERSHIP_URL",
            EXIT_ERROR,
        ) from None
