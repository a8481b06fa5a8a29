"""A simulated drone for `alien simulate`: a loop around its base, a draining battery, `return_to_base`."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from alien.client import AlienClient

LOOP_RADIUS_DEG = 0.001  # about 100 m
LOOP_PERIOD_STEPS = 36  # steps per loop
DRAIN_PER_STEP = 0.5  # battery percent
LOW_BATTERY = 20.0
HOME_FRACTION = 0.4  # of the remaining way covered per step when returning


@dataclass
class Flight:
    """One entity's flight: a loop around its base, home on `return_to_base` or a low battery."""

    client: AlienClient
    base: tuple[float, float]
    altitude: float
    step: int = 0
    battery: float = 100.0
    returning: bool = False
    position: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        self.position = self.base

    async def return_to_base(self, command: dict[str, Any]) -> dict[str, Any]:
        self.returning = True
        await self.client.update_status("returning")
        return {"returning": True, "base": {"latitude": self.base[0], "longitude": self.base[1]}}

    def advance(self) -> dict[str, Any]:
        """The next reading: position and heading, battery."""
        self.step += 1
        self.battery = max(0.0, self.battery - DRAIN_PER_STEP)
        lat, lon = self.position
        if self.returning:
            target = self.base
            nxt = (lat + HOME_FRACTION * (target[0] - lat), lon + HOME_FRACTION * (target[1] - lon))
        else:
            angle = 2 * math.pi * self.step / LOOP_PERIOD_STEPS
            nxt = (self.base[0] + LOOP_RADIUS_DEG * math.sin(angle), self.base[1] + LOOP_RADIUS_DEG * math.cos(angle))
        heading = math.degrees(math.atan2(nxt[1] - lon, nxt[0] - lat)) % 360
        self.position = nxt
        where = {"latitude": nxt[0], "longitude": nxt[1], "altitude": self.altitude, "heading": round(heading, 1)}
        return {"position": where, "battery_level": round(self.battery, 1)}

    async def fly(self, interval: float, stop: asyncio.Event) -> None:
        await self.client.update_status("active")
        while not stop.is_set():
            if self.battery <= LOW_BATTERY and not self.returning:
                self.returning = True
                await self.client.update_status("returning")
            await self.client.publish_telemetry(self.advance())
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass
        await self.client.update_status("inactive")
