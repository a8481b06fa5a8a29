"""Registration: make sure this device has an organization and an entity on the mothership.

Created once, ids persisted and reused. Saved ids are checked against the server: an entity an
operator deleted (404) is registered again when `reregister_deleted_entity` is on. A server that
cannot be reached while ids are saved is not fatal: the device works offline with its ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from alien.errors import (
    ConfigError,
    MothershipError,
    MothershipUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
)
from alien.logs import get_logger
from alien.retry import Backoff, is_transient
from alien.settings import EntityDescription

if TYPE_CHECKING:
    from alien.config import AlienConfig
    from alien.mothership import MothershipClient

logger = get_logger("alien")

REGISTRATION_ATTEMPTS_SAID = 3  # failed registration attempts logged at WARNING before it gets quieter
REGISTRATION_REMINDER_S = 600.0


async def register_while_unreachable(
    config: AlienConfig,
    mothership: MothershipClient,
    waiting: Callable[[], int],
    note_error: Callable[[str | None], None],
) -> None:
    """ensure_registered(), again after each transient failure (a robot may boot before its network).

    `waiting()` is how many messages wait meanwhile (said in the log line); `note_error` gets why
    registration is still being retried, and None once it succeeded. Other failures raise.
    """
    backoff = Backoff(config.retry_backoff_s, config.retry_backoff_max_s)
    attempts = 0
    loop = asyncio.get_running_loop()
    said_at = loop.time()
    while True:
        try:
            await ensure_registered(config, mothership)
        except (MothershipUnavailableError, ServerError) as exc:
            if not is_transient(exc):
                raise  # a server that answers with an error will answer it again
            note_error(str(exc))
            attempts += 1
            delay = backoff.next_delay()
            # One line per attempt while it may be a slow boot, then a reminder now and then.
            loud = attempts <= REGISTRATION_ATTEMPTS_SAID or loop.time() - said_at >= REGISTRATION_REMINDER_S
            if loud:
                said_at = loop.time()
            (logger.warning if loud else logger.debug)(
                "cannot register yet (attempt %d: %s); trying again in %.1fs (%d message(s) waiting)%s",
                attempts,
                exc,
                delay,
                waiting(),
                f"; next attempts are logged at DEBUG, with a reminder every {REGISTRATION_REMINDER_S / 60:.0f} min"
                if attempts == REGISTRATION_ATTEMPTS_SAID
                else "",
            )
            await asyncio.sleep(delay)  # backoff between attempts, not a wait for state
            continue
        note_error(None)
        if attempts:
            logger.info("registered after %d failed attempt(s)", attempts)
        return


async def learn_dialect_while_unreachable(config: AlienConfig, mothership: MothershipClient) -> str:
    """The server's dialect, asked again after each failure; a non-transient one is said at ERROR."""
    backoff = Backoff(config.retry_backoff_s, config.retry_backoff_max_s)
    while True:
        try:
            return await mothership.detect_dialect()
        except (MothershipUnavailableError, ServerError) as exc:
            if not is_transient(exc):
                logger.error("cannot learn the server's dialect (%s); telemetry keeps waiting", exc)
            await asyncio.sleep(backoff.next_delay())  # backoff between attempts, not a wait for state


