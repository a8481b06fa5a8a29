"""AckInbox: JetStream's answers to core-NATS publishes, against a real nats-server and stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import nats.js.errors
import pytest
from nats.js.api import StreamConfig

from alien.delivery.pub_acks import AckInbox


@pytest.fixture
async def nc(nats_server: Any) -> AsyncIterator[Any]:
    connection = await nats.connect(nats_server.url)
    js = connection.jetstream()
    await js.add_stream(StreamConfig(name="ACKS", subjects=["acks.>"], max_msg_size=1000, duplicate_window=30))
    yield connection
    await connection.close()


async def _publish(nc: Any, inbox: AckInbox, subject: str, payload: bytes, msg_id: str) -> asyncio.Future[bool]:
    reply, future = inbox.expect()
    await nc.publish(subject, payload, reply=reply, headers={"Nats-Msg-Id": msg_id})
    return future


async def test_each_publish_gets_its_own_answer(nc: Any) -> None:
    inbox = AckInbox()
    await inbox.open(nc)
    futures = [await _publish(nc, inbox, f"acks.{n}", b"x", f"id-{n}") for n in range(50)]
    again = await _publish(nc, inbox, "acks.0", b"x", "id-0")  # a replay the duplicate window drops
    assert await asyncio.wait_for(asyncio.gather(*futures), 5) == [False] * 50
    assert await asyncio.wait_for(again, 5) is True
    stored = await nc.jetstream().stream_info("ACKS")
    assert stored.state.messages == 50
    await inbox.close()


async def test_a_refusal_and_no_stream_are_the_exceptions_the_publisher_handles(nc: Any) -> None:
    inbox = AckInbox()
    await inbox.open(nc)
    too_large = await _publish(nc, inbox, "acks.big", b"x" * 2000, "big")  # over the stream's max_msg_size
    nowhere = await _publish(nc, inbox, "no.stream.here", b"x", "lost")
    with pytest.raises(nats.js.errors.APIError) as refused:
        await asyncio.wait_for(too_large, 5)
    assert refused.value.code == 400 and "maximum" in str(refused.value.description)
    with pytest.raises(nats.js.errors.NoStreamResponseError):
        await asyncio.wait_for(nowhere, 5)
    await inbox.close()


async def test_a_forgotten_reply_is_not_kept_and_a_new_connection_ends_old_waits(nc: Any, nats_server: Any) -> None:
    inbox = AckInbox()
    await inbox.open(nc)
    reply, forgotten = inbox.expect()
    inbox.forget(reply)
    await nc.publish("acks.f", b"x", reply=reply, headers={"Nats-Msg-Id": "f"})
    answered = await _publish(nc, inbox, "acks.g", b"x", "g")
    assert await asyncio.wait_for(answered, 5) is False
    assert not forgotten.done()  # its answer came and found nobody waiting
    _, waiting = inbox.expect()
    other = await nats.connect(nats_server.url)
    try:
        await inbox.open(other)  # asked on the old connection: never answered on this one
        assert waiting.cancelled()
        assert await asyncio.wait_for(await _publish(other, inbox, "acks.h", b"x", "h"), 5) is False
    finally:
        await inbox.close()
        await other.close()
