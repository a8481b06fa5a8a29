"""Shared fixtures: a real nats-server and the mothership emulator per test (alien_testing)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from alien import AlienConfig

pytest_plugins = ["alien_testing.fixtures"]

# Nothing may leave this machine: ROS discovery stays on loopback (kilted ignores ROS_LOCALHOST_ONLY),
# and a domain of this run's own so parallel runs do not see each other (scripts/test picks one).
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))

# Hypothesis (test/alien/test_command_fuzz_*.py): `ci` by default, a few thousand examples in total; `long`
# (>= 10,000 examples) with `--hypothesis-profile long` or HYPOTHESIS_PROFILE=long. The fuzz tests
# share one client per module: the autouse function-scoped fixtures below are harmless there.
_FUZZ = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=700, **_FUZZ)
settings.register_profile("long", max_examples=4000, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Every environment variable AlienConfig reads; cleared so a developer's shell cannot leak in.
_CONFIG_ENV = [
    "MOTHERSHIP_URL",
    "NATS_URL",
    "API_BEARER_TOKEN",
    "ORG_NAME",
    "ORG_TYPE",
    "ENTITY_TYPE",
    "ENTITY_NAME",
    "ALIEN_CONFIG_FILE",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test runs in its own directory (no stray .env) with no alien variables set."""
    for name in list(os.environ):
        if name in _CONFIG_ENV or name.startswith("ALIEN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fast_retries() -> dict[str, Any]:
    """Retry settings that keep failure-path tests short (the policy is the same, only faster)."""
    return {"request_attempts": 3, "retry_backoff_s": 0.01, "retry_backoff_max_s": 0.05, "request_timeout_s": 5}


@pytest.fixture
def make_config(tmp_path: Path, fast_retries: dict[str, Any]) -> Callable[..., AlienConfig]:
    """AlienConfig for a given emulator and nats-server, identity file under tmp_path."""

    def build(emulator: Any = None, nats: Any = None, **overrides: Any) -> AlienConfig:
        values: dict[str, Any] = {
            "config_file": str(tmp_path / "identity.json"),
            "data_dir": tmp_path / "data",
            "nats_ping_interval_s": 1.0,
            "nats_reconnect_wait_s": 0.1,
            "nats_reconnect_jitter_s": 0.1,
            "publish_timeout_s": 2.0,
            **fast_retries,
        }
        if emulator is not None:
            values["mothership_url"] = emulator.url
            if emulator.dialect == "v0.1":
                values["api_key"] = next(iter(emulator.api_keys))
        if nats is not None:
            values["nats_url"] = nats.url
        values.update(overrides)
        return AlienConfig(**values)

    return build


@pytest.fixture
def identity_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "identity.json"
