"""Command params encrypted to the device's key, through a real nats-server and the emulator.

The device opens them after the signature check and before validation and dispatch; a command
whose encrypted part does not open is rejected with the reason, reported like any rejection, and
the client goes on (docs/encryption.md#command-params).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest

from alien import AlienClient, AlienConfig
from alien.commands import CommandDispatcher
from alien.commands.sealed_params import WITHHELD, ParamsOpener
from alien.e2e import Opener, Sealer, context, generate_keypair
from alien.e2e.keys import private_key
from alien.signing import generate_keypair as generate_signing_keypair
from alien.signing import sign_command

DEVICE = generate_keypair()
ANOTHER_DEVICE = generate_keypair()
SIGNER = generate_signing_keypair()
_TAG = os.urandom(4).hex()
POLYGON = [[47.37, 8.54], [47.38, 8.55], f"fence-plaintext-{_TAG}"]


def sealed_command(
    command_id: str, entity_id: str, params: Any, *, to: str = DEVICE.public_key, type_: str = "set_geofence"
) -> dict[str, Any]:
    aad = context("params", entity_id, type_)
    return {"type": type_, "command_id": command_id, "params": Sealer([to]).seal(params, aad)}


class Robot:
    """A running client whose handlers record what they got; the C2 talks to it over raw NATS."""

    def __init__(self, client: AlienClient, emulator: Any, c2: Any) -> None:
        self.client, self.emulator, self.c2 = client, emulator, c2
        self.calls: list[dict[str, Any]] = []
        assert client.config.org_id is not None and client.config.entity_id is not None
        self.org_id, self.entity_id = client.config.org_id, client.config.entity_id

    async def send(self, command: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Publish `command`; its final lifecycle event (kind, data)."""
        await self.c2.publish(f"constellation.commands.{self.org_id}.{self.entity_id}", json.dumps(command).encode())
        await self.c2.flush()
        finals = ("command_rejected", "command_completed", "command_failed")
        command_id = command["command_id"]

        def final() -> tuple[str, dict[str, Any]] | None:
            for message in self.emulator.events():
                event = json.loads(message.data)
                if event.get("event_type") in finals and (event.get("data") or {}).get("command_id") == command_id:
                    return event["event_type"], event["data"]
            return None

        await self.emulator.wait_for_async(lambda: final() is not None, 15, f"the end of {command_id}")
        outcome = final()
        assert outcome is not None
        return outcome


