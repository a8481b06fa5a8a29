"""The operator's side of end-to-end encryption: key files, `tail --decrypt`, `--encrypt-params`.

See docs/encryption.md. Key files hold one seed (`SX...`) per line; errors name the file and
never quote a key.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from alien.cli.common import EXIT_OK, UsageError
from alien.e2e.keys import E2EKeyError, check_public_key, generate_keypair, private_key, short
from alien.e2e.sealed import FOR_ANOTHER_KEY, E2EError, Opener, Sealer, context, is_sealed

DECRYPTED = "decrypted"
NOT_DECRYPTED = "encrypted (alien tail --decrypt KEYFILE shows it)"


def generate_e2e_keys(out: Path) -> int:
    """`alien keys generate --e2e`: a seed file (mode 0600, never overwritten); prints the public key."""
    pair = generate_keypair()
    write_new_file(out, pair.seed + "\n")
    print(pair.public_key)
    print(
        f"alien: seed written to {out} (mode 0600). An operator's key: its public key goes in the robots' "
        "ALIEN_E2E_RECIPIENTS, the file to `alien tail --decrypt`. A robot's key: the file is its "
        "ALIEN_E2E_DEVICE_SEED_FILE, the public key goes to `alien send-command --encrypt-params`",
        file=sys.stderr,
    )
    return EXIT_OK


def write_new_file(path: Path, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists and is never overwritten; choose another --out") from None
    except OSError as exc:
        raise UsageError(f"cannot create {path} ({exc.strerror}); choose another --out") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def public_key_argument(text: str) -> str:
    """Argparse type of --encrypt-params: the device's public key (X...)."""
    try:
        return check_public_key(text)
    except E2EKeyError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (the device's public key, from `alien keys public`)") from None


def seal_params(command: dict[str, Any], device_key: str | None, entity_id: str) -> dict[str, Any]:
    """`command` with its params sealed to `device_key` for `entity_id` and its type (before it is signed)."""
    if device_key is None:
        return command
    aad = context("params", entity_id, command["type"])
    return {**command, "params": Sealer([device_key]).seal(command.get("params", {}), aad)}


def read_opener(paths: list[Path], option: str = "--decrypt") -> Opener:
    """An opener with the seed of every file (one per line); UsageError names a file that holds none."""
    keys = []
    for path in paths:
        try:
            lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise UsageError(f"cannot read {path} ({exc.strerror}); check {option}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not a seed file (not text); check {option}") from None
        if not lines:
            raise UsageError(f"{path} holds no seed; check {option}")
        for number, line in enumerate(lines, 1):
            try:
                keys.append(private_key(line))
            except E2EKeyError as exc:
                raise UsageError(f"{path}, line {number}: {exc}; check {option}") from None
    return Opener(keys)


class Decryption:
    """What `alien tail` does to a payload: sealed values opened with --decrypt keys, or said why they cannot be."""

    def __init__(self, opener: Opener | None) -> None:
        self.opener = opener

    def payload(self, subject: str, entity: str | None, payload: Any) -> tuple[Any, dict[str, str]]:
        """(the payload with what could be opened in clear, {path: "decrypted" or why it is not}).

        Paths: `data` (an event's whole data) or `data.<key>` (one value of a reading). Sealed are
        a reading's values (seed `data`, or a MAVLink format's `telemetry` event) or an event's
        whole `data` (docs/encryption.md#format).
        """
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
            return payload, {}
        data: dict[str, Any] = payload["data"]
        entity_id = entity or ""
        if is_sealed(data):
            event_type = str(payload.get("event_type") or subject.rsplit(".", 1)[-1])
            opened, note = self._open(data, context("event", entity_id, event_type))
            return {**payload, "data": opened}, {"data": note}
        notes: dict[str, str] = {}
        clear = dict(data)
        for key, value in data.items():
            if is_sealed(value):
                clear[key], notes[f"data.{key}"] = self._open(value, context("telemetry", entity_id, key))
        return ({**payload, "data": clear}, notes) if notes else (payload, notes)

    def _open(self, value: Any, aad: bytes) -> tuple[Any, str]:
        if self.opener is None:
            return value, NOT_DECRYPTED
        try:
            return self.opener.open(value, aad), DECRYPTED
        except E2EError as exc:
            if exc.reason == "not_for_us":  # the detail says so, naming the keys
                return value, exc.detail
            return value, f"cannot decrypt ({exc.reason}): {exc.detail}"

    @staticmethod
    def on_screen(payload: Any, notes: dict[str, str]) -> Any:
        """The payload for a one-line summary: each value still sealed as a short `<...>` word."""
        if not notes:
            return payload
        data = payload["data"]
        if "data" in notes:  # an event's whole data
            note = notes["data"]
            return payload if note == DECRYPTED else {**payload, "data": {"data": _word(data, note)}}
        words = {path[5:]: _word(data[path[5:]], note) for path, note in notes.items()}
        return {**payload, "data": {**data, **words}}


def _word(value: Any, note: str) -> Any:
    if note == DECRYPTED:
        return value
    if note == NOT_DECRYPTED:
        readers = [entry.get("kid") for entry in value.get("to") or [] if isinstance(entry, dict)]
        named = ", ".join(short(kid) for kid in readers[:4] if isinstance(kid, str))
        return f"<encrypted for {named}>" if named else "<encrypted>"
    if note.startswith(FOR_ANOTHER_KEY):
        return f"<{FOR_ANOTHER_KEY}>"
    return f"<{note.split(':', 1)[0]}>"
