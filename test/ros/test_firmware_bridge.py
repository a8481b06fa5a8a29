"""firmware_update through a running bridge: the verified file handed to a ROS action or service.

Real rclpy over DDS (the bridge in-process; the install servers in a context and thread of their
own), real nats-server and the emulator's events stream. docs/bridge.md#firmware-updates.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from rclpy.action import ActionServer
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_support import ros_context, spin_until
from std_srvs.srv import Trigger
from test_msgs.action import NestedMessage
from test_msgs.srv import BasicTypes

from alien.firmware import bucket as buckets
from alien.firmware import manifest as manifests
from alien.signing import generate_keypair, sign_command
from alien_ros.bridge_node import BridgeNode
from alien_ros.parameters import ParameterError

OPERATOR = generate_keypair()
FINAL = {"command_completed", "command_failed", "command_rejected"}
ACTION = {
    "commands": ["firmware_update"],
    "commands.firmware_update.kind": "action",
    "commands.firmware_update.type": "test_msgs/action/NestedMessage",
    "commands.firmware_update.target": "install_firmware",
    "commands.firmware_update.fields": ["nested_field.uint64_value=size"],  # its goal has no string field
    "commands.firmware_update.timeout_s": 30.0,
}
SERVICE = {
    "commands": ["firmware_update"],
    "commands.firmware_update.kind": "service",
    "commands.firmware_update.type": "test_msgs/srv/BasicTypes",
    "commands.firmware_update.target": "install_firmware",
    "commands.firmware_update.fields": ["string_value=path", "uint64_value=size"],
}
REFUSING_SERVICE = {
    "commands": ["firmware_update"],
    "commands.firmware_update.kind": "service",
    "commands.firmware_update.type": "std_srvs/srv/Trigger",
    "commands.firmware_update.target": "refuse_firmware",
}


class InstallServer:
    """The robot's installers: an action with feedback, a service that reads the file it is given, one that refuses."""

    def __init__(self) -> None:
        self._context_manager = ros_context()
        context = self._context_manager.__enter__()
        self.node = Node("installer", context=context)
        self.action = ActionServer(self.node, NestedMessage, "install_firmware", self._install)
        self.node.create_service(BasicTypes, "install_firmware", self._read)
        self.node.create_service(Trigger, "refuse_firmware", self._refuse)
        self.executor = MultiThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.sizes: list[int] = []
        self.paths: list[str] = []
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _install(self, goal_handle: Any) -> Any:
        self.sizes.append(goal_handle.request.nested_field.uint64_value)
        for step in (1, 2, 3):
            feedback = NestedMessage.Feedback()
            feedback.nested_field.int32_value = step
            goal_handle.publish_feedback(feedback)
        goal_handle.succeed()
        result = NestedMessage.Result()
        result.nested_field.int32_value = 3
        return result

    def _read(self, request: Any, response: Any) -> Any:
        self.paths.append(request.string_value)
        data = Path(request.string_value).read_bytes()  # the verified file, in place
        response.string_value = hashlib.sha256(data).hexdigest()
        response.uint64_value = len(data)
        return response

    def _refuse(self, request: Any, response: Any) -> Any:
        response.success, response.message = False, "battery too low to flash"
        return response

    def close(self) -> None:
        self.executor.shutdown()
        self.action.destroy()
        self.node.destroy_node()
        self._context_manager.__exit__(None, None, None)
        self.thread.join(timeout=5)


@pytest.fixture
def installer() -> Iterator[InstallServer]:
    server = InstallServer()
    yield server
    server.close()


def _publish_firmware(nats_url: str, path: Path, name: str, version: str) -> str:
    data = hashlib.sha256(path.read_bytes()).hexdigest()
    document = manifests.sign(manifests.build(name, version, path.stat().st_size, data, [], ["robot"]), OPERATOR.seed)

    async def put() -> None:
        nc = await nats.connect(nats_url)
        store = await buckets.open_bucket(nc.jetstream(), "alien_firmware", create=True)
        assert store is not None
        await buckets.upload(store, path, document)
        await nc.close()

    asyncio.run(put())
    return data


def _send(nats_url: str, node: BridgeNode, name: str, version: str, command_id: str) -> None:
    config = node.alien.client.config
    assert config.entity_id
    command = {"type": "firmware_update", "command_id": command_id, "params": {"name": name, "version": version}}
    signed = sign_command(command, OPERATOR.seed, config.entity_id)

    async def send() -> None:
        nc = await nats.connect(nats_url)
        await nc.publish(f"constellation.commands.{config.org_id}.{config.entity_id}", json.dumps(signed).encode())
        await nc.flush()
        await nc.close()

    asyncio.run(send())


def _events(emulator: Any, command_id: str) -> list[dict[str, Any]]:
    ordered = sorted(emulator.events(), key=lambda m: m.stream_seq)
    return [e for e in (m.json() for m in ordered) if (e.get("data") or {}).get("command_id") == command_id]


