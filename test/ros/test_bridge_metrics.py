"""The bridge's metrics endpoint, scraped over HTTP from a real bridge node (rclpy over DDS, nats-server, emulator).

The client's metrics are held against the client (on its own loop thread, where they live); the
bridge's own (ROS messages per input, what the rate policy kept back) against the node's counters.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import nats
import pytest
from metrics_support import assert_matches_client, fetch, scrape, value
from prometheus_client.parser import text_string_to_metric_families
from ros_support import spin_until, wait_matched
from sensor_msgs.msg import BatteryState, NavSatFix, NavSatStatus

from alien_ros.bridge_node import BridgeNode

ENTITY = "bridge-test"  # the start_bridge fixture's entity name


def _fix(lat: float, status: int = NavSatStatus.STATUS_FIX) -> NavSatFix:
    msg = NavSatFix(latitude=lat, longitude=8.54, altitude=400.0)
    msg.status.status = status
    return msg


def on_loop(bridge: BridgeNode, coroutine: Any) -> Any:
    """Run `coroutine` on the bridge client's loop (where its counters change) and return its result."""
    return asyncio.run_coroutine_threadsafe(coroutine, bridge.alien.loop).result(timeout=30)


def test_the_bridge_serves_its_inputs_rate_policy_and_client_on_one_endpoint(
    ros: dict[str, Any], make_emulator: Any, start_bridge: Any
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    bridge = start_bridge(
        emulator,
        metrics_addr="127.0.0.1:0",
        position_deadband_m=5.0,
        **{"fix.rate_hz": 2.0, "fix.qos": "reliable", "battery.rate_hz": 0.0, "battery.qos": "reliable"},
    )
    endpoint = bridge.alien.client.metrics_endpoint
    assert endpoint is not None and endpoint.url is not None
    helper, executor = ros["helper"], ros["executor"]
    fix_pub = helper.create_publisher(NavSatFix, "fix", 100)
    battery_pub = helper.create_publisher(BatteryState, "battery_state", 100)
    wait_matched(executor, fix_pub, lambda: bridge.inputs[0].subscription)
    wait_matched(executor, battery_pub, lambda: bridge.inputs[1].subscription)
    fixes = [_fix(47.39 + step * 2e-5) for step in range(10)]  # 2.2 m apart: the 5 m deadband skips some
    fixes += [_fix(0.0, NavSatStatus.STATUS_NO_FIX)] * 3
    for count, fix in enumerate(fixes, 1):  # one at a time: none lost in a full reader queue
        fix_pub.publish(fix)
        spin_until(executor, lambda count=count: bridge.received.get("fix", 0) == count, 10, f"fix {count}")
    for count in range(1, 5):
        battery_pub.publish(BatteryState(voltage=24.0, percentage=0.8, present=True))
        spin_until(executor, lambda count=count: bridge.received.get("battery", 0) == count, 10, f"battery {count}")

    async def settled() -> dict[str, Any]:
        """Once every fix is accounted for (the last one waits for its period's end) and the outbox is empty."""
        client = bridge.alien.client

        def busy() -> bool:
            position = bridge.alien.channels.stats()["position"]
            held_back = position["coalesced"] + bridge.deadband.suppressed + bridge.fix_tracker.dropped
            return position["sent"] + held_back < 13 or client.stats().enqueued != client.stats().published

        while busy():
            await asyncio.sleep(0.05)  # a bounded poll: on_loop's timeout
        samples = await scrape(endpoint.url)
        assert_matches_client(samples, client, ENTITY)
        return {"samples": samples, "channels": bridge.alien.channels.stats()}

    result = on_loop(bridge, settled())
    samples, channels = result["samples"], result["channels"]
    assert value(samples, "alien_ros_messages_received_total", entity=ENTITY, input="fix") == 13
    assert value(samples, "alien_ros_messages_received_total", entity=ENTITY, input="battery") == 4
    dropped = {
        reason: value(samples, "alien_ros_readings_dropped_total", entity=ENTITY, channel="position", reason=reason)
        for reason in ("coalesced", "deadband", "no_fix")
    }
    assert dropped == {
        "coalesced": channels["position"]["coalesced"],
        "deadband": bridge.deadband.suppressed,
        "no_fix": 3,
    }
    assert dropped["deadband"] > 0 and dropped["coalesced"] > 0
    sent = value(samples, "alien_ros_readings_sent_total", entity=ENTITY, channel="position")
    assert sent == channels["position"]["sent"]
    assert sent + dropped["coalesced"] + dropped["deadband"] + dropped["no_fix"] == 13  # every fix accounted for
    assert value(samples, "alien_ros_readings_sent_total", entity=ENTITY, channel="power") == 4
    positions = [m for m in emulator.telemetry() if "position" in m.json()["data"]]
    assert len(positions) == sent


DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "alien-dashboard.json"
METRIC = re.compile(r"\b((?:alien|process)_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"\b((?:alien|process)_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
ADDED_BY_PROMETHEUS = {"instance", "job"}


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(expression, legend) of every panel target, and the template variables' queries."""
    found = [(t["expr"], t.get("legendFormat", "")) for p in dashboard["panels"] for t in p.get("targets", [])]
    found += [(v["definition"], "") for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return found


def _series(text: str) -> dict[str, set[str]]:
    """Every series name the exposition can have (a counter's _total, a histogram's _bucket...), with its labels."""
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(family.type, ("",))
        for suffix in suffixes:
            series.setdefault(family.name + suffix, set())
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def test_the_grafana_dashboard_asks_only_for_what_the_endpoint_serves(
    ros: dict[str, Any], make_emulator: Any, start_bridge: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every series and label a dashboard query names is one the endpoint serves (a sample of each, but refusals)."""
    emulator = make_emulator(dialect="v0.0.1")
    monkeypatch.setenv("ALIEN_TELEMETRY_RATE_LIMIT_PER_KEY_HZ", "0.001")  # the second position: dropped, counted
    monkeypatch.setenv("ALIEN_TELEMETRY_BURST_PER_KEY", "1")
    bridge = start_bridge(emulator, metrics_addr="127.0.0.1:0", allow_unmapped_commands=True, **{"fix.rate_hz": 0.0})
    endpoint = bridge.alien.client.metrics_endpoint
    assert endpoint is not None and endpoint.url is not None
    helper, executor = ros["helper"], ros["executor"]
    fix_pub = helper.create_publisher(NavSatFix, "fix", 10)
    wait_matched(executor, fix_pub, lambda: bridge.inputs[0].subscription)
    for count in (1, 2):
        fix_pub.publish(_fix(47.39 + count / 1000))
        spin_until(executor, lambda count=count: bridge.received.get("fix") == count, 10, f"fix {count}")
    config = bridge.alien.client.config
    asyncio.run(_send_commands(config.org_id, config.entity_id, config.nats_url))

    def final_events() -> set[str]:
        return {m.json()["event_type"] for m in emulator.events()}

    spin_until(
        executor,
        lambda: {"command_completed", "command_rejected"} <= final_events(),
        10,
        "a completed and a rejected command",
    )
    text, _ = fetch(endpoint.url)
    series = _series(text)
    dashboard = json.loads(DASHBOARD.read_text())
    problems = []
    unsampled: set[str] = set()
    for expression, legend in _queries(dashboard):
        used = METRIC.findall(expression)
        problems += [f"{expression}: no series {name}" for name in used if name not in series]
        unsampled |= {name for name in used if not series.get(name) and not name.startswith("process_")}
        if any(name in unsampled for name in used):
            continue  # a family without samples shows no labels to check against
        labels = set().union(*(series.get(name, set()) for name in used)) | ADDED_BY_PROMETHEUS
        for name, matchers in SELECTOR.findall(expression):
            problems += [f"{expression}: {name} has no label {m}" for m in MATCHER.findall(matchers) if m not in labels]
        grouped = {g.strip() for group in GROUPING.findall(expression) for g in group.split(",") if g.strip()}
        problems += [f"{expression}: no label {g} to group by" for g in grouped - labels - {"le"}]
        shown = grouped or labels
        problems += [f"{legend}: no label {g} in the result" for g in LEGEND.findall(legend) if g not in shown]
    assert not problems, "\n".join(problems)
    assert unsampled == {"alien_nats_denials_total"}  # no refusal here: every other label was checked
    used = {name for expression, _ in _queries(dashboard) for name in METRIC.findall(expression)}
    assert {"alien_nats_connected", "alien_publish_latency_seconds_bucket", "alien_ros_readings_dropped_total"} <= used


async def _send_commands(org_id: str | None, entity_id: str | None, nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        subject = f"constellation.commands.{org_id}.{entity_id}"
        await nc.publish(subject, json.dumps({"type": "inspect", "command_id": "dash-1"}).encode())
        await nc.publish(subject, b"{not json")
        await nc.flush()
    finally:
        await nc.close()
