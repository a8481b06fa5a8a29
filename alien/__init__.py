"""alien: connect edge devices to an Open Mothership / Constellation Overwatch C2 server.

Registers drones, robots and sensors over REST and talks over NATS JetStream. Never imports rclpy.
"""

import importlib
from typing import TYPE_CHECKING, Any

from alien.errors import (
    AlienError,
    AuthenticationError,
    CertificateError,
    ConfigError,
    IdentityFileError,
    MothershipError,
    MothershipUnavailableError,
    NatsAuthError,
    NatsPermissionError,
    NotFoundError,
    NotInitializedError,
    PermissionDeniedError,
    PublishRejectedError,
    RequestRejectedError,
    ServerError,
    TelemetryDeniedError,
    UnsupportedByServerError,
)
from alien.version import __version__

if TYPE_CHECKING:
    from alien.client import AlienClient
    from alien.config import AlienConfig
    from alien.firmware import FirmwareUpdate
    from alien.fleet import AlienFleet
    from alien.mothership import MothershipClient
    from alien.settings import EntityDescription, MothershipSettings, NatsSettings
    from alien.telemetry.encoders import TelemetryEncodeError
    from alien.telemetry.readings import Reading
    from alien.video import VideoConfig

# Imported on first use: `alien` (the CLI) starts with only the standard library loaded, so a
# Ctrl-C during its start is its one line "interrupted", not a traceback from inside an import.
_LAZY = {
    "AlienClient": "alien.client",
    "AlienConfig": "alien.config",
    "TelemetryEncodeError": "alien.telemetry.encoders",
    "Reading": "alien.telemetry.readings",
    "AlienFleet": "alien.fleet",
    "FirmwareUpdate": "alien.firmware",
    "MothershipClient": "alien.mothership",
    "EntityDescription": "alien.settings",
    "MothershipSettings": "alien.settings",
    "NatsSettings": "alien.settings",
    "VideoConfig": "alien.video",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'alien' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AlienClient",
    "AlienConfig",
    "AlienError",
    "AlienFleet",
    "AuthenticationError",
    "CertificateError",
    "ConfigError",
    "EntityDescription",
    "FirmwareUpdate",
    "IdentityFileError",
    "MothershipClient",
    "MothershipError",
    "MothershipSettings",
    "MothershipUnavailableError",
    "NatsAuthError",
    "NatsPermissionError",
    "NatsSettings",
    "NotFoundError",
    "NotInitializedError",
    "PermissionDeniedError",
    "PublishRejectedError",
    "Reading",
    "RequestRejectedError",
    "ServerError",
    "TelemetryDeniedError",
    "TelemetryEncodeError",
    "UnsupportedByServerError",
    "VideoConfig",
    "__version__",
]
