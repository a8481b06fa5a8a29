"""`alien simulate --entities N`: a fleet of simulated drones over one NATS connection (AlienFleet).

Each entity flies a small loop around its own base, drains its battery, and answers
`return_to_base` (it also heads home by itself below 20 %). Its identity and outbox live under
`<data_dir>/fleet/<name>/`, so a second run reuses the same entities. At the end: messages
acknowledged per entity. Exit 0 when everything queued was acknowledged, 5 when some is still
waiting after --flush-timeout (it stays in the outboxes for the next run), 1 when the mothership
or NATS cannot be reached within --connect-timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from typing import Any

from alien.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    CliFailure,
    Spinner,
    UsageError,
    error_line,
    nats_unreachable,
    number,
    print_json,
    stop_on_signals,
    unless_stopped,
    whole_number,
)
from alien.cli.flight import Flight
from alien.config import AlienConfig
from alien.fleet import AlienFleet
from alien.wire import redact_url

PROGRESS_PERIOD_S = 0.5  # the progress line's refresh


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = sub.add_parser("simulate", help="a fleet of simulated entities over one NATS connection")
    sim.add_argument("--entities", type=whole_number, required=True, help="how many entities")
    sim.add_argument("--duration", type=number, help="seconds to fly (default: until Ctrl-C)")
    sim.add_argument("--interval", type=number, default=1.0, help="seconds between readings (default 1)")
    sim.add_argument("--org-name", help="organization (default: ORG_NAME if set, else 'Simulated Fleet')")
    sim.add_argument("--name-prefix", default="SIM", help="entity names are PREFIX-000, PREFIX-001, ...")
    sim.add_argument("--connect-timeout", type=number, default=30.0, help="seconds to connect and register")
    sim.add_argument("--flush-timeout", type=number, default=15.0, help="seconds to wait for the last acks")
    sim.add_argument("--json", action="store_true", help="the summary as one JSON object")
    sim.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.entities <= 1000:
        raise UsageError("--entities must be between 1 and 1000")
    for name in ("duration", "interval", "connect_timeout", "flush_timeout"):
        value = getattr(args, name)
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    config = AlienConfig()
    if args.org_name:
        config = config.derive(org_name=args.org_name)
    elif "org_name" not in config.model_fields_set:
        config = config.derive(org_name="Simulated Fleet")
    return asyncio.run(simulate(config, args))


async def simulate(config: AlienConfig, args: argparse.Namespace) -> int:
    fleet = AlienFleet(config)
    flights: dict[str, Flight] = {}
    for index in range(args.entities):
        name = f"{args.name_prefix}-{index:03d}"
        client = fleet.add(entity_name=name)
        flight = Flight(client, base=(47.0 + 0.005 * index, 8.0), altitude=50.0 + index)
        client.register_command_handler("return_to_base", flight.return_to_base)
        flights[name] = flight
    stop = asyncio.Event()
    stopped = asyncio.ensure_future(stop.wait())
    spinner = Spinner(enabled=not args.json)
    try:
        with stop_on_signals(stop.set):
            spinner.show(f"connecting and registering {args.entities} entities")
            if await unless_stopped(_initialize(fleet, args.connect_timeout), stopped) is None:
                raise CliFailure("interrupted before the fleet was up", EXIT_INTERRUPTED)
            spinner.clear()
            _announce(fleet)
            await _fly(flights, args, stop, spinner)
            spinner.show("waiting for the last acknowledgements")
            acknowledged = await fleet.flush(args.flush_timeout)
            spinner.clear()
            _summary(fleet, acknowledged, as_json=args.json)
    finally:
        stopped.cancel()
        spinner.clear()
        await fleet.close()
    if not acknowledged:
        error_line(
            f"not everything was acknowledged within {args.flush_timeout:g}s; it stays in the outboxes under "
            f"{config.data_dir / 'fleet'} and goes out on the next run (or give a longer --flush-timeout)"
        )
        return EXIT_TIMEOUT
    return EXIT_OK


def _announce(fleet: AlienFleet) -> None:
    """The fleet's own organization and ids, on stderr: commands must be addressed to them."""
    ids = {name: client.config for name, client in fleet.clients.items()}
    org_id = next(iter(ids.values())).org_id
    entities = ", ".join(f"{name} = {config.entity_id}" for name, config in ids.items())
    first = next(iter(ids.values())).entity_id
    print(
        f"fleet up in organization {fleet.config.org_name!r}, org id {org_id}: {entities}; command one with "
        f"`alien send-command --org-id {org_id} --entity-id {first} --type return_to_base`",
        file=sys.stderr,
        flush=True,
    )


