"""Which wire format telemetry goes out in: configured, or chosen by the server's dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alien.config import AlienConfig
from alien.encoders import EncoderIds, TelemetryEncoder, TelemetryFormat, make_encoder
from alien.mothership import MothershipClient
from alien.mothership.enums import Dialect, resolve_entity_type


class WireFormat:
    """The telemetry format and its encoder, for a config and the mothership it talks to."""

    def __init__(self, config: AlienConfig, mothership: Callable[[], MothershipClient | None]) -> None:
        self.config = config
        self._mothership = mothership  # a getter: the client replaces its mothership on retry
        self._encoder: TelemetryEncoder | None = None

    def dialect(self) -> Dialect | None:
        mothership = self._mothership()
        detected = mothership.dialect if mothership is not None else None
        saved = self.config.server_dialect
        return detected or (saved if saved in ("v0.0.1", "v0.1") else None)  # type: ignore[return-value]

    def undecided(self) -> bool:
        """telemetry_format "auto" and the server's dialect not known yet (never reached, none saved)."""
        return self.config.telemetry_format == "auto" and self.dialect() is None

    @property
    def format(self) -> TelemetryFormat:
        configured = self.config.telemetry_format
        if configured != "auto":
            return configured
        # docs/contract.md#telemetry-payloads: v0.0.1 takes any JSON (the seed shape); v0.1.1 decodes MAVLink.
        return "mavlink" if self.dialect() == "v0.1" else "seed"

    def check(self, data: dict[str, Any]) -> None:
        """Raise what encoding `data` would (TelemetryEncodeError), on a throwaway encoder: its state stays."""
        self._make().encode(data, EncoderIds("-", "-"))

    def encoder(self) -> TelemetryEncoder:
        if self._encoder is None or self._encoder.format != self.format:
            self._encoder = self._make()
        return self._encoder

    def _make(self) -> TelemetryEncoder:
        return make_encoder(
            self.format,
            entity_type=resolve_entity_type(self.config.entity_type, self.dialect()),
            system_id=self.config.mavlink_system_id,
            component_id=self.config.mavlink_component_id,
            source=self.config.telemetry_source,
        )
