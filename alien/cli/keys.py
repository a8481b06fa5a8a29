"""`alien keys generate|public`: signing key pairs (alien/signing.py); with --e2e, encryption ones (alien/e2e)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alien.cli.common import EXIT_OK, UsageError
from alien.cli.encryption import generate_e2e_keys, write_new_file
from alien.e2e.keys import SEED_PREFIX as E2E_SEED_PREFIX
from alien.e2e.keys import E2EKeyError
from alien.e2e.keys import public_key_of as e2e_public_key_of
from alien.signing import SigningKeyError, generate_keypair, public_key_of


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="command-signing and encryption key pairs").add_subparsers(
        dest="keys_command", required=True
    )
    generate = keys.add_parser("generate", help="a new operator key pair (--e2e: encryption); prints the public key")
    generate.add_argument(
        "--out", type=Path, help="seed file (mode 0600, kept if present; default operator.nk, with --e2e e2e.xk)"
    )
    generate.add_argument("--e2e", action="store_true", help="an end-to-end encryption key pair (X... / SX...)")
    generate.set_defaults(run=_generate)
    public = keys.add_parser("public", help="print the public key of a seed file")
    public.add_argument("--seed-file", type=Path, required=True, help="operator (SO...) or encryption (SX...) seed")
    public.set_defaults(run=lambda args: print_public_key(args.seed_file))


def _generate(args: argparse.Namespace) -> int:
    if args.e2e:
        return generate_e2e_keys(args.out or Path("e2e.xk"))
    return generate_keys(args.out or Path("operator.nk"))


def generate_keys(out: Path) -> int:
    pair = generate_keypair()
    write_new_file(out, pair.seed + "\n")
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
    seed = read_seed(seed_file)
    try:
        print(e2e_public_key_of(seed) if seed.startswith(E2E_SEED_PREFIX) else public_key_of(seed))
    except (SigningKeyError, E2EKeyError) as exc:
        raise UsageError(f"{seed_file}: {exc}") from None
    return EXIT_OK
