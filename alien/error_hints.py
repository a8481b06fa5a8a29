"""What to do about an error whose own message does not say: one clause, shared by the CLI and the bridge."""

from __future__ import annotations

from alien.config import AlienConfig
from alien.errors import AlienError, AuthenticationError, MothershipUnavailableError, PermissionDeniedError
from alien.wire import redact_url


def hint(exc: AlienError, config: AlienConfig | None) -> str:
    """The clause "; <what to do>" for `exc`, or "" when its message already says (it holds a "; ")."""
    if "; " in str(exc):
        return ""
    if isinstance(exc, MothershipUnavailableError):
        url = redact_url(config.mothership_url) if config is not None else "the mothership"
        return f"; check MOTHERSHIP_URL ({url}) and that the mothership is running"
    if isinstance(exc, AuthenticationError) and config is not None and config.api_key is None:
        return (
            "; ALIEN_API_KEY is not set: v0.1.x servers need an API key (c4_live_... from the server's admin "
            "page) in the environment or .env, never as a ROS parameter; v0.0.1 servers check API_BEARER_TOKEN"
        )
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return "; check API_BEARER_TOKEN (v0.0.1) or ALIEN_API_KEY (v0.1.x) and its scopes"
    return ""
