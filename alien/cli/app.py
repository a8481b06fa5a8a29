"""The command line itself; `alien.cli.main` imports it (and so the library) on start."""

from __future__ import annotations

import argparse
import logging
from typing import NoReturn

from alien import error_hints
from alien.cli import commands, firmware, keys, metrics, register, simulate, status, tail
from alien.cli.common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliFailure,
    UsageError,
    error_line,
    silence_stdout,
)
from alien.config import AlienConfig
from alien.delivery.outbox_store import OutboxStoreError
from alien.errors import (
    AlienError,
    ConfigError,
    IdentityFileError,
    MothershipProtocolError,
)
from alien.version import __version__

__all__ = ["run"]

_EXIT_CODES = """exit codes:
  0    ok
  1    the mothership or NATS unreachable or refused (register: also with saved ids, then not checked)
       (metrics: the endpoint does not answer)
  2    usage, configuration, identity or key file; a MOTHERSHIP_URL that does not answer HTTP
       (metrics: an answer that is no metrics endpoint)
  3    command rejected (send-command)
  4    command failed (send-command)
  5    timeout (send-command, tail --count, simulate flush)
  130  interrupted (Ctrl-C)"""


class _Parser(argparse.ArgumentParser):
    """A usage error is one line like every other error (argparse would print the usage above it)."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        if len(message) > 240:  # argparse echoes what it did not recognise, whatever its length
            message = message[:239] + "…"
        raise UsageError(message if "; " in message else f"{message}; see `{self.prog} --help`")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="alien",
        description="Alien: connect devices to the mothership. Settings: environment variables and .env.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"alien {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (register, status, commands, tail, simulate, metrics, keys, firmware):
        module.add_parsers(sub)
    return parser


def run(argv: list[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)
    except UsageError as exc:  # main() returns the code, as for every other error
        error_line(str(exc))
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.run(args)
        return code
    except CliFailure as exc:
        error_line(str(exc))
        return exc.code
    except UsageError as exc:
        error_line(str(exc))
        return EXIT_USAGE
    except (ConfigError, IdentityFileError, OutboxStoreError, MothershipProtocolError) as exc:
        error_line(str(exc))  # these name the variable or file and what to do
        return EXIT_USAGE
    except AlienError as exc:
        error_line(f"{exc}{_hint(exc)}")
        return EXIT_ERROR
    except BrokenPipeError:  # `alien ... | head`: the reader left, which is not an error
        silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        error_line("interrupted")
        return EXIT_INTERRUPTED


def _hint(exc: AlienError) -> str:
    """What to do about a mothership or NATS error, where its own message does not say."""
    if "; " in str(exc):
        return ""  # already says what to do
    try:
        config: AlienConfig | None = AlienConfig()
    except ConfigError:
        config = None
    # shared with the bridge: e.g. "ALIEN_API_KEY is not set" when a v0.1 server wants a key
    return error_hints.hint(exc, config) or "; run with -v for details"