async def ensure_registered(config: AlienConfig, mothership: MothershipClient) -> None:
    """Learn this device's ids into `config.identity`: check the saved ones, else join or create.

    The settings in `config` never change; registration writes only the identity.
    """
    ident = config.identity
    if ident.org_id and ident.entity_id:
        try:
            entity = await mothership.get_entity(ident.org_id, ident.entity_id)
        except (MothershipUnavailableError, ServerError) as exc:
            if not is_transient(exc):
                raise
            logger.warning("mothership unreachable (%s); continuing with saved ids", exc)
            return
        except NotFoundError:
            if not config.reregister_deleted_entity:
                raise
            logger.warning("saved entity %s no longer exists on the server; registering again", ident.entity_id)
            org_gone = not ident.org_pinned and not await _organization_exists(mothership, ident.org_id)
            ident.forget_entity(organization_too=org_gone)
        else:
            logger.info("using saved entity %s in organization %s", config.entity_id, config.org_id)
            await _sync_video_config(config, mothership, entity)
            return

    if not ident.org_id:
        ident.org_id = await _organization_id(config, mothership)
    if not ident.entity_id:
        logger.info("Creating new entity...")
        # with video_config where the server has it
        entity = await mothership.create_entity(ident.org_id, EntityDescription.from_config(config))
        ident.entity_id = str(entity["entity_id"])
        logger.info("Created entity: %s", ident.entity_id)
        if config.video_config is not None and not await mothership.supports_video_config():
            _video_config_not_sent(mothership)


async def _sync_video_config(config: AlienConfig, mothership: MothershipClient, entity: dict[str, Any]) -> None:
    """The configured video streams win over what the server has (the setting changed since registration)."""
    wanted = config.video_config
    if wanted is None or not config.org_id or not config.entity_id:
        return
    if not await mothership.supports_video_config():
        _video_config_not_sent(mothership)
        return
    if entity.get("video_config") == wanted.body():
        return
    try:
        await mothership.update_video_config(config.org_id, config.entity_id, wanted)
    except MothershipError as exc:  # optional metadata: never a reason not to start
        logger.warning("could not update the entity's video_config from ALIEN_VIDEO_CONFIG (%s); starting anyway", exc)
        return
    logger.info("video_config of entity %s updated from ALIEN_VIDEO_CONFIG", config.entity_id)


def _video_config_not_sent(mothership: MothershipClient) -> None:
    logger.warning(
        "ALIEN_VIDEO_CONFIG is set, but a %s server has no video_config on entities (v0.1.x has); not sent",
        mothership.dialect,
    )


async def _organization_exists(mothership: MothershipClient, org_id: str) -> bool:
    try:
        await mothership.get_organization(org_id)
    except NotFoundError:
        return False
    return True


async def _organization_id(config: AlienConfig, mothership: MothershipClient) -> str:
    """Reuse the organization named `org_name` (docs/contract.md#peers: match before create), else create it.

    On a v0.1 server an API key and its NKey belong to one organization, which no REST call names:
    a client with NKey credentials on a server that lists a single organization uses that one, as
    an organization it created could publish nothing (the startup permission check in AlienClient
    names the organizations when that guess is wrong).
    """
    organizations = await mothership.list_organizations()
    existing = next((org for org in organizations if org.get("name") == config.org_name), None)
    if existing is not None:
        logger.info("using existing organization %r (%s)", config.org_name, existing["org_id"])
        return str(existing["org_id"])
    if mothership.dialect == "v0.1" and has_org_bound_credentials(config) and len(organizations) == 1:
        only = organizations[0]
        logger.info(
            "using organization %r (%s), the only one on the server: API keys belong to one organization "
            "(ALIEN_ORG_ID picks another)",
            only.get("name"),
            only["org_id"],
        )
        return str(only["org_id"])
    logger.info("Creating new organization...")
    try:
        org = await mothership.create_organization(config.org_name, config.org_type)
    except PermissionDeniedError as exc:
        raise ConfigError(
            f"creating organization {config.org_name!r} needs an API key with the 'admin' scope "
            f"({exc.server_message}); use an admin key, or set ALIEN_ORG_ID to an existing organization"
        ) from None
    logger.info("Created organization: %s", org["org_id"])
    return str(org["org_id"])


def has_org_bound_credentials(config: AlienConfig) -> bool:
    """NKey or creds-file NATS credentials: on v0.1 servers they are issued per API key, for one organization."""
    return bool(config.nats_nkey_seed or config.nats_nkey_seed_file or config.nats_creds_file)
