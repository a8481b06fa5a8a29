"""The install hook of a ROS robot: a verified firmware file handed to a configured service or action.

`commands: [firmware_update]` with `commands.firmware_update.kind: service | action`
(docs/bridge.md#firmware-updates). The alien client checks, downloads and verifies the file
first (docs/firmware.md); only then is the request or goal filled from the update and sent:
`commands.firmware_update.fields` lists `<field path>=<attribute>` pairs (`nested.string_value=path`),
and by default every top-level field named like an attribute (`path`, `version`, ...) is filled.
The mapping is checked when the bridge starts, so a field the type lacks or cannot hold stops it
there, naming the field. An action's feedback becomes `command_progress` (phase `install`); the
response or the result completes the command, and a failure fails it (`install_failed`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from alien.firmware import FirmwareUpdate
from alien_ros.field_errors import FieldError
from alien_ros.message_fill import fill_message
from alien_ros.parameters import ParameterError

# (the request or goal, where feedback goes, the command id) -> the response or result (CommandRouter)
Send = Callable[[Any, Callable[[dict[str, Any]], None], str], Awaitable[dict[str, Any]]]
ATTRIBUTES = ("path", "name", "version", "size", "sha256", "signer", "command_id")
# What the startup check fills in: values of the attributes' types
_SAMPLE = {
    "path": "/x",
    "name": "x",
    "version": "1",
    "size": 1,
    "sha256": "0" * 64,
    "signer": "O",
    "command_id": "c",
}


class FirmwareFieldsError(ParameterError):
    """`commands.firmware_update.fields` names something the type cannot take; the message says what (exit 2)."""


def field_map(msg_type: type, fields: Sequence[str], max_size: int) -> dict[str, str]:
    """ROS field path -> update attribute for `msg_type` (a request or goal class), checked by filling it once.

    The check fills `size` with `max_size` (ALIEN_FIRMWARE_MAX_BYTES): the field must hold every size accepted.
    """
    if fields:
        mapping: dict[str, str] = {}
        for entry in fields:
            target, sep, attribute = (part.strip() for part in entry.partition("="))
            if not sep or not target or attribute not in ATTRIBUTES:
                raise FirmwareFieldsError(
                    f"commands.firmware_update.fields: {entry!r} is not '<field path>=<attribute>' with an "
                    f"attribute among {', '.join(ATTRIBUTES)}"
                )
            mapping[target] = attribute
    else:
        own: dict[str, str] = msg_type.get_fields_and_field_types()  # type: ignore[attr-defined]
        mapping = {name: name for name in ATTRIBUTES if name in own}
    try:
        fill_message(msg_type, _values(mapping, {**_SAMPLE, "size": max_size}), path="fields")
    except FieldError as exc:
        raise FirmwareFieldsError(f"commands.firmware_update.fields: {exc}") from None
    return mapping


def _values(mapping: Mapping[str, str], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The nested params fill_message takes: `a.b=path` -> {"a": {"b": <path>}}."""
    values: dict[str, Any] = {}
    for target, attribute in mapping.items():
        *parents, leaf = target.split(".")
        node = values
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = attributes[attribute]
    return values


class FirmwareInstall:
    """What the router registers with `on_firmware`: the update, as a service request or an action goal."""

    def __init__(self, msg_type: type, fields: Sequence[str], send: Send, *, max_size: int) -> None:
        self.msg_type = msg_type
        self.mapping = field_map(msg_type, fields, max_size)
        self.send = send

    async def __call__(self, update: FirmwareUpdate) -> dict[str, Any]:
        attributes = {name: getattr(update, name) for name in ATTRIBUTES}
        attributes["path"] = str(update.path)
        message = fill_message(self.msg_type, _values(self.mapping, attributes), path="update")
        return await self.send(message, update.progress, update.command_id)
