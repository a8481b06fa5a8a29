"""alien: connect edge devices to an Open Mothership / Constellation Overwatch C2 server.

Registers drones, robots and sensors over REST and talks over NATS JetStream. Never imports rclpy.
"""

__version__ = "0.1.0"

from alien.client import AlienClient
from alien.config import AlienConfig
from alien.encoders import TelemetryEncodeError
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
from alien.fleet import AlienFleet
from alien.mothership import MothershipClient
from alien.video import VideoConfig

__all__ = [
    "AlienClient",
    "AlienConfig",
    "AlienError",
    "AlienFleet",
    "AuthenticationError",
    "CertificateError",
    "ConfigError",
    "IdentityFileError",
    "MothershipClient",
    "MothershipError",
    "MothershipUnavailableError",
    "NatsAuthError",
    "NatsPermissionError",
    "NotFoundError",
    "NotInitializedError",
    "PermissionDeniedError",
    "PublishRejectedError",
    "RequestRejectedError",
    "ServerError",
    "TelemetryDeniedError",
    "TelemetryEncodeError",
    "UnsupportedByServerError",
    "VideoConfig",
    "__version__",
]
