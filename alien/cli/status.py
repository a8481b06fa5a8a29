"""`alien status`: identity, the mothership (dialect, health), NATS (JetStream, streams), outbox counters.

Nothing is sent and nothing is created: the NATS check connects, reads the JetStream account
and stream list, and disconnects; the outbox file is read read-only. Each network check is one
attempt bounded by --timeout, and both run at once.
Exit 0 when everything is reachable, 1 when the mothership, NATS or JetStream is not (one line each on
stderr). An edge user without JetStream API rights (newer servers) is noted, not an error.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
from pathlib import Path
from typing import Any

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamManager
from nats.js.errors import ServiceUnavailableError

from alien import identity
from alien.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    UsageError,
    error_line,
    nats_unreachable,
    number,
    print_json,
    spinning,
    unless_stopped,
)
from alien.cli.outbox_counters import read_counters
from alien.config import AlienConfig
from alien.errors import AlienError, MothershipError, MothershipUnavailableError
from alien.link import NatsLink
from alien.mothership import MothershipClient
from alien.settings import MothershipSettings, NatsSettings
from alien.wire import redact_url


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser("status", help="identity, dialect, mothership and NATS reachability, outbox counters")
    status.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    status.add_argument("--timeout", type=number, default=5.0, help="seconds each check may take (default 5)")
    status.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    config = AlienConfig()
    with spinning("checking the mothership and NATS", enabled=not args.json):
        report = asyncio.run(gather_status(config, args.timeout))
    if args.json:
        print_json(report, pretty=True)
    else:
        print(render(report), flush=True)
    parts = [report["mothership"], report["nats"], report["nats"]["jetstream"] or {"reachable": True}]
    problems = [part["error"] for part in parts if part["reachable"] is False]
    for problem in problems:
        error_line(problem)
    return EXIT_ERROR if problems else EXIT_OK


async def gather_status(config: AlienConfig, timeout: float) -> dict[str, Any]:
    saved = identity.read(config.identity_path)  # IdentityFileError (exit 2) names a corrupt file
    config.load()
    mothership, nats = await asyncio.gather(_mothership(config, timeout), _nats(config, timeout))
    outbox: dict[str, Any]
    if config.outbox_durability == "memory":
        outbox = {"path": None, "state": "memory"}
    else:
        outbox = read_counters(config.outbox_path)
    return {
        "identity": {
            "file": str(config.identity_path),
            "saved": saved is not None,
            "org_id": config.org_id,
            "entity_id": config.entity_id,
            "entity_name": saved.entity_name if saved else config.entity_name,
        },
        "mothership": mothership,
        "nats": nats,
        "outbox": outbox,
        "fleet_outboxes": fleet_outboxes(config.data_dir / "fleet"),
    }


def fleet_outboxes(fleet_dir: Path) -> dict[str, dict[str, Any]]:
    """The outbox of each entity an AlienFleet keeps under `<data_dir>/fleet/<name>/` (alien/fleet.py)."""
    if not fleet_dir.is_dir():
        return {}
    return {
        entity.name: read_counters(next(iter(sorted(entity.glob("outbox.*.sqlite3"))), entity / "outbox.sqlite3"))
        for entity in sorted(fleet_dir.iterdir())
        if entity.is_dir()
    }


async def _mothership(config: AlienConfig, timeout: float) -> dict[str, Any]:
    url = redact_url(config.mothership_url)
    # a probe: one attempt, bounded by --timeout
    probe = dataclasses.replace(MothershipSettings.from_config(config), request_attempts=1, request_timeout_s=timeout)
    report: dict[str, Any] = {"url": url, "reachable": False, "dialect": None, "health": None}
    try:
        async with MothershipClient(probe) as mothership:
            report["dialect"] = await asyncio.wait_for(mothership.detect_dialect(), timeout)
            report["health"] = await asyncio.wait_for(mothership.health(), timeout)
        report["reachable"] = True
    except (asyncio.TimeoutError, MothershipUnavailableError):
        report["error"] = f"the mothership at {url} is not reachable within {timeout:g}s; check MOTHERSHIP_URL"
    except MothershipError as exc:
        report["error"] = f"the mothership at {url} answered with an error ({exc}); check MOTHERSHIP_URL and its log"
    return report


async def _nats(config: AlienConfig, timeout: float) -> dict[str, Any]:
    report: dict[str, Any] = {"url": redact_url(config.nats_url), "reachable": False, "jetstream": None}
    link = NatsLink(NatsSettings.from_config(config), name="alien-status")
    try:
        await asyncio.wait_for(link.connect(), timeout)
    except asyncio.TimeoutError:
        report["error"] = str(nats_unreachable(config, timeout))
        return report
    except AlienError as exc:  # refused credentials, TLS: the message says what to check
        report["error"] = str(exc)
        return report
    try:
        report["reachable"] = True
        report["server"] = {
            "name": link.nc._server_info.get("server_name"),  # nats-py keeps INFO only here
            "version": link.nc._server_info.get("version"),
        }
        report["rtt_ms"] = round(1000 * await link.nc.rtt(math.ceil(timeout)), 2)
        report["jetstream"] = await _jetstream(link, timeout)
    finally:
        await link.close(1)
    return report


async def _jetstream(link: NatsLink, timeout: float) -> dict[str, Any]:
    """The account's JetStream and its streams: read-only API calls, never creating anything."""
    domain = link.settings.jetstream_domain
    # Edge users of newer servers may not use the JetStream API (publishing needs none of it); a
    # refused request is never answered, so the refusal is raced against the answer.
    not_permitted = {"reachable": None, "domain": domain, "note": "this NATS user may not use the JetStream API"}
    denied = asyncio.ensure_future(link.denied_soon("publish", link.api_prefix))
    try:
        jsm = JetStreamManager(link.nc, prefix=link.api_prefix.rstrip("."), timeout=timeout)
        account = await unless_stopped(jsm.account_info(), denied)
        if account is None:
            return not_permitted
        domain = account.domain or domain
        streams = await unless_stopped(jsm.streams_info(), denied)
        if streams is None:
            return {**not_permitted, "domain": domain}
    except Exception as exc:  # noqa: BLE001 - any failure here is reported, not raised
        silent = (ServiceUnavailableError, NoRespondersError, NatsTimeoutError, asyncio.TimeoutError)
        error = "no JetStream answered" if isinstance(exc, silent) else f"{type(exc).__name__}: {exc}"
        return {
            "reachable": False,
            "domain": domain,
            "error": f"JetStream not reachable through NATS at {redact_url(link.settings.url)} ({error}); "
            "check that the server runs JetStream (through a leaf node: ALIEN_JETSTREAM_DOMAIN)",
        }
    finally:
        denied.cancel()
    ordered = sorted(streams, key=lambda s: str(s.config.name))
    return {
        "reachable": True,
        "domain": domain,
        "streams": {s.config.name: s.state.messages for s in ordered},
        # a work-queue or interest stream holds 0 messages while events flow: its last seq says they do
        "stream_state": {
            s.config.name: {
                "messages": s.state.messages,
                "last_seq": s.state.last_seq,
                "retention": _retention(s.config.retention),
            }
            for s in ordered
        },
    }


