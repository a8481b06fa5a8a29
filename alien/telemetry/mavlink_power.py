"""SYS_STATUS and BATTERY_STATUS from one power reading (common.xml units).

Pure functions, no I/O. Unknown values are left out, not sent as common.xml's "unknown" sentinels
(alien.telemetry.mavlink's docstring says why); every number given is range-checked (alien.telemetry.mavlink_fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alien.telemetry.mavlink_fields import (
    BATTERY_STATUS,
    INT16,
    INT16_MAX,
    SYS_STATUS,
    UINT16_MAX,
    Message,
    TelemetryEncodeError,
    number,
    scaled,
)

POWER_KEYS = frozenset({"voltage", "current", "percentage", "temperature", "cell_voltage", "technology"})
# The rest of the ROS bridge's BatteryState dict: no field in either message; not sent, not leftover.
POWER_DESCRIPTIVE = frozenset(
    "charge capacity design_capacity status health present cell_temperature location serial_number stamp".split()
)
# sensor_msgs/BatteryState technology name -> MAV_BATTERY_TYPE; others are 0 (UNKNOWN)
BATTERY_TYPES = {"LIPO": 1, "LIFE": 2, "LION": 3, "NIMH": 4}
VOLTAGE_CELLS = 10
CELL_MAX_MV = UINT16_MAX - 1  # the highest cell voltage: UINT16_MAX would mean "no cell"


def _pack_voltages(pack_mv: int | None) -> list[int]:
    """Pack voltage in cell 0, above 65534 mV continued in cells 1.. (common.xml BATTERY_STATUS.voltages).

    Unknown -> []. Only the cells used: no UINT16_MAX padding for the unused ones.
    """
    cells: list[int] = []
    remaining = pack_mv
    while remaining is not None and (not cells or remaining > 0):
        cells.append(min(remaining, CELL_MAX_MV))
        remaining -= cells[-1]
    return cells


def _voltages(pack_mv: int | None, cell_voltage: Any) -> list[int]:
    """Per-cell mV when every cell is known, else the pack voltage (_pack_voltages); [] when neither."""
    if cell_voltage is None:
        return _pack_voltages(pack_mv)
    if not isinstance(cell_voltage, list | tuple):
        raise TelemetryEncodeError(f"power.cell_voltage {cell_voltage!r:.80} must be a list of volts")
    if not 0 < len(cell_voltage) <= VOLTAGE_CELLS:
        return _pack_voltages(pack_mv)  # no cells, or more than the message holds: the pack voltage
    volts = [number(f"power.cell_voltage[{i}]", cell) for i, cell in enumerate(cell_voltage)]
    cells = [  # every given cell is range-checked, also when the list is not sent
        None if cell is None else scaled(f"power.cell_voltage[{i}]", cell, 1000, "voltages", 0, CELL_MAX_MV)
        for i, cell in enumerate(volts)
    ]
    known = [cell for cell in cells if cell is not None]
    if len(known) < len(cells):
        # A cell without a reading would need UINT16_MAX in its slot, and dropping it would shift
        # the later cells into its place: send the pack voltage, which MAVLink reads as such.
        return _pack_voltages(pack_mv)
    return known


def battery_remaining(percentage: Any, field: str) -> int | None:
    """0..100 % -> battery_remaining; unknown -> None (left out, not -1). Above 100 % is an error, not clamped."""
    value = number(field, percentage)
    return None if value is None else scaled(field, value, 1, "battery_remaining", -1, 100)


def current_ca(current: Any) -> int | None:
    """ROS amperes (negative = discharging) -> MAVLink cA (positive = consumption); unknown -> None."""
    amperes = number("power.current", current)
    if amperes is None:
        return None
    centiamperes = scaled("power.current", -amperes, 100, "current_battery", *INT16)
    return 0 if centiamperes == -1 else centiamperes  # -1 means "not measured" in MAVLink; 10 mA ~ 0


def temperature_cdegc(temperature: Any) -> int | None:
    """°C -> cdegC; unknown -> None. INT16_MAX means "unknown", so the hottest valid reading is INT16_MAX - 1."""
    celsius = number("power.temperature", temperature)
    if celsius is None:
        return None
    return scaled("power.temperature", celsius, 100, "temperature", INT16[0], INT16_MAX - 1)


def _known(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None and value != []}


def power_messages(power: Mapping[str, Any], percentage: Any, percentage_field: str) -> list[Message]:
    """SYS_STATUS then BATTERY_STATUS from one power reading, each only when it has a known value.

    Everything given is checked before anything is built. Unknown values are left out (alien.telemetry.mavlink's
    docstring): BATTERY_STATUS temperature, voltages, current_battery and battery_remaining,
    SYS_STATUS voltage_battery, current_battery and battery_remaining. current_consumed and
    energy_consumed are never sent (no consumption estimate: their "unknown" is -1).

    The order matters on the newest server: its worker copies SYS_STATUS voltage_battery and
    current_battery into the map's power.voltage/power.current unconverted (mV, cA), while it
    converts BATTERY_STATUS current_battery to A. With BATTERY_STATUS last, the map's current is
    left in A. (The worker takes power.voltage from SYS_STATUS only, so that stays in mV.)
    """
    voltage = number("power.voltage", power.get("voltage"))
    pack_mv = None
    if voltage is not None:  # up to 10 cells of 65534 mV (see _pack_voltages)
        pack_mv = scaled("power.voltage", voltage, 1000, "voltages", 0, CELL_MAX_MV * VOLTAGE_CELLS)
    voltages = _voltages(pack_mv, power.get("cell_voltage"))
    current = current_ca(power.get("current"))
    remaining = battery_remaining(percentage, percentage_field)
    temperature = temperature_cdegc(power.get("temperature"))
    technology = power.get("technology")

    messages = []
    # SYS_STATUS has one uint16 for the pack: a pack above 65534 mV is left out there (BATTERY_STATUS
    # carries it split over cells). Sensor bitmasks and load are left out too: the worker reads only
    # the fields present, and 0 would claim "no sensors present".
    status = _known(
        {
            "voltage_battery": pack_mv if pack_mv is not None and pack_mv <= CELL_MAX_MV else None,
            "current_battery": current,
            "battery_remaining": remaining,
        }
    )
    if status:
        messages.append(Message("SYS_STATUS", SYS_STATUS, status))
    measured = _known(
        {"temperature": temperature, "voltages": voltages, "current_battery": current, "battery_remaining": remaining}
    )
    if measured:  # id, battery_function and type describe the battery: alone they are no reading
        battery = {
            "id": 0,
            "battery_function": 0,  # MAV_BATTERY_FUNCTION_UNKNOWN: ROS does not say what it powers
            "type": BATTERY_TYPES.get(technology, 0) if isinstance(technology, str) else 0,
            **measured,
        }
        messages.append(Message("BATTERY_STATUS", BATTERY_STATUS, battery))
    return messages
