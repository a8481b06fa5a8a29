"""The operator's side of end-to-end encryption, through the installed `alien` console script.

`alien keys generate --e2e`, `alien tail --decrypt KEYFILE` (plaintext, or "encrypted for another
key", or why a value changed on the way does not open), `alien send-command --encrypt-params` and
`alien sign --encrypt-params`, against a real nats-server and the emulator
(docs/encryption.md#the-operators-side).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from cli_support import ALIEN, _alien, _cli_env, _one_error_line, _wait_for_subscriber

from alien import AlienClient, AlienConfig
from alien.e2e import Opener, Sealer, context, generate_keypair, is_sealed
from alien.e2e.keys import private_key
from alien.signing import generate_keypair as generate_signing_keypair
from alien.signing import verify

_TAG = os.urandom(4).hex()
CAMERA = {"faces": 2, "label": f"camera-{_TAG}"}
DOOR = {"door": 7, "who": f"door-{_TAG}"}


def _keys(tmp_path: Path, name: str) -> tuple[Path, str]:
    """`alien keys generate --e2e --out <name>`: (the seed file, the public key)."""
    run = subprocess.run(
        [str(ALIEN), "keys", "generate", "--e2e", "--out", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return tmp_path / name, run.stdout.strip()


def test_keys_generate_e2e_writes_a_private_seed_file_and_public_reads_it(tmp_path: Path) -> None:
    def alien(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ALIEN), *argv], cwd=tmp_path, capture_output=True, text=True, check=False)

    generated = alien("keys", "generate", "--e2e")  # default file e2e.xk
    public_key = generated.stdout.strip()
    seed_file = tmp_path / "e2e.xk"
    assert generated.returncode == 0 and "e2e.xk" in generated.stderr and "ALIEN_E2E_RECIPIENTS" in generated.stderr
    assert public_key.startswith("X") and len(public_key) == 56
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    seed = seed_file.read_text().strip()
    assert seed.startswith("SX") and seed not in generated.stdout + generated.stderr
    assert alien("keys", "public", "--seed-file", "e2e.xk").stdout.strip() == public_key
    again = alien("keys", "generate", "--e2e")
    assert again.returncode == 2 and "exists" in _one_error_line(again.stderr)
    assert seed_file.read_text().strip() == seed
    assert alien("keys", "generate").stdout.startswith("O")  # without --e2e: a signing key, as before


async def test_tail_decrypt_shows_plaintext_and_says_encrypted_for_another_key(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    reader_file, reader = _keys(tmp_path, "reader.xk")
    stranger_file, _ = _keys(tmp_path, "stranger.xk")
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(
        emulator, nats_server, e2e_telemetry_keys=["camera"], e2e_events=["door_opened"], e2e_recipients=[reader]
    )
    async with AlienClient(config) as client:
        org_id, entity_id = client.config.org_id, client.config.entity_id
        assert org_id and entity_id
        env = _cli_env(emulator, nats_server.url, tmp_path / "cli", ALIEN_ORG_ID=org_id)
        follow = ("tail", "--entity-id", entity_id, "--count", "2", "--timeout", "30")
        tails = [
            asyncio.create_task(_alien(*follow, "--json", "--decrypt", str(reader_file), env=env, cwd=tmp_path)),
            asyncio.create_task(_alien(*follow, "--json", "--decrypt", str(stranger_file), env=env, cwd=tmp_path)),
            asyncio.create_task(_alien(*follow, "--decrypt", str(stranger_file), env=env, cwd=tmp_path)),
            asyncio.create_task(_alien(*follow, env=env, cwd=tmp_path)),
            asyncio.create_task(
                _alien(*follow, "--decrypt", str(stranger_file), "--decrypt", str(reader_file), env=env, cwd=tmp_path)
            ),
        ]
        await _wait_for_subscriber(nats_server, "alien-tail", 2, clients=len(tails), timeout=60)
        await client.publish_telemetry({"position": {"latitude": 47.5, "longitude": 8.5}, "camera": CAMERA})
        await client.publish_event("door_opened", DOOR)
        results = await asyncio.gather(*tails)
    for code, _, err in results:
        assert (code, err) == (0, "")
    ours, theirs, theirs_pretty, no_key_pretty, rotated_pretty = (out for _, out, _ in results)

    lines = {line["kind"]: line for line in map(json.loads, ours.splitlines())}
    assert lines["telemetry"]["payload"]["data"] == {"position": {"latitude": 47.5, "longitude": 8.5}, "camera": CAMERA}
    assert lines["telemetry"]["decryption"] == {"data.camera": "decrypted"}
    assert lines["event"]["payload"]["data"] == DOOR and lines["event"]["decryption"] == {"data": "decrypted"}

    lines = {line["kind"]: line for line in map(json.loads, theirs.splitlines())}
    assert is_sealed(lines["telemetry"]["payload"]["data"]["camera"])  # left as it came
    note = lines["telemetry"]["decryption"]["data.camera"]
    assert note.startswith(f"encrypted for another key ({reader[:12]}...), not for ")
    assert lines["event"]["decryption"]["data"].startswith("encrypted for another key")

    assert (
        "camera=<encrypted for another key>" in theirs_pretty
        and "door_opened data=<encrypted for another key>" in theirs_pretty
    )
    assert f"camera=<encrypted for {reader[:12]}...>" in no_key_pretty
    assert (
        json.dumps(CAMERA, separators=(",", ":")) in rotated_pretty and "door=7" in rotated_pretty
    )  # old and new keys
    for out in (theirs, theirs_pretty, no_key_pretty):
        assert CAMERA["label"] not in out and DOOR["who"] not in out


async def test_tail_decrypt_says_why_a_value_changed_on_the_way_does_not_open_and_goes_on(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    """A robot's real reading, then copies of it changed between the robot and the operator."""
    reader_file, reader = _keys(tmp_path, "reader.xk")
    _, stranger = _keys(tmp_path, "stranger.xk")
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(emulator, nats_server, e2e_telemetry_keys=["camera", "payload"], e2e_recipients=[reader])
    wire: list[Any] = []
    async with AlienClient(config) as client:
        org_id, entity_id = client.config.org_id, client.config.entity_id
        assert org_id and entity_id
        subject = f"constellation.telemetry.{org_id}.{entity_id}"
        nc = await nats.connect(nats_server.url)

        async def keep(msg: Any) -> None:
            wire.append(msg)

        await nc.subscribe(subject, cb=keep)
        await nc.flush()
        env = _cli_env(emulator, nats_server.url, tmp_path / "cli", ALIEN_ORG_ID=org_id)
        follow = ("tail", "--entity-id", entity_id, "--count", "6", "--timeout", "30", "--decrypt", str(reader_file))
        tails = [
            asyncio.create_task(_alien(*follow, "--json", env=env, cwd=tmp_path)),
            asyncio.create_task(_alien(*follow, env=env, cwd=tmp_path)),
        ]
        await _wait_for_subscriber(nats_server, "alien-tail", 2, clients=len(tails), timeout=60)
        await client.publish_telemetry({"camera": CAMERA, "variant": "as sent"})
        assert await client.flush(10)
        deadline = asyncio.get_running_loop().time() + 10
        while not wire:  # bounded poll: the robot's reading as the server side relays it
            assert asyncio.get_running_loop().time() < deadline, "the reading never reached the subject"
            await asyncio.sleep(0.02)
        reading = json.loads(wire[0].data)
        box = reading["data"]["camera"]
        ct = box["ct"]
        flipped = ("B" if ct[0] != "B" else "C") + ct[1:]
        stranger_box = Sealer([stranger]).seal(CAMERA, context("telemetry", entity_id, "camera"))
        variants = {
            "ciphertext changed": {"camera": {**box, "ct": flipped}},
            "unknown key id": {"camera": {**box, "to": [{**box["to"][0], "kid": "XUNKNOWNKEYID"}]}},
            "wrong key": {"camera": {**stranger_box, "to": [{**stranger_box["to"][0], "kid": reader}]}},
            "moved to another key": {"payload": box},
            "another algorithm": {"camera": {**box, "alg": "rot13"}},
        }
        for variant, values in variants.items():
            changed = {**reading, "data": {**values, "variant": variant}}
            await nc.publish(subject, json.dumps(changed).encode())
        await nc.flush()
        (code, out, err), (pretty_code, pretty, pretty_err) = await asyncio.gather(*tails)
        await nc.close()
    assert (code, err, pretty_code, pretty_err) == (0, "", 0, "")  # every line shown, nothing crashed
    lines = {line["payload"]["data"]["variant"]: line for line in map(json.loads, out.splitlines())}
    assert lines["as sent"]["decryption"] == {"data.camera": "decrypted"}
    assert lines["as sent"]["payload"]["data"]["camera"] == CAMERA
    notes = {variant: lines[variant]["decryption"] for variant in variants}
    assert notes["ciphertext changed"]["data.camera"].startswith("cannot decrypt (authentication_failed): ")
    assert notes["unknown key id"]["data.camera"].startswith("encrypted for another key (XUNKNOWNKEYI")
    wrong_key = notes["wrong key"]["data.camera"]
    assert wrong_key.startswith("cannot decrypt (authentication_failed): ")
    assert f"sealed for {reader[:12]}... does not open with that key" in wrong_key
    moved = notes["moved to another key"]["data.payload"]
    assert moved.startswith("cannot decrypt (authentication_failed): ") and "another field" in moved
    assert notes["another algorithm"]["data.camera"].startswith("cannot decrypt (unsupported_algorithm): ")
    for variant in variants:  # left as it came, never shown in clear
        assert is_sealed(next(iter(lines[variant]["payload"]["data"].values())))
    shown = pretty.splitlines()
    assert len(shown) == 6 and sum("camera=<cannot decrypt (authentication_failed)>" in s for s in shown) == 2
    assert sum("payload=<cannot decrypt (authentication_failed)>" in s for s in shown) == 1
    assert sum("camera=<encrypted for another key>" in s for s in shown) == 1
    assert sum(CAMERA["label"] in s for s in shown) == 1  # the reading as sent, and only it


