"""`alien firmware upload|list`: the operator's side of firmware over the air (docs/firmware.md).

`upload` signs a manifest (name, version, size, SHA-256, targets) with the operator seed that
signs commands and puts the file into the JetStream object store bucket with it, creating the
bucket when missing; `list` shows what the bucket holds and whose signature each manifest
carries. `alien send-command --type firmware_update --params '{"name": ..., "version": ...}'
--seed-file F` then asks an entity to update.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import nats.errors

from alien.cli.common import (
    EXIT_OK,
    CliFailure,
    UsageError,
    connect_nats,
    print_json,
    shown,
    spinning,
    subject_token_arg,
)
from alien.cli.keys import read_seed
from alien.config import AlienConfig
from alien.firmware import bucket as buckets
from alien.firmware import manifest as manifests
from alien.firmware.manifest import FirmwareError
from alien.signing import SigningKeyError

CONNECT_TIMEOUT_S = 10.0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    firmware = sub.add_parser("firmware", help="firmware over the air: upload with a signed manifest, list")
    commands = firmware.add_subparsers(dest="firmware_command", required=True)
    upload = commands.add_parser("upload", help="sign a manifest for FILE and put both into the firmware bucket")
    upload.add_argument("file", type=Path, metavar="FILE", help="the firmware file")
    upload.add_argument("--version", type=_name_arg("--version"), required=True, help="its version, e.g. 1.2.0")
    upload.add_argument("--name", type=_name_arg("--name"), help="firmware name (default: the file's name)")
    upload.add_argument("--seed-file", type=Path, required=True, help="operator seed file (SO...) that signs it")
    upload.add_argument(
        "--entity-id", type=subject_token_arg, action="append", default=[], help="an entity that may install it"
    )
    upload.add_argument(
        "--entity-type", action="append", default=[], help="an entity type that may install it (drone, rover, ...)"
    )
    _bucket_arg(upload)
    upload.set_defaults(run=lambda args: asyncio.run(upload_file(AlienConfig(), args)))
    listing = commands.add_parser("list", help="what the firmware bucket holds")
    _bucket_arg(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=lambda args: asyncio.run(list_bucket(AlienConfig(), args)))


def _bucket_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", type=_bucket_name, help="object store bucket (default: ALIEN_FIRMWARE_BUCKET)")


def _bucket_name(text: str) -> str:
    if not 0 < len(text) <= 64 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in text):
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a bucket name (letters, digits, '_' or '-')")
    return text


def _name_arg(option: str) -> Any:
    def check(text: str) -> str:
        try:
            return manifests.check_name(text, option)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return check


def _signed_manifest(args: argparse.Namespace) -> dict[str, Any]:
    """The manifest of args.file, signed; UsageError for a file, name, target or seed that will not do."""
    name = args.name or args.file.name
    try:
        manifests.check_name(name, "the file's name (give --name)")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not args.entity_id and not args.entity_type:
        raise UsageError("give the entities that may install it: --entity-id E and/or --entity-type T (repeatable)")
    try:
        size, sha256 = buckets.file_facts(args.file)
    except OSError as exc:
        raise UsageError(f"cannot read {args.file} ({exc.strerror or exc}); check FILE") from None
    if size == 0:
        raise UsageError(f"{args.file} is empty: no firmware to upload")
    try:
        document = manifests.build(name, args.version, size, sha256, args.entity_id, args.entity_type)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        return manifests.sign(document, read_seed(args.seed_file))
    except SigningKeyError as exc:
        raise UsageError(f"{args.seed_file}: {exc}") from None


async def upload_file(config: AlienConfig, args: argparse.Namespace) -> int:
    document = _signed_manifest(args)  # before connecting: a refusal is not worth a connection
    bucket = args.bucket or config.firmware_bucket
    link = await connect_nats(config, CONNECT_TIMEOUT_S, "alien-firmware")
    try:
        with spinning(f"uploading {args.file} ({document['size']} bytes) to bucket {bucket}"):
            store = await buckets.open_bucket(link.js, bucket, create=True)
            assert store is not None
            info = await buckets.upload(store, args.file, document)
    except FirmwareError as exc:
        raise CliFailure(exc.detail) from None
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        raise CliFailure(_nats_failure(f"upload to bucket {bucket}", exc)) from None
    finally:
        await link.close(1)
    print_json(
        {
            "bucket": bucket,
            "object": info.name,
            "name": document["name"],
            "version": document["version"],
            "size": document["size"],
            "sha256": document["sha256"],
            "targets": document["targets"],
            "signed_by": document["signature"]["key"],
        }
    )
    return EXIT_OK


async def list_bucket(config: AlienConfig, args: argparse.Namespace) -> int:
    bucket = args.bucket or config.firmware_bucket
    link = await connect_nats(config, CONNECT_TIMEOUT_S, "alien-firmware")
    try:
        with spinning(f"reading bucket {bucket}", enabled=not args.json):
            store = await buckets.open_bucket(link.js, bucket, create=False)
            listed = [] if store is None else await buckets.listing(store)
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        raise CliFailure(_nats_failure(f"list bucket {bucket}", exc)) from None
    finally:
        await link.close(1)
    if store is None and not args.json:
        print(f"no bucket {bucket} on this server yet: `alien firmware upload` creates it")
    for item in listed:
        row = _row(item)
        if args.json:
            print_json(row)
        else:
            print(
                f"{row['name']:<24} {row['version']:<12} {row['size']:>12}  {row['sha256'][:12]:<12}  "
                f"{buckets.targets_text(row)}  signed by {(row['signed_by'] or '-')[:12]} ({row['signature']})"
            )
    return EXIT_OK


def _row(item: buckets.Listed) -> dict[str, Any]:
    document = item.manifest or {}
    return {
        "object": item.object_name,
        "name": document.get("name", item.object_name),
        "version": document.get("version", "-"),
        "size": item.size,
        "sha256": document.get("sha256", "-"),
        "targets": document.get("targets", {}),
        "signed_by": item.signer,
        "signature": "no manifest" if item.manifest is None else "valid" if item.signature_ok else "INVALID",
        "uploaded": item.mtime,
    }


def _nats_failure(what: str, exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (
        f"could not {what} ({type(exc).__name__}: {text}); the NATS user needs the JetStream API and "
        "publish rights on the bucket's subjects (docs/firmware.md#permissions)"
    )
