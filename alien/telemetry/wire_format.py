"""Which wire format telemetry goes out in: configured, or chosen by the server's dialect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alien.mothership import MothershipClient
from alien.mothership.enums import Dialect, resolve_entity_type
from alien.settings import TelemetrySettings
from alien.telemetry.encoders import EncoderIds, TelemetryEncoder, TelemetryFormat, make_encoder


class WireFormat:
    """The telemetry format and its encoder, for these settings and the mothership it talks to."""

    def __init__(
        self,
        settings: TelemetrySettings,
        mothership: Callable[[], MothershipClient | None],
        saved_dialect: Callable[[], str | None] = lambda: None,
    ) -> None:
        """`mothership` and `saved_dialect` are getters.

        The client replaces its mothership on retry; the dialect is configured, or learnt and saved with the identity.
        """
        self.settings = settings
        self._mothership = mothership
        self._saved_dialect = saved_dialect
        self._encoder: TelemetryEncoder | None = None

    def dialect(self) -> Dialect | None:
        mothership = self._mothership()
        detected = mothership.dialect if mothership is not None else None
        if detected is not None:  # the usual case, asked for every reading: the saved one is not read
            return detected
        saved = self._saved_dialect()
        return saved if saved in ("v0.0.1", "v0.1") else None  # type: ignore[return-value]

    def undecided(self) -> bool:
        """telemetry_format "auto" and the server's dialect not known yet (never reached, none saved)."""
        return self.settings.telemetry_format == "auto" and self.dialect() is None

    @property
    def format(self) -> TelemetryFormat:
        configured = self.settings.telemetry_format
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
            entity_type=resolve_entity_type(self.settings.entity_type, self.dialect()),
            system_id=self.settings.mavlink_system_id,
            component_id=self.settings.mavlink_component_id,
            source=self.settings.telemetry_source,
        )
