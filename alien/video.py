"""Video stream metadata of an entity (the seed API's "video streaming" enhancement, docs/index.md#the-seed-api).

v0.1.x servers keep an entity's `video_config` (protocol, port, stream URLs) so the operator's
console can open the robot's camera; v0.0.1 has no such field. The URLs are published to
everyone who can read the entity, so they must not carry credentials.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alien.wire import split_credentials

# Query parameters that carry a credential (e.g. ?token=..., ?api_key=..., ?X-Amz-Signature=...).
_CREDENTIAL_PARAM = re.compile(r"token|key|secret|pass|pwd|auth|sig|credential", re.IGNORECASE)
# The URL fields the server's entity schema knows (v0.1.x `video_config`).
URL_FIELDS = ("stream_url", "overlay_url", "webrtc_url", "overlay_webrtc_url", "hls_url")


class VideoConfig(BaseModel):
    """An entity's video streams, as the server's `video_config` object; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: Literal["rtsp", "rtmp", "srt", "hls"] | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    stream_url: str | None = None
    overlay_url: str | None = None
    webrtc_url: str | None = None
    overlay_webrtc_url: str | None = None
    hls_url: str | None = None

    @field_validator(*URL_FIELDS)
    @classmethod
    def _published_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if split_credentials(value)[1] is not None:
            # never echo it: the user part is a credential, and this URL is shown to every operator.
            # Any "@" counts: urllib's netloc ends at a "/" of an unencoded password.
            raise ValueError(
                "must not carry credentials (user@host): operators see this URL (an '@' in its path: write %40)"
            )
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc:
            raise ValueError("must be an absolute URL (scheme://host/...)")
        if any(_CREDENTIAL_PARAM.search(name) for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
            raise ValueError("must not carry credentials in its query (token, key, password, ...): operators see it")
        return value

    def body(self) -> dict[str, object]:
        """The server's JSON object: the fields that are set."""
        return self.model_dump(exclude_none=True)
