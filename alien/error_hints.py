"""What to do about an error whose own message does not say: one clause, shared by the CLI and the bridge.

`describe_start_failure` is the one line a start that retrying cannot fix fails with (ThreadedClient,
and so the bridge's /diagnostics); `hint` the clause the CLI adds to an error.
"""

from __future__ import annotations

from alien.config import AlienConfig
from alien.errors import AlienError, AuthenticationError, MothershipUnavailableError, PermissionDeniedError
from alien.wire import redact_url

_MAX_FOREIGN_TEXT = 300  # an exception alien did not phrase may quote a whole server answer


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


def describe_start_failure(exc: BaseException, config: AlienConfig, dialect: str | None) -> str:
    """`exc` as one line, with what to set where its own message does not say; never a secret.

    alien's errors never carry secrets (alien.errors); the hints name settings, not their values.
    """
    if not isinstance(exc, AlienError):
        text = _one_line(str(exc))
        if 'INFO {"server_id"' in text:  # a NATS server's greeting where HTTP was expected
            return _nats_port_hint(config)
        if len(text) > _MAX_FOREIGN_TEXT:
            text = text[:_MAX_FOREIGN_TEXT] + "..."
        return f"{type(exc).__name__}: {text}"
    text = _one_line(str(exc))
    if "; " in text:
        return text  # alien's own "what to do" is already part of it
    return text + _start_hint(exc, config, dialect)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _nats_port_hint(config: AlienConfig) -> str:
    url = redact_url(config.mothership_url)
    address = url.partition("://")[2].partition("/")[0]
    return (
        f"MOTHERSHIP_URL ({url}) answers with the NATS protocol, not HTTP: it is a NATS port; "
        f"set MOTHERSHIP_URL to the mothership's REST API and NATS_URL to nats://{address}"
    )


def _start_hint(exc: AlienError, config: AlienConfig, dialect: str | None) -> str:
    if isinstance(exc, MothershipUnavailableError):
        return f"; check MOTHERSHIP_URL ({redact_url(config.mothership_url)}) and that the mothership is running"
    if dialect == "v0.0.1" and isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return "; check API_BEARER_TOKEN (this v0.0.1 mothership's bearer token)"
    if isinstance(exc, PermissionDeniedError):
        return (
            "; ALIEN_API_KEY lacks the scope or organization this needs: use a key that has it "
            "(or set ALIEN_ORG_ID to the key's organization)"
        )
    if not isinstance(exc, AuthenticationError):
        return ""
    if dialect is None:
        return "; check API_BEARER_TOKEN (v0.0.1 servers) or ALIEN_API_KEY (v0.1.x servers)"
    if config.api_key is not None:
        return "; the mothership does not accept ALIEN_API_KEY: check that it is a key of this deployment, not revoked"
    if "bearer_token" in config.model_fields_set:  # v0.1 takes a key given as API_BEARER_TOKEN too
        return "; the mothership does not accept API_BEARER_TOKEN as an API key: set ALIEN_API_KEY to a key of it"
    return (
        "; ALIEN_API_KEY is not set: a v0.1 mothership needs one (c4_live_..., from the mothership's "
        "administrator; the local emulator prints its dev key) in the environment or .env, never as a ROS parameter"
    )
