"""At startup, whether these NATS credentials can publish this entity's telemetry.

A key for another organization is otherwise found only by every message being refused while the
program carries on. nats-server answers a refused publish with an error before it answers a
PING that follows, so a publish and a flush tell. The probe carries the header
`Nats-Expected-Stream` naming no stream: JetStream refuses to store it, so no stream, worker or
operator map ever sees it; core subscribers of the subject see an empty message.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors

from alien import learnt_denials
from alien.config import AlienConfig
from alien.entity_state import BUCKET as ENTITY_STATE_BUCKET
from alien.errors import IdentityFileError, MothershipError, TelemetryDeniedError
from alien.link import DenialListener, NatsLink
from alien.logs import get_logger

logger = get_logger("alien.permission_check")

PROBE_STREAM = "ALIEN_PERMISSION_PROBE"  # no stream has this name: the probe is never stored


async def publish_allowed(link: NatsLink, subject: str, timeout: float) -> bool:
    """Whether nats-server accepts a publish to `subject` from this connection (nothing is stored).

    True when it cannot tell (the link dropped meanwhile): the publisher counts a later refusal.
    """
    probe = ("publish", subject.lower())
    link.probing.add(probe)  # a refusal is the caller's error to raise, not a log line of the link's
    try:
        await link.nc.publish(subject, b"", headers={"Nats-Expected-Stream": PROBE_STREAM})
        # nats-py writes a flush's PING ahead of publishes still waiting for its flusher: only the
        # second PING surely follows the probe, and the server answers a refusal before its PONG.
        for _ in range(2):
            await link.nc.flush(math.ceil(timeout))
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        logger.debug("publish permission for %s not checked: %r", subject, exc)
    finally:
        link.probing.discard(probe)
    return not link.is_denied("publish", subject)


async def require_telemetry(
    link: NatsLink,
    subject: str,
    org_id: str,
    *,
    org_pinned: bool,
    timeout: float,
    list_organizations: Callable[[], Awaitable[list[dict[str, Any]]]] | None,
) -> None:
    """TelemetryDeniedError when nats-server refuses `subject` to these credentials.

    The server's organizations, when they can be listed, are named in it.
    """
    if await publish_allowed(link, subject, timeout):
        return
    organizations = None
    if list_organizations is not None:
        with contextlib.suppress(MothershipError):  # only to name them in the error
            organizations = await list_organizations()
    raise telemetry_denied(subject, org_id, org_pinned=org_pinned, organizations=organizations)


def telemetry_denied(
    subject: str, org_id: str, *, org_pinned: bool, organizations: list[dict[str, Any]] | None
) -> TelemetryDeniedError:
    """The error naming the subject, the organization tried, how it was chosen and the fix."""
    chosen = "ALIEN_ORG_ID" if org_pinned else "chosen by this client: ALIEN_ORG_ID is not set"
    others = [org for org in organizations or [] if org.get("org_id") != org_id]
    listed = ", ".join(f"{org.get('org_id')} ({org.get('name')!r})" for org in others[:5])
    if len(others) > 5:
        listed += f" and {len(others) - 5} more"
    fix = (
        "set ALIEN_ORG_ID to the organization the API key belongs to"
        + (f" (the server also has: {listed})" if listed else "")
        + f", or use a key with the nats:telemetry scope (nats:telemetry:write on newer servers) for {org_id}"
    )
    return TelemetryDeniedError(
        f'nats-server denied publishing telemetry to "{subject}": these NATS credentials cannot publish for '
        f"organization {org_id} ({chosen}); {fix}",
        subject=subject,
        org_id=org_id,
    )


def keep_refusals(config: AlienConfig, link: NatsLink, registered: Callable[[], bool]) -> DenialListener:
    """For `link.on_denied`: a refused right is kept with the identity, so the next start does not ask for it again."""

    def keep(operation: str, subject: str) -> None:
        feature = learnt_denials.feature_of(subject, link.api_prefix.lower(), ENTITY_STATE_BUCKET.lower())
        if operation != "publish" or feature is None:
            return
        if config.identity.learn_refusal(feature, config.nats_url) and registered():
            try:
                config.save()
            except IdentityFileError as exc:  # only a probe more at the next start
                logger.warning("could not keep what the server refused: %s", exc)

    return keep
