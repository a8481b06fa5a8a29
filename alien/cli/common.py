"""What every command shares: exit codes, one-line errors, ids, the NATS connection, the spinner."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from alien.config import AlienConfig
from alien.link import NatsLink
from alien.settings import NatsSettings
from alien.untrusted import DETAIL_LIMIT, quoted
from alien.untrusted import shown as printable
from alien.wire import redact_url, subject_token

T = TypeVar("T")

# Exit codes (the same meaning for every command; docs/cli.md).
EXIT_OK = 0
EXIT_ERROR = 1  # the mothership or NATS unreachable or refused (status: something is unreachable)
EXIT_USAGE = 2  # bad arguments, configuration, identity or key file
EXIT_REJECTED = 3  # send-command: the entity rejected the command
EXIT_FAILED = 4  # send-command: the command ran and failed
EXIT_TIMEOUT = 5  # nothing final within --timeout (send-command, tail --count, simulate's flush)
EXIT_INTERRUPTED = 130  # Ctrl-C where stopping early is not the normal way out

SHOWN_MAX = 80  # enough of a bad value to recognise it; a huge one is never echoed whole
# An NKey seed (S, its role, base32: 58 characters) given where a value goes must not be echoed.
_SEED = re.compile(r"(?<![A-Z2-7])S[A-Z2-7]{56,}")


class UsageError(Exception):
    """A bad argument or setting (exit 2); the message says what was wrong and what to do."""


class CliFailure(Exception):
    """Ends the command with `code` after printing the one-line `message`."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def error_line(message: str) -> None:
    """`alien: <what went wrong>; <what to do>` on stderr: one line, whatever the message held."""
    # the message may quote what a device or server sent: no escape sequence reaches the terminal
    line = printable(_SEED.sub("S...", " ".join(message.split())), 4 * DETAIL_LIMIT)
    print("alien: " + line, file=sys.stderr, flush=True)


def shown(value: str) -> str:
    """`value` quoted and escaped (a lone surrogate too), cut to SHOWN_MAX characters."""
    if _SEED.search(value):
        return "a seed (S...)"
    return quoted(value, SHOWN_MAX)


def has_surrogate(text: str) -> bool:
    """A lone surrogate: from a JSON escape, or argv bytes that are not UTF-8 (surrogateescape)."""
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


# argparse `type=` functions: argparse reports their ArgumentTypeError as "argument --x: <message>"
# (a ValueError would become "invalid ... value: <the whole input>").
def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a number") from None


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a whole number") from None


def seconds(text: str) -> float:
    value = number(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a positive number of seconds")
    return value


def subject_token_arg(text: str) -> str:
    """An id that becomes a NATS subject token: a space or a wildcard would address something else."""
    if not is_subject_token(text):
        raise argparse.ArgumentTypeError(
            f"{shown(text)} cannot be a NATS subject token (use letters, digits, '_' or '-')"
        )
    return text


def is_subject_token(value: str) -> bool:
    try:
        subject_token(value, "id")
    except ValueError:
        return False
    return not value.endswith("\n")  # the pattern's "$" lets one final newline through


def print_json(data: Any, *, pretty: bool = False) -> None:
    print(json.dumps(data, indent=2 if pretty else None, default=str), flush=True)


def ids_for(config: AlienConfig, org_id: str | None, entity_id: str | None, *, need_entity: bool) -> tuple[str, str]:
    """The organization (and entity) to talk about: given, else the saved identity / environment."""
    config.load()
    org, entity = org_id or config.org_id, entity_id or config.entity_id
    if not org or (need_entity and not entity):
        wanted = "--org-id and --entity-id" if need_entity else "--org-id"
        variables = "ALIEN_ORG_ID / ALIEN_ENTITY_ID" if need_entity else "ALIEN_ORG_ID"
        raise UsageError(
            f"no organization{' / entity' if need_entity else ''} id; give {wanted}, run `alien register` "
            f"(it saves them in {config.config_file}), or set {variables}"
        )
    # they become subject tokens: a space or a wildcard would subscribe to something else
    for what, value in (("organization id", org), ("entity id", entity)):
        if value and not is_subject_token(value):
            raise UsageError(f"{what} {shown(value)} cannot be a NATS subject token (use letters, digits, '_' or '-')")
    return org, entity or ""


def nats_unreachable(config: AlienConfig, timeout: float) -> CliFailure:
    return CliFailure(
        f"NATS at {redact_url(config.nats_url)} not reachable within {timeout:g}s; "
        "check NATS_URL and that the server is running"
    )


async def connect_nats(config: AlienConfig, timeout: float, name: str = "alien-cli") -> NatsLink:
    """A connected link, or CliFailure within `timeout` (the link itself would wait forever)."""
    link = NatsLink(NatsSettings.from_config(config), name=name)
    try:
        await asyncio.wait_for(link.connect(), timeout)
    except asyncio.TimeoutError:
        await link.close(1)
        raise nats_unreachable(config, timeout) from None
    return link


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C and SIGTERM call `stop` (a clean end, e.g. tail's exit 0) instead of raising."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    try:
        yield
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def unless_stopped(work: Awaitable[T], stopped: asyncio.Future[Any]) -> T | None:
    """`work`'s result, or None (and `work` cancelled) when `stopped` completes first."""
    task = asyncio.ensure_future(work)
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return None


def silence_stdout() -> None:
    """After a closed pipe, the interpreter's final flush of stdout must not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class Spinner:
    """A transient spinner on stderr, only when stderr is a terminal and the output is for people.

    Nothing is ever drawn into a pipe or a file, nor into --json output. Call `clear()` before
    printing to stdout: the spinner does not redirect other output (a redirect would send stdout
    to the terminal even when stdout is piped).
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._live: Any = None

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.live import Live
        from rich.spinner import Spinner as RichSpinner

        if self._live is None:
            self._live = Live(
                RichSpinner("dots", text),
                console=Console(stderr=True),
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
                refresh_per_second=8,
            )
            self._live.start()
        else:
            self._live.update(RichSpinner("dots", text))

    def clear(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


@contextmanager
def spinning(text: str, enabled: bool = True) -> Iterator[Spinner]:
    spinner = Spinner(enabled)
    spinner.show(text)
    try:
        yield spinner
    finally:
        spinner.clear()