async def test_send_command_encrypt_params_reaches_the_handler_and_the_wire_only_sees_ciphertext(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], tmp_path: Path
) -> None:
    device_file, device = _keys(tmp_path, "device.xk")
    _, other_device = _keys(tmp_path, "other.xk")
    signer = generate_signing_keypair()
    (tmp_path / "operator.nk").write_text(signer.seed + "\n")
    emulator = make_emulator(dialect="v0.0.1")
    config = make_config(
        emulator,
        nats_server,
        e2e_device_seed_file=device_file,
        e2e_command_types=["set_geofence"],
        command_trusted_keys=[signer.public_key],
        command_critical_types=["set_geofence"],
    )
    calls: list[dict[str, Any]] = []
    wire: list[bytes] = []
    polygon = [[47.37, 8.54], [47.38, 8.55], f"fence-{_TAG}"]
    async with AlienClient(config) as client:
        client.register_command_handler("set_geofence", lambda command: calls.append(command) or {"fenced": True})
        org_id, entity_id = client.config.org_id, client.config.entity_id
        assert org_id and entity_id
        spy = await nats.connect(nats_server.url)

        async def keep(msg: Any) -> None:
            wire.append(msg.data)

        await spy.subscribe(f"constellation.commands.{org_id}.>", cb=keep)
        await spy.flush()
        env = _cli_env(emulator, nats_server.url, tmp_path / "cli", ALIEN_ORG_ID=org_id, ALIEN_ENTITY_ID=entity_id)
        send = ("send-command", "--type", "set_geofence", "--params", json.dumps({"polygon": polygon}))
        signed = ("--seed-file", "operator.nk")
        code, out, err = await _alien(*send, *signed, "--encrypt-params", device, env=env, cwd=tmp_path)
        assert (code, err) == (0, ""), err
        assert [json.loads(line)["event_type"] for line in out.splitlines()] == [
            "command_received",
            "command_completed",
        ]
        assert [call["params"] for call in calls] == [{"polygon": polygon}]
        # sealed to another device's key: the robot cannot open it, and says why
        code, out, err = await _alien(*send, *signed, "--encrypt-params", other_device, env=env, cwd=tmp_path)
        (rejected,) = [json.loads(line) for line in out.splitlines()]
        assert code == 3 and rejected["data"]["reason"] == "decryption_failed"
        assert f"encrypted for another key ({other_device[:12]}...)" in rejected["data"]["detail"]
        # in clear, for a type whose params must be encrypted
        code, out, _ = await _alien(*send, *signed, env=env, cwd=tmp_path)
        assert code == 3 and json.loads(out)["data"]["reason"] == "not_encrypted"
        await spy.close()
    assert len(calls) == 1 and len(wire) == 3
    assert polygon[2].encode() not in wire[0] and polygon[2].encode() not in wire[1] and polygon[2].encode() in wire[2]
    sealed_command = json.loads(wire[0])
    assert is_sealed(sealed_command["params"]) and sealed_command["signature"]["key"] == signer.public_key