async def _initialize(fleet: AlienFleet, timeout: float) -> bool:
    """fleet.initialize(), bounded: it would otherwise wait as long as a server is unreachable."""
    try:
        await asyncio.wait_for(fleet.initialize(), timeout)
        return True
    except asyncio.TimeoutError:
        if not fleet.link.is_connected:
            raise nats_unreachable(fleet.config, timeout) from None
        reasons = {c.registration_error for c in fleet.clients.values() if c.registration_error}
        why = f" ({sorted(reasons)[0]})" if reasons else ""
        raise CliFailure(
            f"could not register the fleet at {redact_url(fleet.config.mothership_url)} within {timeout:g}s{why}; "
            "check MOTHERSHIP_URL and that the mothership is running"
        ) from None


async def _fly(flights: dict[str, Flight], args: argparse.Namespace, stop: asyncio.Event, spinner: Spinner) -> None:
    """Fly until --duration, Ctrl-C or a flight's error (e.g. the mothership refusing a status)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    tasks = [asyncio.create_task(f.fly(args.interval, stop)) for f in flights.values()]
    for task in tasks:
        task.add_done_callback(lambda done: stop.set())  # a flight ends early only by an error
    ends = loop.call_later(args.duration, stop.set) if args.duration else None
    try:
        while spinner.enabled and not stop.is_set():
            stats = [f.client.stats() for f in flights.values()]
            acked, waiting = sum(s.published for s in stats), sum(s.depth + s.in_flight for s in stats)
            of = f"/{args.duration:g}" if args.duration else ""
            elapsed = loop.time() - began
            spinner.show(f"{len(flights)} flying · {elapsed:.0f}{of}s · {acked} acknowledged, {waiting} waiting")
            try:
                await asyncio.wait_for(stop.wait(), PROGRESS_PERIOD_S)
            except asyncio.TimeoutError:
                pass
        await stop.wait()
        await asyncio.gather(*tasks)  # raises a flight's error
    finally:
        if ends is not None:
            ends.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _summary(fleet: AlienFleet, acknowledged: bool, *, as_json: bool) -> None:
    stats = fleet.stats()
    rows: dict[str, dict[str, Any]] = {
        name: {
            "entity_id": fleet.clients[name].config.entity_id,
            "acknowledged": s.published,
            "waiting": s.depth + s.in_flight,
            "dropped": sum(s.dropped.values()),
        }
        for name, s in stats.items()
    }
    total = sum(s.published for s in stats.values())
    waiting = sum(s.depth + s.in_flight for s in stats.values())
    if as_json:
        print_json(
            {
                "org_id": next(iter(fleet.clients.values())).config.org_id,
                "entities": rows,
                "acknowledged": total,
                "waiting": waiting,
                "all_acknowledged": acknowledged,
                "reconnects": fleet.link.reconnects,
            }
        )
        return
    for name, row in rows.items():
        print(
            f"{name}  {row['entity_id']}  {row['acknowledged']} acknowledged, {row['waiting']} waiting, "
            f"{row['dropped']} dropped"
        )
    print(
        f"fleet of {len(rows)} over one NATS connection: {total} messages acknowledged, {waiting} waiting "
        f"({fleet.link.reconnects} reconnects)",
        flush=True,
    )
