"""Typed exceptions of the alien library.

Every error names what was wrong (the variable, the file, the HTTP status and the server's own
message) and never carries a secret: request URLs are logged without credentials and headers are
never part of a message.
"""

from __future__ import annotations


class AlienError(Exception):
    """Base class of every error raised by alien."""


class ConfigError(AlienError, ValueError):
    """A configuration value is missing or not allowed."""


class IdentityFileError(AlienError):
    """The persisted identity file exists but cannot be read, parsed or written."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"identity file {path}: {reason}. It was left untouched; fix or remove it "
            "(removing it registers a new entity)."
        )
        self.path = path
        self.reason = reason


class NotInitializedError(AlienError):
    """A method that needs the registered identity or the NATS link ran before initialize()."""


class MothershipError(AlienError):
    """The mothership REST API answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        where = f"{method} {path}: " if method and path else ""
        shown = f"HTTP {status} " if status is not None else ""
        code_part = f"[{code}] " if code else ""
        super().__init__(f"{where}{shown}{code_part}{message}")
        self.status = status
        self.code = code
        self.server_message = message
        self.method = method
        self.path = path


class AuthenticationError(MothershipError):
    """401: the token or API key is missing or wrong."""


class PermissionDeniedError(MothershipError):
    """403: the API key lacks a scope the request needs."""


class NotFoundError(MothershipError):
    """404: the organization or entity does not exist on the server."""


class RequestRejectedError(MothershipError):
    """Another 4xx (400, 409, 422): the server refused the request as sent; retrying won't help."""


class ServerError(MothershipError):
    """5xx after every retry. v0.0.1 servers also answer enum violations with 500."""


class MothershipUnavailableError(MothershipError):
    """The server could not be reached (connection refused, timeout) after every retry."""


class MothershipProtocolError(MothershipError):
    """MOTHERSHIP_URL answered with something that is not HTTP (a NATS port, TLS on http://).

    A configuration mistake: retrying the same address cannot help.
    """


class CertificateError(MothershipError):
    """The HTTPS mothership's certificate does not verify: retrying cannot help."""


class NatsPermissionError(AlienError):
    """nats-server refused a publish or subscription this NATS user has no permission for."""


class TelemetryDeniedError(NatsPermissionError):
    """At startup: nats-server refuses this entity's telemetry subject to these credentials.

    Typically an API key (and its NKey) of another organization than the one the client uses.
    """

    def __init__(self, message: str, *, subject: str, org_id: str) -> None:
        super().__init__(message)
        self.subject = subject
        self.org_id = org_id


class NatsAuthError(AlienError):
    """nats-server refused the credentials; retrying with the same ones cannot succeed."""


class PublishRejectedError(AlienError):
    """JetStream refused a message for good (too large, no permission); it is not retried."""


class UnsupportedByServerError(AlienError):
    """The server's dialect has no such feature (e.g. video_config on v0.0.1)."""


class CommandFailure(AlienError):
    """Raised by a command handler: the command fails with `reason`, a stable token, and the message.

    `command_failed` then carries `reason` besides `error` and `error_type` (docs/commands.md#lifecycle).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