def test_sign_encrypt_params_seals_before_signing(tmp_path: Path) -> None:
    device = generate_keypair()
    signer = generate_signing_keypair()
    (tmp_path / "operator.nk").write_text(signer.seed)
    run = subprocess.run(
        [
            str(ALIEN),
            "sign",
            "--seed-file",
            "operator.nk",
            "--entity-id",
            "e-9",
            "--type",
            "arm",
            "--params",
            '{"code": 1234}',
            "--encrypt-params",
            device.public_key,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    command = json.loads(run.stdout)
    assert verify(command, "e-9", [signer.public_key]) == signer.public_key  # the signature covers the sealed params
    opened = Opener([private_key(device.seed)]).open(command["params"], context("params", "e-9", "arm"))
    assert opened == {"code": 1234} and "1234" not in json.dumps(command["params"])


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("tail", "--org-id", "o", "--decrypt", "missing.xk"), "cannot read missing.xk"),
        (
            ("tail", "--org-id", "o", "--decrypt", "operator.nk"),
            "operator.nk, line 1: an operator (command-signing) seed",
        ),
        (("tail", "--org-id", "o", "--decrypt", "empty.xk"), "empty.xk holds no seed"),
        (
            ("send-command", "--type", "t", "--encrypt-params", "<device seed>"),
            "a seed (S...) was given where a public key",
        ),
        (
            (
                "sign",
                "--entity-id",
                "e",
                "--seed-file",
                "operator.nk",
                "--type",
                "t",
                "--encrypt-params",
                "<signer public>",
            ),
            "operator (command-signing) key",
        ),
    ],
)
def test_bad_keys_are_one_line_exit_2_and_never_echo_a_seed(argv: tuple[str, ...], words: str, tmp_path: Path) -> None:
    signer, device = generate_signing_keypair(), generate_keypair()
    (tmp_path / "operator.nk").write_text(signer.seed)
    (tmp_path / "empty.xk").write_text("\n")
    values = {"<device seed>": device.seed, "<signer public>": signer.public_key}
    run = subprocess.run(
        [str(ALIEN), *(values.get(a, a) for a in argv)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 2
    line = _one_error_line(run.stderr)
    assert words in line, line
    assert signer.seed not in run.stderr + run.stdout and device.seed not in run.stderr + run.stdout
