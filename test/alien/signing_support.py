"""Keys and timestamps shared by the test_signing_* modules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alien.signing import generate_keypair

ENTITY = "entity-1"
KEYS = generate_keypair()
OTHER = generate_keypair()


def _iso(seconds_from_now: float) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now)
    return moment.isoformat().replace("+00:00", "Z")
