"""Command params encrypted to the device's key, opened before the command is validated and run.

The signature (alien/signing.py) covers the params as they were sent, sealed; once it passed,
sealed params are opened here under their context (this entity, the command's type), so params
sealed for one command type or entity cannot be moved to another. A command whose params do not
open is rejected (`decryption_failed`), as is a command of a type in ALIEN_E2E_COMMAND_TYPES whose
params came in clear (`not_encrypted`). Texts a handler or a params check writes about opened
params (`bad_params` details, `command_failed` errors) may quote them: they go to the server
`withheld`, and whole only into the device's own log. See docs/encryption.md#command-params.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from alien.commands.envelope import Command, CommandRejected
from alien.config import AlienConfig
from alien.e2e.sealed import E2EError, Opener, context, is_sealed
from alien.settings import device_opener

WITHHELD = "withheld: the command's params were encrypted (the device's log has the detail)"


def withheld(command: Command, text: str) -> str:
    """`text` about `command`, or WITHHELD where it may quote params that were encrypted."""
    return WITHHELD if command.sealed_params else text


class ParamsOpener:
    """Opens sealed params for one entity, and refuses clear params of the types that must be sealed."""

    def __init__(
        self, opener: Opener | None, entity_id: Callable[[], str | None], required_types: Iterable[str] = ()
    ) -> None:
        self.opener = opener
        self._entity_id = entity_id
        self.required_types = frozenset(t.casefold() for t in required_types)

    @classmethod
    def from_config(cls, config: AlienConfig) -> ParamsOpener:
        """ConfigError names ALIEN_E2E_DEVICE_SEED(_FILE) when the key cannot be read."""
        return cls(device_opener(config), lambda: config.entity_id, config.e2e_command_types)

    def open(self, command: Command) -> Command | CommandRejected:
        """`command` with its params opened; a rejection saying why they cannot be; `command` when clear."""

        def reject(reason: str, detail: str) -> CommandRejected:
            return CommandRejected(reason, detail, command_id=command.command_id, type_=command.type)

        if not is_sealed(command.params):
            if command.type.casefold() in self.required_types:
                return reject(
                    "not_encrypted",
                    f"params of {command.type!r} must be encrypted to this device's key (ALIEN_E2E_COMMAND_TYPES)",
                )
            return command
        if self.opener is None:
            return reject(
                "decryption_failed", "the params are encrypted, but this device has no key (ALIEN_E2E_DEVICE_SEED_FILE)"
            )
        try:
            params = self.opener.open(command.params, context("params", self._entity_id() or "", command.type))
        except E2EError as exc:
            return reject("decryption_failed", f"the params do not decrypt: {exc.detail}")
        if not isinstance(params, dict):
            return reject("decryption_failed", f"the decrypted params are a {type(params).__name__}, not a JSON object")
        raw = {**command.raw, "params": params}
        return dataclasses.replace(command, params=params, raw=raw, sealed_params=True)
