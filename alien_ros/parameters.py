"""The bridge node's parameters: declared with descriptors, read once, defaults logged once.

Connection settings left unset fall through to the environment / `.env` / AlienConfig defaults,
so each setting has one meaning everywhere; a parameter that is set wins over the environment.
Secrets (tokens, API keys, passwords, NKey seeds) are not parameters: parameters are readable by
anyone on the ROS graph (`ros2 param get`), so secrets come from the environment, `.env` or
files (`nats_nkey_seed_file`, `nats_creds_file`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from alien.firmware import FIRMWARE_COMMAND
from alien.wire import redact_url
from alien_ros.qos import QOS_CHOICES

# Parameter name -> AlienConfig field. Empty / unset means "environment, .env or default".
CONNECTION_PARAMETERS: dict[str, tuple[str, str]] = {
    "mothership_url": ("mothership_url", "REST API of the mothership (env MOTHERSHIP_URL)"),
    "nats_url": ("nats_url", "NATS server(s), comma-separated (env NATS_URL)"),
    "dialect": ("dialect", "auto | v0.0.1 | v0.1 (env ALIEN_DIALECT)"),
    "org_name": ("org_name", "organization joined by name or created (env ORG_NAME)"),
    "org_type": ("org_type", "military | civilian | commercial | ngo (env ORG_TYPE)"),
    "org_id": ("pinned_org_id", "pin an existing organization (env ALIEN_ORG_ID)"),
    "entity_type": ("entity_type", "drone, robot, rover, sensor, ... or a server enum (env ENTITY_TYPE)"),
    "entity_name": ("entity_name", "entity name shown to operators (env ENTITY_NAME)"),
    "entity_id": ("pinned_entity_id", "pin an existing entity (env ALIEN_ENTITY_ID)"),
    "identity_file": ("config_file", "where the registered ids are saved (env ALIEN_CONFIG_FILE)"),
    "data_dir": ("data_dir", "local state directory (env ALIEN_DATA_DIR)"),
    "command_intake": ("command_intake", "auto | core | jetstream (env ALIEN_COMMAND_INTAKE)"),
    "nats_nkey_seed_file": ("nats_nkey_seed_file", "NKey seed file (env ALIEN_NATS_NKEY_SEED_FILE)"),
    "nats_creds_file": ("nats_creds_file", "NATS .creds file (env ALIEN_NATS_CREDS_FILE)"),
    "nats_tls_ca": ("nats_tls_ca", "CA to verify the NATS server (env ALIEN_NATS_TLS_CA)"),
    "nats_tls_cert": ("nats_tls_cert", "NATS client certificate (env ALIEN_NATS_TLS_CERT)"),
    "nats_tls_key": ("nats_tls_key", "NATS client key (env ALIEN_NATS_TLS_KEY)"),
    "http_tls_ca": ("http_tls_ca", "CA bundle for an HTTPS mothership (env ALIEN_HTTP_TLS_CA)"),
    "telemetry_format": ("telemetry_format", "auto | seed | mavlink | envelope_v1 (env ALIEN_TELEMETRY_FORMAT)"),
    "entity_state": ("entity_state", "auto | on | off: the operator-map KV entry (env ALIEN_ENTITY_STATE)"),
    "device_id": ("device_id", "device_id in bootsequence/shutdown events (env ALIEN_DEVICE_ID)"),
    "video_config": ("video_config", "video streams as a JSON object, v0.1.x servers (env ALIEN_VIDEO_CONFIG)"),
    "metrics_addr": ("metrics_addr", "serve Prometheus metrics on HOST:PORT; unset: off (env ALIEN_METRICS_ADDR)"),
}

# name -> (default, description); the type follows the default.
BRIDGE_PARAMETERS: dict[str, tuple[Any, str]] = {
    "fix_topic": ("fix", "sensor_msgs/NavSatFix input"),
    "battery_topic": ("battery_state", "sensor_msgs/BatteryState input"),
    "diagnostics_topic": ("/diagnostics", "diagnostic_msgs/DiagnosticArray input"),
    "fix.rate_hz": (1.0, "positions sent per second at most (the latest of each period); 0 = every message"),
    "fix.qos": ("auto", "auto | sensor_data | reliable | best_effort"),
    "battery.rate_hz": (1.0, "battery readings sent per second at most; 0 = every message"),
    "battery.qos": ("auto", "auto | sensor_data | reliable | best_effort"),
    "diagnostics.rate_hz": (0.2, "steady-state health sent per second at most; level changes go out at once as events"),
    "diagnostics.qos": ("auto", "auto | sensor_data | reliable | best_effort"),
    "position_deadband_m": (0.0, "skip positions that moved less than this (metres); 0 = off"),
    "position_keepalive_s": (10.0, "with a deadband, still send a position this often"),
    "status_period_s": (1.0, "period of the node's own status on /diagnostics"),
    "shutdown_timeout_s": (5.0, "how long shutdown waits for queued messages to be acknowledged"),
    "mappings": ([""], "names of extra topic mappings; each reads mappings.<name>.{topic,type,key,rate_hz,qos}"),
    "commands": ([""], "command types mapped to ROS; each reads commands.<type>.{kind,type,target,timeout_s,...}"),
    "allow_unmapped_commands": (False, "publish commands of unmapped types as JSON on ~/commands"),
}

COMMAND_FIELDS: dict[str, tuple[Any, str]] = {
    "kind": ("", "topic | service | action"),
    "type": ("", "ROS interface type, e.g. geometry_msgs/msg/Twist, std_srvs/srv/Trigger"),
    "target": ("", "topic, service or action name"),
    "timeout_s": (10.0, "service: answer timeout; action: result timeout"),
    "accept_timeout_s": (5.0, "action: goal acceptance timeout"),
}
# commands.firmware_update.* only: the install hook (docs/bridge.md#firmware-updates)
FIRMWARE_FIELDS: dict[str, tuple[Any, str]] = {
    "fields": (
        [""],
        "firmware_update only: request/goal fields from the verified update, each '<field path>=<path|name|version|"
        "size|sha256|signer|command_id>' (default: every field named like one of these)",
    ),
}
CommandKind = Literal["topic", "service", "action"]
COMMAND_KINDS: tuple[CommandKind, ...] = ("topic", "service", "action")
# periods and timeouts: 0 would mean a timer firing continuously or every command timing out
_MUST_BE_POSITIVE = frozenset({"status_period_s", "shutdown_timeout_s", "timeout_s", "accept_timeout_s"})

MAPPING_FIELDS: dict[str, tuple[Any, str]] = {
    "topic": ("", "ROS topic to subscribe to"),
    "type": ("", "message type, e.g. sensor_msgs/msg/Imu"),
    "key": ("", "telemetry key (default: the mapping name)"),
    "rate_hz": (1.0, "messages sent per second at most; 0 = every message"),
    "qos": ("auto", "auto | sensor_data | reliable | best_effort"),
}


class ParameterError(ValueError):
    """A parameter has a value the bridge cannot use; the message names it."""


@dataclass(frozen=True)
class TopicMapping:
    name: str
    topic: str
    type_name: str
    key: str
    rate_hz: float
    qos: str


@dataclass(frozen=True)
class CommandMapping:
    name: str  # the command type
    kind: CommandKind
    type_name: str
    target: str
    timeout_s: float
    accept_timeout_s: float
    fields: tuple[str, ...] = ()  # firmware_update: '<field path>=<update attribute>' (FIRMWARE_FIELDS)


@dataclass(frozen=True)
class BridgeSettings:
    """The parameters as read once at startup, typed (docs/configuration.md#bridge-parameters).

    One attribute per entry of BRIDGE_PARAMETERS, named after it with `_` for `.`; `mappings` and
    `commands` hold what the names they list configure.
    """

    fix_topic: str
    battery_topic: str
    diagnostics_topic: str
    fix_rate_hz: float
    fix_qos: str
    battery_rate_hz: float
    battery_qos: str
    diagnostics_rate_hz: float
    diagnostics_qos: str
    position_deadband_m: float
    position_keepalive_s: float
    status_period_s: float
    shutdown_timeout_s: float
    mappings: tuple[TopicMapping, ...]
    commands: tuple[CommandMapping, ...]
    allow_unmapped_commands: bool
    # AlienConfig field -> value, for the connection parameters that are set (CONNECTION_PARAMETERS)
    config_overrides: Mapping[str, str]
    # every parameter left unset, in the order declared: log_defaults says each once
    defaulted: tuple[str, ...]


def attribute_name(parameter: str) -> str:
    """The BridgeSettings attribute of a BRIDGE_PARAMETERS entry (`fix.rate_hz` -> `fix_rate_hz`)."""
    return parameter.replace(".", "_")


def declare_and_read(node: Node) -> BridgeSettings:
    """Declare every parameter and read it; which ones were left at their default is kept for log_defaults."""
    defaulted: list[str] = []
    overrides: dict[str, str] = {}
    for name, (config_field, description) in CONNECTION_PARAMETERS.items():
        value = _declare(node, name, "", description, defaulted)
        if value:
            overrides[config_field] = value
    values = {
        name: _declare(node, name, default, description, defaulted)
        for name, (default, description) in BRIDGE_PARAMETERS.items()
    }
    # after every top-level parameter, as the defaulted lines have always been ordered
    mappings = tuple(_mapping(node, name, defaulted) for name in values.pop("mappings") if name)
    commands = tuple(_command(node, name, defaulted) for name in values.pop("commands") if name)
    # a name here that is not an attribute (or the reverse) is a TypeError at every start
    return BridgeSettings(
        **{attribute_name(name): value for name, value in values.items()},
        mappings=mappings,
        commands=commands,
        config_overrides=MappingProxyType(overrides),
        defaulted=tuple(defaulted),
    )


def log_defaults(node: Node, settings: BridgeSettings, effective: dict[str, Any]) -> None:
    """One line per parameter left unset, with the value in force (mqtt_client style).

    `effective` maps AlienConfig fields to their values, so a connection setting shows where
    its value came from instead of an empty string.
    """
    for name in settings.defaulted:
        if name in CONNECTION_PARAMETERS:
            value = effective.get(CONNECTION_PARAMETERS[name][0])
            value = redact_url(value) if isinstance(value, str) and "://" in value else value
            node.get_logger().info(f"parameter '{name}' not set, using the environment / .env / default: {value!r}")
        else:
            node.get_logger().info(f"parameter '{name}' not set, using default {node.get_parameter(name).value!r}")


def _mapping(node: Node, name: str, defaulted: list[str]) -> TopicMapping:
    values = {
        key: _declare(node, f"mappings.{name}.{key}", default, description, defaulted)
        for key, (default, description) in MAPPING_FIELDS.items()
    }
    for required in ("topic", "type"):
        if not values[required]:
            raise ParameterError(f"mappings.{name}.{required} is required for mapping '{name}'")
    return TopicMapping(
        name=name,
        topic=values["topic"],
        type_name=values["type"],
        key=values["key"] or name,
        rate_hz=values["rate_hz"],
        qos=values["qos"],
    )


def _command(node: Node, name: str, defaulted: list[str]) -> CommandMapping:
    values = {
        key: _declare(node, f"commands.{name}.{key}", default, description, defaulted)
        for key, (default, description) in COMMAND_FIELDS.items()
    }
    for required in ("kind", "type", "target"):
        if not values[required]:
            raise ParameterError(f"commands.{name}.{required} is required for command '{name}'")
    if values["kind"] not in COMMAND_KINDS:
        raise ParameterError(f"commands.{name}.kind is {values['kind']!r}; allowed: {', '.join(COMMAND_KINDS)}")
    fields: tuple[str, ...] = ()
    if name == FIRMWARE_COMMAND:
        if values["kind"] == "topic":
            raise ParameterError(
                f"commands.{name}.kind is 'topic'; the install hook is a service or an action (it reports its result)"
            )
        default, description = FIRMWARE_FIELDS["fields"]
        fields = tuple(f for f in _declare(node, f"commands.{name}.fields", default, description, defaulted) if f)
    return CommandMapping(
        name=name,
        kind=values["kind"],
        type_name=values["type"],
        target=values["target"],
        timeout_s=values["timeout_s"],
        accept_timeout_s=values["accept_timeout_s"],
        fields=fields,
    )


def _declare(node: Node, name: str, default: Any, description: str, defaulted: list[str]) -> Any:
    is_float = isinstance(default, float)
    kind = Parameter.Type.from_parameter_value(default)
    # Declared without a value so an unset parameter is distinguishable from one set to the
    # default (mqtt_client's "log every defaulted parameter once"). Floats use dynamic typing
    # because YAML `rate_hz: 1` is an integer.
    descriptor = ParameterDescriptor(description=description, dynamic_typing=is_float)
    try:
        if is_float:
            node.declare_parameter(name, descriptor=descriptor)
        else:
            node.declare_parameter(name, kind, descriptor)
        value = node.get_parameter(name).value
    except ParameterUninitializedException:
        value = None
    except InvalidParameterTypeException as exc:
        raise ParameterError(f"parameter '{name}' must be a {kind.name.lower()}: {exc}") from None
    if value is None:
        defaulted.append(name)
        node.set_parameters([Parameter(name, value=default)])
        return default
    if is_float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"parameter '{name}' must be a number, got {value!r}")
        value = float(value)
        if value < 0 or (value == 0 and name.rsplit(".", 1)[-1] in _MUST_BE_POSITIVE):
            raise ParameterError(
                f"parameter '{name}' must be {'positive' if value == 0 else 'not negative'}, got {value}"
            )
    if name.endswith("qos") and value not in QOS_CHOICES:
        raise ParameterError(f"parameter '{name}' is {value!r}; allowed: {', '.join(QOS_CHOICES)}")
    return value


def refuse_runtime_changes(node: Node) -> None:
    """Parameters are read once at startup; say so instead of silently ignoring a change."""

    def refuse(parameters: list[Parameter]) -> SetParametersResult:
        names = ", ".join(p.name for p in parameters)
        return SetParametersResult(
            successful=False, reason=f"{node.get_name()} reads its parameters at startup; restart it to change {names}"
        )

    node.add_on_set_parameters_callback(refuse)
