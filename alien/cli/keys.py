"""`alien keys generate|public`: operator key pairs for signed commands (alien/signing.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from alien.cli.common import EXIT_OK, UsageError
from alien.signing import SigningKeyError, generate_keypair, public_key_of


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="command-signing key pairs").add_subparsers(dest="keys_command", required=True)
    generate = keys.add_parser("generate", help="a new operator key pair; prints the public key")
    generate.add_argument(
        "--out", type=Path, default=Path("operator.nk"), help="seed file (mode 0600, kept if present)"
    )
    generate.set_defaults(run=lambda args: generate_keys(args.out))
    public = keys.add_parser("public", help="print the public key of a seed file")
    public.add_argument("--seed-file", type=Path, required=True, help="operator seed file (SO...)")
    public.set_defaults(run=lambda args: print_public_key(args.seed_file))


def generate_keys(out: Path) -> int:
    pair = generate_keypair()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{out} exists and is never overwritten; choose another --out") from None
    except OSError as exc:
        raise UsageError(f"cannot create {out} ({exc.strerror}); choose another --out") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(pair.seed + "\n")
    print(pair.public_key)
    print(f"alien: seed written to {out} (mode 0600); trust the key with ALIEN_COMMAND_TRUSTED_KEYS", file=sys.stderr)
    return EXIT_OK


def read_seed(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the seed file {path} ({exc.strerror}); check --seed-file") from None
    except UnicodeDecodeError:  # a binary file given by mistake
        raise UsageError(f"{path} is not a seed file (not text); check --seed-file") from None


def print_public_key(seed_file: Path) -> int:
    try:
        print(public_key_of(read_seed(seed_file)))
    except SigningKeyError as exc:
        raise UsageError(f"{seed_file}: {exc}") from None
    return EXIT_OK
