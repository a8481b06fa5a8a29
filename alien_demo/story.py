"""The demo's story, phase by phase: start, fly, command home, outage, drain, done.

Everything runs on 127.0.0.1 in a temporary directory: a real nats-server and the mothership
emulator in this process; the simulated robot and the bridge node as child processes (as an
integrator runs them). The phase lengths scale with `--duration`; the waits between phases are
the story's schedule, every wait for an outcome is bounded and event-driven.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

MIN_DURATION_S = 20.0
RETURN_LEGS = 6  # the Fibonacci goal's order: one feedback (command_progress) per leg home
COMMAND_ID = "demo-return-1"
# A DDS domain for the demo alone: away from 0 (the default) and from the ids tests pick
DOMAIN_IDS = range(150, 230)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/demo",
        description="A simulated robot, the alien_ros bridge and the mothership emulator: the whole story.",
    )
    parser.add_argument("--duration", type=float, default=40.0, help="story length in seconds (default 40)")
    parser.add_argument("--dialect", choices=["v0.0.1", "v0.1"], default="v0.1", help="mothership dialect (v0.1)")
    parser.add_argument("--no-ui", action="store_true", help="plain one-line milestones instead of the live view")
    args = parser.parse_args(argv)
    if args.duration < MIN_DURATION_S:
        parser.error(f"--duration must be at least {MIN_DURATION_S:g} seconds, got {args.duration:g}")
    return args


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop the children and exit."""