@pytest.fixture
async def robot(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> AsyncIterator[Robot]:
    seed_file = tmp_path / "device.xk"
    seed_file.write_text(DEVICE.seed + "\n")
    seed_file.chmod(0o600)
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(
        emulator,
        nats_server,
        entity_type="rover",
        e2e_device_seed_file=seed_file,
        e2e_command_types=["set_geofence"],
        command_trusted_keys=[SIGNER.public_key],
    )
    client = AlienClient(config)
    c2 = None
    try:
        await client.initialize()
        # the C2 connects once the robot listens: a connection older than the subscription lost its
        # first core message in about 1 of 30 runs here (nats-server 2.15.1), whatever the payload
        c2 = await nats.connect(nats_server.url)
        robot = Robot(client, emulator, c2)

        def set_geofence(command: dict[str, Any], context: Any) -> dict[str, Any]:
            robot.calls.append({"raw": command, "context_params": context.params})
            if command["params"].get("fail"):
                raise RuntimeError(f"cannot fence {command['params']['polygon']}")
            return {"fenced": True}

        def check(command: Any) -> None:
            if not isinstance(command.params.get("polygon"), list):
                raise ValueError(f"polygon {command.params.get('polygon')!r} is not a list of points")

        client.register_command_handler("set_geofence", set_geofence, prepare=check)
        client.register_command_handler("ping", lambda command: robot.calls.append({"raw": command}))
        yield robot
    finally:
        await client.close(timeout=3)
        if c2 is not None:
            await c2.close()


async def test_sealed_params_reach_the_handler_in_clear_and_the_server_only_sees_ciphertext(robot: Robot) -> None:
    command = sign_command(
        sealed_command("fence-1", robot.entity_id, {"polygon": POLYGON}), SIGNER.seed, robot.entity_id
    )
    assert await robot.send(command) == (
        "command_completed",
        {"command_id": "fence-1", "type": "set_geofence", "result": {"fenced": True}},
    )
    (call,) = robot.calls
    assert call["raw"]["params"] == call["context_params"] == {"polygon": POLYGON}
    assert call["raw"]["signature"] == command["signature"]  # the command as sent, params opened
    secret = POLYGON[2].encode()
    assert robot.emulator.commands() and all(secret not in m.data for m in robot.emulator.commands())
    assert all(secret not in m.data for m in robot.emulator.events())  # lifecycle events carry no params


@pytest.mark.parametrize(
    ("make", "reason", "words"),
    [
        (  # changed on the way (one character of the ciphertext)
            lambda e: _tampered(sealed_command("c", e, {"polygon": POLYGON})),
            "decryption_failed",
            "the params do not decrypt: the ciphertext does not authenticate",
        ),
        (  # sealed to another device's key: the key ids say so
            lambda e: sealed_command("c", e, {"polygon": POLYGON}, to=ANOTHER_DEVICE.public_key),
            "decryption_failed",
            f"encrypted for another key ({ANOTHER_DEVICE.public_key[:12]}...), not for {DEVICE.public_key[:12]}...",
        ),
        (  # a key id nobody has
            lambda e: _kid(sealed_command("c", e, {"polygon": POLYGON}), "XUNKNOWNKEY"),
            "decryption_failed",
            "encrypted for another key (XUNKNOWNKEY)",
        ),
        (  # sealed for another entity
            lambda e: {**sealed_command("c", "someone-else", {"polygon": POLYGON})},
            "decryption_failed",
            "does not authenticate",
        ),
        (  # sealed params of a harmless type moved into another type
            lambda e: {**sealed_command("c", e, {"polygon": POLYGON}, type_="ping"), "type": "set_geofence"},
            "decryption_failed",
            "does not authenticate",
        ),
        (  # not even a sealed value's shape
            lambda e: {"type": "set_geofence", "command_id": "c", "params": {"alg": "rot13", "ct": "x"}},
            "decryption_failed",
            "algorithm 'rot13' is not",
        ),
        (  # in clear, for a type whose params must be encrypted
            lambda e: {"type": "set_geofence", "command_id": "c", "params": {"polygon": POLYGON}},
            "not_encrypted",
            "params of 'set_geofence' must be encrypted to this device's key (ALIEN_E2E_COMMAND_TYPES)",
        ),
        (  # JSON that is not an object, sealed
            lambda e: sealed_command("c", e, [1, 2]),
            "decryption_failed",
            "the decrypted params are a list, not a JSON object",
        ),
    ],
)
async def test_params_that_do_not_open_are_rejected_with_the_reason_and_the_robot_goes_on(
    robot: Robot, make: Callable[[str], dict[str, Any]], reason: str, words: str
) -> None:
    command = {**make(robot.entity_id), "command_id": f"bad-{reason}"}
    kind, data = await robot.send(command)
    assert (kind, data["reason"]) == ("command_rejected", reason)
    assert words in data["detail"], data["detail"]
    assert robot.calls == []
    assert robot.client.command_counts[f"rejected.{reason}"] == 1
    assert (await robot.send({"type": "ping", "command_id": "after"}))[0] == "command_completed"


async def test_a_signed_command_whose_ciphertext_was_changed_fails_its_signature(robot: Robot) -> None:
    signed = sign_command(sealed_command("s-1", robot.entity_id, {"polygon": POLYGON}), SIGNER.seed, robot.entity_id)
    kind, data = await robot.send(_tampered(signed))
    assert (kind, data["reason"]) == ("command_rejected", "bad_signature")  # the signature covers what was sent
    assert robot.calls == []


async def test_texts_that_may_quote_opened_params_are_withheld_from_the_server(
    robot: Robot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="alien.commands"):
        kind, data = await robot.send(sealed_command("p-1", robot.entity_id, {"polygon": POLYGON[2]}))
        assert (kind, data["reason"], data["detail"]) == ("command_rejected", "bad_params", WITHHELD)
        kind, data = await robot.send(sealed_command("p-2", robot.entity_id, {"polygon": POLYGON, "fail": True}))
        assert (kind, data["error"], data["error_type"]) == ("command_failed", WITHHELD, "RuntimeError")
    secret = POLYGON[2].encode()
    assert all(secret not in m.data for m in robot.emulator.events())
    assert caplog.text.count(POLYGON[2]) >= 2  # whole in the device's own log
    # params that came in clear keep their detail
    kind, data = await robot.send({"type": "ping", "command_id": "p-3", "params": {"x": 1}})
    assert kind == "command_completed"


async def test_a_device_without_a_key_rejects_sealed_params_and_takes_clear_ones() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    calls: list[dict[str, Any]] = []
    dispatcher = CommandDispatcher(
        lambda kind, data: events.append((kind, data)), lambda s, d: None, entity_id=lambda: "e-1"
    )
    dispatcher.register("set_geofence", calls.append)
    dispatcher.dispatch(json.dumps(sealed_command("k-1", "e-1", {"polygon": [1]})).encode())
    dispatcher.dispatch(json.dumps({"type": "set_geofence", "command_id": "k-2", "params": {"polygon": [1]}}).encode())
    await dispatcher.join()
    assert events[0] == (
        "command_rejected",
        {
            "command_id": "k-1",
            "type": "set_geofence",
            "reason": "decryption_failed",
            "detail": "the params are encrypted, but this device has no key (ALIEN_E2E_DEVICE_SEED_FILE)",
        },
    )
    assert [c["command_id"] for c in calls] == ["k-2"]
    # with the key, a sealed command of a required type is opened; the type is matched case-insensitively
    opener = ParamsOpener(Opener([private_key(DEVICE.seed)]), lambda: "e-1", ["SET_GEOFENCE"])
    dispatcher = CommandDispatcher(
        lambda kind, data: events.append((kind, data)), lambda s, d: None, entity_id=lambda: "e-1", params_opener=opener
    )
    dispatcher.register("set_geofence", calls.append)
    dispatcher.dispatch(json.dumps(sealed_command("k-3", "e-1", {"polygon": [2]})).encode())
    dispatcher.dispatch(json.dumps({"type": "set_geofence", "command_id": "k-4", "params": {"polygon": [2]}}).encode())
    await dispatcher.join()
    assert calls[-1]["params"] == {"polygon": [2]} and calls[-1]["command_id"] == "k-3"
    assert ("command_rejected", "not_encrypted") in [
        (k, d.get("reason")) for k, d in events if d["command_id"] == "k-4"
    ]


def _tampered(command: dict[str, Any]) -> dict[str, Any]:
    ct = command["params"]["ct"]
    return {**command, "params": {**command["params"], "ct": ("B" if ct[0] != "B" else "C") + ct[1:]}}


def _kid(command: dict[str, Any], kid: str) -> dict[str, Any]:
    params = command["params"]
    return {**command, "params": {**params, "to": [{**params["to"][0], "kid": kid}]}}