def _run(ros: dict[str, Any], emulator: Any, nats_url: str, node: BridgeNode, version: str) -> list[dict[str, Any]]:
    command_id = f"fw-{version}"
    _send(nats_url, node, "robot-fw", version, command_id)
    spin_until(
        ros["executor"],
        lambda: any(e["event_type"] in FINAL for e in _events(emulator, command_id)),
        30,
        f"{command_id} to end",
    )
    return _events(emulator, command_id)


@pytest.fixture
def trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bridge trusts the operator's key (from the environment: never a ROS parameter)."""
    monkeypatch.setenv("ALIEN_COMMAND_TRUSTED_KEYS", OPERATOR.public_key)


@pytest.mark.usefixtures("trusting")
def test_the_install_action_gets_the_update_and_its_feedback_is_progress(
    ros: dict[str, Any],
    start_bridge: Any,
    make_emulator: Any,
    nats_server: Any,
    installer: InstallServer,
    tmp_path: Path,
) -> None:
    image = tmp_path / "robot-fw.bin"
    image.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    sha256 = _publish_firmware(nats_server.url, image, "robot-fw", "1.4.0")
    emulator = make_emulator(dialect="v0.0.1")
    node = start_bridge(emulator, **ACTION)
    client = node.router._routes["firmware_update"].client
    spin_until(ros["executor"], client.server_is_ready, 10, "the install action")

    events = _run(ros, emulator, nats_server.url, node, "1.4.0")
    done = events[-1]
    assert done["event_type"] == "command_completed", done
    result = done["data"]["result"]
    assert result["sha256"] == sha256 and result["install"]["status"] == "SUCCEEDED"
    assert installer.sizes == [1024 * 1024]
    progress = [e["data"]["progress"] for e in events if e["event_type"] == "command_progress"]
    assert progress[0]["phase"] == "download"
    # the action's feedback, as install progress (the latest of each period goes out)
    assert progress[-1]["phase"] == "install" and progress[-1]["nested_field"]["int32_value"] == 3


@pytest.mark.usefixtures("trusting")
def test_the_install_service_reads_the_verified_file_at_the_path_it_is_given(
    ros: dict[str, Any],
    start_bridge: Any,
    make_emulator: Any,
    nats_server: Any,
    installer: InstallServer,
    tmp_path: Path,
) -> None:
    image = tmp_path / "robot-fw.bin"
    image.write_bytes(b"\x7fELF" * 100_000)
    sha256 = _publish_firmware(nats_server.url, image, "robot-fw", "1.5.0")
    emulator = make_emulator(dialect="v0.0.1")
    node = start_bridge(emulator, **SERVICE)
    client = node.router._routes["firmware_update"].client
    spin_until(ros["executor"], client.service_is_ready, 10, "the install service")

    done = _run(ros, emulator, nats_server.url, node, "1.5.0")[-1]
    assert done["event_type"] == "command_completed", done
    result = done["data"]["result"]
    assert installer.paths == [result["path"]]
    assert result["install"]["string_value"] == sha256 and result["install"]["uint64_value"] == 400_000


@pytest.mark.usefixtures("trusting")
def test_an_install_service_that_refuses_fails_the_update(
    ros: dict[str, Any],
    start_bridge: Any,
    make_emulator: Any,
    nats_server: Any,
    installer: InstallServer,
    tmp_path: Path,
) -> None:
    image = tmp_path / "robot-fw.bin"
    image.write_bytes(b"\x7fELF" * 1000)
    _publish_firmware(nats_server.url, image, "robot-fw", "1.6.0")
    emulator = make_emulator(dialect="v0.0.1")
    node = start_bridge(emulator, **REFUSING_SERVICE)
    client = node.router._routes["firmware_update"].client
    spin_until(ros["executor"], client.service_is_ready, 10, "the install service")

    failed = _run(ros, emulator, nats_server.url, node, "1.6.0")[-1]
    assert failed["event_type"] == "command_failed"
    assert failed["data"]["reason"] == "install_failed"
    assert "battery too low to flash" in failed["data"]["error"]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (["nested_field.no_such=size"], "no_such"),
        (["nested_field.int64_value=path"], "int64_value"),  # a path is no integer
        (["nested_field.int8_value=size"], "int8_value"),  # a size needs more than 8 bits
        (["nested_field.uint64_value=checksum"], "checksum"),
    ],
)
def test_a_fields_mapping_the_type_cannot_take_stops_the_bridge_at_startup(
    ros: dict[str, Any], make_emulator: Any, nats_server: Any, tmp_path: Path, fields: list[str], named: str
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    values = {
        "mothership_url": emulator.url,
        "nats_url": nats_server.url,
        "identity_file": str(tmp_path / "identity.json"),
        **ACTION,
        "commands.firmware_update.fields": fields,
    }
    with pytest.raises(ParameterError, match=named):
        BridgeNode(context=ros["context"], parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])


def test_a_topic_cannot_be_the_install_hook(ros: dict[str, Any], tmp_path: Path) -> None:
    values = {**SERVICE, "commands.firmware_update.kind": "topic", "identity_file": str(tmp_path / "i.json")}
    with pytest.raises(ParameterError, match="service or an action"):
        BridgeNode(context=ros["context"], parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
