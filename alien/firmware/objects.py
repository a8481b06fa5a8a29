"""Reading one object of a JetStream object store, one chunk per request (docs/firmware.md#how-it-downloads).

The layout is nats-py's (and every NATS client's): bucket B is the stream `OBJ_B`, an object's
chunks are the messages on `$O.B.C.<nuid>`, and its info (size, digest, headers) is the last
message on `$O.B.M.<base64url name>`. nats-py's `ObjectStore.get()` holds the whole object in
memory, or, writing into a file, reads it through a push consumer that waits without a timeout;
here every read is a JetStream direct get of one message by stream sequence, so memory holds one
chunk at a time, and a read cut by a reconnect starts again at the chunk it was reading. Direct
gets need nothing but publish permission on `$JS.API.DIRECT.GET.OBJ_B` and
`$JS.API.DIRECT.GET.OBJ_B.>` (replies come on `_INBOX.>`): read-only rights on the bucket.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable
from typing import TypeVar

from nats.js import api
from nats.js.errors import NotFoundError
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_META_PRE_TEMPLATE, OBJ_STREAM_TEMPLATE

from alien.firmware.manifest import FirmwareError
from alien.link import NatsLink

T = TypeVar("T")


class ObjectMissing(Exception):
    """The object (or the chunk asked for) is not in the bucket."""


def direct_get_subjects(bucket: str, api_prefix: str = "$JS.API.") -> tuple[str, str]:
    """The two subjects a device publishes to read `bucket`: its whole read permission."""
    stream = OBJ_STREAM_TEMPLATE.format(bucket=bucket)
    return f"{api_prefix}DIRECT.GET.{stream}", f"{api_prefix}DIRECT.GET.{stream}.>"


class BucketReader:
    """Direct gets from one bucket over the client's link; a refused one fails at once (`not_permitted`)."""

    def __init__(self, link: NatsLink, bucket: str) -> None:
        self.link = link
        self.bucket = bucket
        self.stream = OBJ_STREAM_TEMPLATE.format(bucket=bucket)

    async def info(self, name: str) -> api.ObjectInfo:
        """The object's info; ObjectMissing when there is none, or when it was deleted."""
        token = base64.urlsafe_b64encode(name.encode()).decode()
        subject = OBJ_META_PRE_TEMPLATE.format(bucket=self.bucket, obj=token)
        msg = await self._request(self.link.js.get_msg(self.stream, subject=subject, direct=True))
        try:
            info: api.ObjectInfo = api.ObjectInfo.from_response(json.loads(msg.data or b""))
        except (ValueError, TypeError, KeyError) as exc:
            raise FirmwareError("bad_manifest", f"the info of object {name!r} is not readable ({exc})") from None
        if info.deleted:
            raise ObjectMissing(name)
        return info

    async def chunk(self, nuid: str, from_seq: int) -> tuple[int, bytes]:
        """(stream sequence, data) of the object's first chunk at or after `from_seq`."""
        subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=self.bucket, obj=nuid)
        msg = await self._request(
            self.link.js.get_msg(self.stream, seq=from_seq, subject=subject, next=True, direct=True)
        )
        if msg.seq is None:
            raise ObjectMissing(subject)  # a direct get answer always carries its sequence
        return int(msg.seq), bytes(msg.data or b"")

    async def _request(self, request: Awaitable[T]) -> T:
        """`request`, unless nats-server refuses it first: a refused request is never answered, only timed out."""
        asking = asyncio.ensure_future(request)
        first, rest = direct_get_subjects(self.bucket, self.link.api_prefix)
        refused = asyncio.ensure_future(self.link.denied_soon("publish", first))
        try:
            await asyncio.wait({asking, refused}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            refused.cancel()
            if not asking.done():
                asking.cancel()
            await asyncio.gather(refused, return_exceptions=True)
        if asking.cancelled() or not asking.done():
            await asyncio.gather(asking, return_exceptions=True)
            raise FirmwareError(
                "not_permitted",
                f"nats-server refused to read the firmware bucket {self.bucket}: the NATS user needs publish "
                f'permission for "{first}" and "{rest}" (docs/firmware.md#permissions)',
            )
        try:
            return asking.result()
        except NotFoundError:
            raise ObjectMissing(self.bucket) from None
