"""An unreachable mothership: registration retried with backoff, said once per attempt, then quietly."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from alien import AlienClient, AlienConfig
from alien.registration import REGISTRATION_ATTEMPTS_SAID
from alien_testing.nats_server import free_port


async def test_unreachable_mothership_is_said_per_attempt_then_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = AlienConfig(
        mothership_url=f"http://127.0.0.1:{free_port()}",  # nobody listens: connection refused
        entity_type="drone",
        config_file=str(tmp_path / "identity.json"),
        data_dir=tmp_path / "data",
        request_attempts=1,
        retry_backoff_s=0.001,
        retry_backoff_max_s=0.001,
    )
    client = AlienClient(config)
    caplog.set_level(logging.DEBUG, logger="alien")
    task = asyncio.ensure_future(client.initialize())

    def attempts_logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "alien" and "cannot register yet" in r.getMessage()]

    deadline = asyncio.get_running_loop().time() + 20
    while len(attempts_logged()) < 3 * REGISTRATION_ATTEMPTS_SAID:  # a bounded poll on the log
        assert asyncio.get_running_loop().time() < deadline, "registration attempts stopped"
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close(timeout=1)

    records = attempts_logged()
    loud = [r for r in records if r.levelno >= logging.WARNING]
    assert len(loud) == REGISTRATION_ATTEMPTS_SAID  # the reminder comes after minutes, not here
    assert all(r.levelno == logging.DEBUG for r in records[REGISTRATION_ATTEMPTS_SAID:])
    assert [f"attempt {n}:" in r.getMessage() for n, r in enumerate(loud, 1)] == [True] * len(loud)
    assert "trying again in" in loud[0].getMessage()
    assert "logged at DEBUG" in loud[-1].getMessage()
    # one line per attempt, not one per HTTP try underneath it
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("alien")]
    assert warnings == loud