def _retention(policy: Any) -> str:
    value = getattr(policy, "value", policy)
    return str(value) if value else "limits"


def render(report: dict[str, Any]) -> str:
    """The report as a short table for people."""
    ident, ms, nats, outbox = report["identity"], report["mothership"], report["nats"], report["outbox"]
    if ident["entity_id"]:
        who = f"org {ident['org_id']} · entity {ident['entity_id']}"
        who += f" ({ident['entity_name']})" if ident["entity_name"] else ""
    else:
        who = "not registered (run `alien register`)"
    lines = [f"identity    {who} · {ident['file']}{'' if ident['saved'] else ' (no file)'}"]
    if ms["reachable"]:
        health = ms["health"] or {}
        lines.append(f"mothership  {ms['url']} · dialect {ms['dialect']} · health {health.get('status', '?')}")
    else:
        lines.append(f"mothership  {ms['url']} · UNREACHABLE")
    if nats["reachable"]:
        server = nats["server"]
        server_line = f"connected to {server['name']} {server['version']}, rtt {nats['rtt_ms']} ms"
        lines.append(f"nats        {nats['url']} · {server_line}")
        lines.append(f"jetstream   {_jetstream_line(nats['jetstream'])}")
    else:
        lines.append(f"nats        {nats['url']} · UNREACHABLE")
    lines.append(f"outbox      {_outbox_line(outbox)}")
    if report["fleet_outboxes"]:
        lines.append(f"fleet       {_fleet_line(report['fleet_outboxes'])}")
    return "\n".join(lines)


def _fleet_line(outboxes: dict[str, dict[str, Any]]) -> str:
    counted = [o for o in outboxes.values() if o["state"] in ("ok", "absent")]
    waiting, size = sum(o["waiting"] for o in counted), sum(o["bytes"] for o in counted)
    busy = len(outboxes) - len(counted)
    return f"{len(outboxes)} entities (alien simulate / AlienFleet) · {waiting} waiting ({size} bytes)" + (
        f", {busy} in use or unreadable" if busy else ""
    )


def _jetstream_line(js: dict[str, Any]) -> str:
    where = f"domain {js['domain']}" if js.get("domain") else "local domain"
    if js["reachable"] is None:
        return f"{where} · {js['note']}"
    if not js["reachable"]:
        return f"{where} · UNREACHABLE"
    state = js.get("stream_state") or {}
    streams = ", ".join(_stream_text(name, count, state.get(name)) for name, count in js["streams"].items())
    return f"{where} · {streams or 'no streams'}"


_REMOVED = {
    "workqueue": "work queue: removed once consumed",
    "interest": "interest: removed once every consumer has it",
}


def _stream_text(name: str, count: int, state: dict[str, Any] | None) -> str:
    removed = _REMOVED.get(state["retention"]) if state else None
    if state is None or removed is None:
        return f"{name} ({count})"  # limits: what is stored is what arrived, within the limits
    return f"{name} ({count} stored, {removed}; last seq {state['last_seq']})"


def _outbox_line(outbox: dict[str, Any]) -> str:
    state = outbox["state"]
    if state == "memory":
        return "in memory only (ALIEN_OUTBOX_DURABILITY=memory): nothing survives a restart"
    if state == "absent":
        return f"{outbox['path']} · empty (no file yet)"
    if state != "ok":
        return f"{outbox['path']} · {state.replace('_', ' ')}: {outbox['error']}"
    age = outbox["oldest_age_s"]
    oldest = f", oldest {_duration(age)} old" if age is not None else ""
    counts = f"{outbox['waiting']} waiting ({outbox['bytes']} bytes{oldest}), {outbox['parked']} parked"
    return f"{outbox['path']} · {counts}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"