class Demo:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        from alien_demo.state import Story

        self.args = args
        self.workdir = workdir
        self.story = Story(args.dialect, args.duration)
        self.stopping = threading.Event()
        d = args.duration
        self.fly_s, self.return_s, self.outage_s, self.tail_s = 0.25 * d, 0.25 * d, 0.15 * d, 0.1 * d

    def pause(self, seconds: float) -> None:
        """The story's schedule (not synchronisation); Ctrl-C ends it at once."""
        if self.stopping.wait(seconds):
            raise Interrupted()

    def run(self) -> dict[str, Any]:
        from alien_demo import processes
        from alien_demo.bridge_status import BridgeWatch
        from alien_demo.mothership import MothershipWatch
        from alien_testing import MothershipEmulator, NatsServer
        from alien_testing.nats_binary import free_port

        story, args = self.story, self.args
        domain_id = random.choice(DOMAIN_IDS)
        os.environ.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(domain_id))
        children: list[processes.Child] = []
        server = NatsServer(self.workdir / "nats")
        bridge_watch: BridgeWatch | None = None
        try:
            story.phase(
                "starting", f"nats-server, mothership emulator (dialect {args.dialect}), ROS domain {domain_id}"
            )
            server.start()
            with MothershipEmulator(server.url, dialect=args.dialect) as emulator:
                story.mothership = MothershipWatch(emulator)
                bridge_watch = story.bridge = BridgeWatch()
                api_key = next(iter(emulator.api_keys)) if args.dialect == "v0.1" else None
                env = processes.child_environment(domain_id, api_key)
                leg_s = self.return_s / RETURN_LEGS
                children.append(
                    processes.start_robot(env, self.workdir, processes.robot_arguments(args.duration, leg_s))
                )
                metrics_addr = f"127.0.0.1:{free_port()}"
                story.metrics_url = f"http://{metrics_addr}/metrics"
                params = processes.bridge_params(
                    self.workdir,
                    emulator.url,
                    server.url,
                    args.dialect,
                    return_timeout_s=self.return_s + 30,
                    metrics_addr=metrics_addr,
                )
                bridge = processes.start_bridge(env, self.workdir, params)
                children.append(bridge)
                self._starting(emulator, children)
                self._flying()
                self._command(emulator, server.url)
                self._outage(server)
                self._finish(emulator, children)
                story.result["bridge_exit"] = bridge.stop()
                story.milestone(f"bridge stopped (exit {story.result['bridge_exit']})")
                if story.result["bridge_exit"] != 0:
                    story.milestone(f"the bridge's log ends:\n{bridge.log_tail()}")
                emulator.wait_for(
                    lambda: story.digest().event_counts.get("shutdown", 0) > 0, 10, "the bridge's shutdown event"
                )
                story.phase("done", "the robot and the bridge stopped")
        except (TimeoutError, RuntimeError, OSError) as exc:  # a step that did not happen: the summary says which
            story.failure = str(exc)
            story.milestone(f"FAILED: {exc}")
        finally:
            for child in reversed(children):
                code = child.stop()
                if story.failure and child.log_tail():
                    story.milestone(f"{child.name} exit {code}; its log ends:\n{child.log_tail()}")
            if bridge_watch is not None:
                bridge_watch.close()
            server.stop()
        return story.summary()

    # --- the phases ---
    def _starting(self, emulator: Any, children: list[Any]) -> None:
        story = self.story
        assert story.bridge is not None

        def gone() -> str | None:
            return next((reason for child in children if (reason := child.exited())), None)

        status = story.bridge.wait_for(
            lambda s: s.state == "connected", 60, "the bridge to register and connect", gone=gone
        )
        story.milestone(f"bridge connected ({status.values.get('dialect')}, entity {status.values.get('entity_id')})")
        story.milestone(f"metrics: {story.metrics_url} (another terminal: .venv/bin/alien metrics {story.metrics_url})")
        emulator.wait_for(lambda: story.digest().positions > 0, 30, "the first position at the mothership")
        story.milestone("first position at the mothership")

    def _flying(self) -> None:
        self.story.phase("flying", f"the robot flies its loop for {self.fly_s:.0f}s; the battery drains")
        self.pause(self.fly_s)

    def _command(self, emulator: Any, nats_url: str) -> None:
        story = self.story
        story.phase("command", f"operator: return_to_base (command {COMMAND_ID}, {RETURN_LEGS} legs)")
        (entity,) = emulator.entities()
        asyncio.run(_send_command(nats_url, entity["org_id"], entity["entity_id"], RETURN_LEGS))
        emulator.wait_for(lambda: story.digest().event_counts.get("command_received", 0) > 0, 10, "command_received")
        story.milestone("ack: command_received")
        emulator.wait_for(lambda: story.digest().event_counts.get("command_progress", 0) > 0, 30, "command_progress")
        story.milestone("progress: command_progress (the robot is flying home)")
        emulator.wait_for(lambda: story.digest().command_result is not None, self.return_s + 30, "the command's result")
        result = story.digest().command_result or {}
        story.milestone(f"result: {result.get('event')} {json.dumps(result.get('result') or result.get('error'))}")

    def _outage(self, server: Any) -> None:
        story = self.story
        assert story.bridge is not None
        story.bridge.next_report(10)
        story.bridge.reset_peak()
        before = story.bridge.next_report(10)
        story.phase("outage", f"nats-server stopped for {self.outage_s:.0f}s; the robot keeps publishing")
        server.stop()
        started = time.monotonic()
        filling = story.bridge.wait_for(lambda s: s.depth > 0, self.outage_s + 10, "the outbox to fill")
        story.milestone(f"outbox filling: {filling.depth} queued")
        self.pause(max(0.0, self.outage_s - (time.monotonic() - started)))
        at_restart = story.bridge.next_report(10)
        story.result["outage"] = {
            "seconds": round(time.monotonic() - started, 1),
            "queued_during": at_restart.enqueued - before.enqueued,
        }
        story.phase("draining", f"nats-server restarted with {at_restart.depth} messages queued")
        server.start()
        drained = story.bridge.wait_for(
            lambda s: s.state == "connected" and s.depth == 0, 30, "the outbox to drain after the outage"
        )
        story.result["outage"].update(peak_depth=story.bridge.peak_depth, drained=drained.depth == 0)
        story.milestone(f"outbox drained (peak {story.bridge.peak_depth} queued, {drained.published} published)")

    def _finish(self, emulator: Any, children: list[Any]) -> None:
        """The robot lands for good; then the mothership must hold exactly what the bridge published."""
        story = self.story
        assert story.bridge is not None
        story.milestone(f"link back: {self.tail_s:.0f}s of normal traffic")
        self.pause(self.tail_s)
        robot = next(c for c in children if c.name == "sim_robot")
        robot.stop()
        story.milestone("robot stopped; comparing what the bridge published with what the mothership received")
        # The bridge still sends heartbeats, so its counters move: compare at a report where the
        # mothership has exactly what the bridge says it published (never more than a moment apart).
        deadline = time.monotonic() + 20
        while True:
            status = story.bridge.next_report(10)
            received = story.digest().received
            if status.depth == 0 and received == status.published == status.enqueued:
                break
            if time.monotonic() > deadline:
                break
        story.result.update(
            enqueued=status.enqueued, published=status.published, received=received, dropped=status.dropped
        )
        story.milestone(
            f"enqueued {status.enqueued}, published {status.published}, received {received}, dropped {status.dropped}"
        )
        self._metrics()

    def _metrics(self) -> None:
        """The bridge's metrics endpoint, as `alien metrics` shows it: two scrapes a second apart."""
        from alien.cli.common import CliFailure
        from alien.cli.metrics import render, scrape
        from alien.cli.metrics_summary import summarise

        story = self.story
        url = story.metrics_url
        assert url is not None  # set before the bridge started
        try:
            first = scrape(url, 5)
            self.pause(1.0)  # the interval the rates are measured over
            summary = summarise(url, first, scrape(url, 5))
        except CliFailure as exc:
            story.result["metrics"] = {"error": str(exc)}
            story.milestone(f"metrics endpoint: {exc}")
            return
        entities = list(summary["entities"].values())
        entity = entities[0] if entities else {"totals": {}}
        story.result["metrics"] = {
            "url": url,
            "registered": entity.get("registered"),
            "connected": entity.get("connected"),
            "published": entity["totals"].get("published"),
        }
        story.milestone("the bridge's metrics endpoint (alien metrics):\n" + render(summary))

    def interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()
        raise Interrupted()


async def _send_command(nats_url: str, org_id: str, entity_id: str, legs: int) -> None:
    """The operator's command, as the mothership sends it: JSON on the entity's command subject."""
    import nats

    from alien.wire import command_subject

    command = {"type": "return_to_base", "command_id": COMMAND_ID, "params": {"order": legs}}
    nc = await nats.connect(nats_url)
    try:
        await nc.publish(command_subject(org_id, entity_id), json.dumps(command).encode())
        await nc.flush()
    finally:
        await nc.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from alien_demo.view import run_with_view

    workdir = Path(tempfile.mkdtemp(prefix="alien-demo-"))
    demo = Demo(args, workdir)
    # Both explicitly: a shell starting the demo in the background leaves SIGINT ignored
    signal.signal(signal.SIGINT, demo.interrupt)
    signal.signal(signal.SIGTERM, demo.interrupt)
    try:
        summary = run_with_view(demo)
    except (KeyboardInterrupt, Interrupted):
        print("demo interrupted; every process it started has been stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
