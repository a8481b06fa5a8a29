"""Secrets hygiene of end-to-end encryption: its seeds, and what they protect, leak nowhere.

The scanner of secrets_support looks for the device's and the operators' seeds (also their raw
private keys, as base64 and hex) and for the plaintexts of the sealed telemetry, event and
command params, raw and in every encoding, in everything captured at DEBUG (log records, stdout,
stderr, exceptions, reprs) and in every file under tmp_path (outbox SQLite, identity) but the
seed files the test wrote: the configuration and its errors, a client flow with the seed inline
and as a file (telemetry, an event and commands, one that does not decrypt), and `alien -v tail
--decrypt` and `alien -v send-command --encrypt-params` as subprocesses (docs/encryption.md#keys).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import nats
import pytest
import secrets_support
from cli_support import _alien, _cli_env, _wait_for_subscriber
from secrets_support import _TAG, WAIT_S, Capture, Scanner, _base

from alien import AlienClient, AlienConfig
from alien.e2e import Sealer, context, generate_keypair
from alien.e2e.keys import private_key
from alien.errors import ConfigError
from alien.logs import get_logger
from alien.settings import device_opener, field_sealer
from alien.signing import generate_keypair as generate_signing_keypair

capture = secrets_support.capture  # a fixture of secrets_support, used here by name
clients = secrets_support.clients

CAMERA = f"SECRET-camera-plaintext-{_TAG}"
DOOR = f"SECRET-door-plaintext-{_TAG}"
FENCE = f"SECRET-fence-plaintext-{_TAG}"


def _keys(scanner: Scanner, name: str) -> Any:
    """A key pair whose seed and raw private key the scanner looks for."""
    pair = generate_keypair()
    scanner.add(f"{name} seed", pair.seed)
    raw = bytes(private_key(pair.seed))
    scanner.add(f"{name} private key (hex)", raw.hex())
    scanner.add(f"{name} private key (base64)", base64.b64encode(raw).decode().rstrip("="))
    scanner.add(f"{name} private key (base64url)", base64.urlsafe_b64encode(raw).decode().rstrip("="))
    return pair


def _setter(event: asyncio.Event) -> Any:
    return lambda command: event.set()


def _seed_file(capture: Capture, path: Path, seed: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(seed + "\n")
    path.chmod(0o600)
    capture.written.append(path)  # where the user put it: the one place it may be
    return path


def test_e2e_settings_and_their_errors_leak_no_seed(
    capture: Capture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = _keys(capture.scanner, "device")
    operator = _keys(capture.scanner, "operator")
    signing_seed = capture.scanner.add("signing seed", generate_signing_keypair().seed)
    get_logger("alien.test").debug("e2e settings")
    inline = AlienConfig(e2e_device_seed=device.seed, e2e_recipients=[operator.public_key], e2e_events=["door"])
    monkeypatch.setenv("ALIEN_E2E_DEVICE_SEED", device.seed)
    from_env = AlienConfig(e2e_command_types=["arm"])
    assert from_env.e2e_device_seed is not None and from_env.e2e_device_seed.get_secret_value() == device.seed
    monkeypatch.delenv("ALIEN_E2E_DEVICE_SEED")
    from_file = AlienConfig(e2e_device_seed_file=_seed_file(capture, tmp_path / "keys" / "device.xk", device.seed))
    for config in (inline, from_env, from_file):
        capture.show("config", config, config.model_dump(), config.model_dump_json(), config.model_dump(mode="json"))
        capture.show("what the settings build", device_opener(config), field_sealer(config), vars(config))
    capture.show("key pairs", device, operator, [device, operator])
    # a seed where it does not belong, or of the wrong type: the error names the setting, never the value
    for values in (
        {"e2e_device_seed": [device.seed]},
        {"e2e_device_seed": {"seed": device.seed}},
        {"e2e_recipients": [operator.seed]},
        {"e2e_recipients": operator.seed},
        {"e2e_telemetry_keys": ["position"], "e2e_recipients": [device.seed]},
        {"e2e_device_seed": device.seed, "e2e_device_seed_file": "x.xk"},
    ):
        with pytest.raises(ConfigError) as raised:
            AlienConfig(**values)  # type: ignore[arg-type]
        capture.show(f"ConfigError for {sorted(values)}", raised.value)
    wrong_file = _seed_file(capture, tmp_path / "keys" / "operator.nk", signing_seed)
    for values in ({"e2e_device_seed": signing_seed}, {"e2e_device_seed_file": wrong_file}):
        with pytest.raises(ConfigError) as raised:
            AlienClient(AlienConfig(**values))  # type: ignore[arg-type]
        capture.show("ConfigError building the client", raised.value)
    with pytest.raises(ConfigError) as raised:
        AlienConfig().derive(e2e_device_seed=[device.seed])
    capture.show("derive error", raised.value)
    capture.check()


async def test_e2e_flows_leak_no_seed_and_no_plaintext(
    capture: Capture, clients: list[AlienClient], make_emulator: Any, nats_server: Any, tmp_path: Path
) -> None:
    scanner = capture.scanner
    device = _keys(scanner, "device")
    operator = _keys(scanner, "operator")
    for name, value in (("camera", CAMERA), ("door", DOOR), ("fence", FENCE)):
        scanner.add(f"{name} plaintext", value)
    emulator = make_emulator(dialect="v0.0.1")
    seed_file = _seed_file(capture, tmp_path / "keys" / "device.xk", device.seed)
    e2e = {
        "e2e_telemetry_keys": ["camera"],
        "e2e_events": ["door_opened"],
        "e2e_recipients": [operator.public_key],
        "e2e_command_types": ["set_geofence"],
    }
    for flow, key in (("inline", {"e2e_device_seed": device.seed}), ("file", {"e2e_device_seed_file": seed_file})):
        base = _base(tmp_path / flow, mothership_url=emulator.url, nats_url=nats_server.url, entity_type="rover")
        client = AlienClient(AlienConfig(**base, **e2e, **key))
        clients.append(client)
        fenced = asyncio.Event()
        client.register_command_handler("set_geofence", _setter(fenced))
        await asyncio.wait_for(client.initialize(), WAIT_S)
        org_id, entity_id = client.config.org_id, client.config.entity_id
        assert org_id and entity_id
        await client.publish_telemetry({"camera": {"frame": CAMERA}, "speed": 2})
        await client.publish_event("door_opened", {"who": DOOR})
        c2 = await nats.connect(nats_server.url)
        try:
            subject = f"constellation.commands.{org_id}.{entity_id}"
            aad = context("params", entity_id, "set_geofence")
            params = Sealer([device.public_key]).seal({"polygon": [FENCE]}, aad)
            for command_id, sealed in (
                (f"bad-{flow}", {**params, "ct": "A" + params["ct"][1:]}),
                (f"ok-{flow}", params),
            ):
                command = {"type": "set_geofence", "command_id": command_id, "params": sealed}
                await c2.publish(subject, json.dumps(command).encode())
            await c2.flush()
            await asyncio.wait_for(fenced.wait(), WAIT_S)
        finally:
            await c2.close()
        assert client.command_counts.get("rejected.decryption_failed") == 1
        assert await client.flush(WAIT_S)
        capture.show(f"{flow}: client internals", client.config, client.composer.sealer, client.stats(), client.link)
        await client.close(timeout=3)
        clients.remove(client)
    for message in [*emulator.telemetry(), *emulator.events(), *emulator.commands()]:
        scanner.scan_bytes(f"the server's record of {message.subject}", message.data)
    capture.check()


async def test_the_operator_cli_leaks_no_seed(
    make_emulator: Any, nats_server: Any, tmp_path: Path, clients: list[AlienClient]
) -> None:
    """`alien -v tail --decrypt` (DEBUG on) shows plaintext on stdout by design, never a seed anywhere."""
    scanner = Scanner()
    operator, device = _keys(scanner, "operator"), _keys(scanner, "device")
    (tmp_path / "operator.xk").write_text(operator.seed)
    (tmp_path / "device.xk").write_text(device.seed)
    emulator = make_emulator(dialect="v0.0.1")
    config = AlienConfig(
        **_base(tmp_path / "robot", mothership_url=emulator.url, nats_url=nats_server.url),
        e2e_telemetry_keys=["camera"],
        e2e_recipients=[operator.public_key],
        e2e_device_seed_file=tmp_path / "device.xk",
    )
    client = AlienClient(config)
    clients.append(client)
    await asyncio.wait_for(client.initialize(), WAIT_S)
    org_id, entity_id = client.config.org_id, client.config.entity_id
    assert org_id and entity_id
    env = _cli_env(emulator, nats_server.url, tmp_path / "cli", ALIEN_ORG_ID=org_id, ALIEN_ENTITY_ID=entity_id)
    tail = asyncio.create_task(
        _alien("-v", "tail", "--decrypt", "operator.xk", "--count", "1", "--timeout", "30", env=env, cwd=tmp_path)
    )
    await _wait_for_subscriber(nats_server, "alien-tail", 2, timeout=60)
    await client.publish_telemetry({"camera": {"frame": CAMERA}})
    code, out, err = await tail
    assert code == 0 and CAMERA in out  # decrypted for the operator
    send = ("-v", "send-command", "--type", "ping", "--encrypt-params", device.public_key, "--timeout", "5")
    sent = await _alien(*send, "--params", json.dumps({"x": FENCE}), env=env, cwd=tmp_path)
    bad = await _alien("-v", "tail", "--decrypt", "device.xk", "--decrypt", str(os.devnull), env=env, cwd=tmp_path)
    assert bad[0] == 2
    for where, text in (("tail", out + err), ("send-command", sent[1] + sent[2]), ("bad tail", bad[1] + bad[2])):
        scanner.scan_text(where, text)
    assert not scanner.findings, "secrets leaked:\n" + "\n".join(scanner.findings)
