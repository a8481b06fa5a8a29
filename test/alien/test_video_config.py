"""Video stream metadata (video_config): set at registration, updatable, per dialect (real HTTP)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from alien import AlienClient, AlienConfig, ConfigError, UnsupportedByServerError

CAMERA = {"protocol": "rtsp", "port": 8554, "stream_url": "rtsp://10.0.0.7:8554/front"}


def _server_video(emulator: Any) -> dict[str, Any]:
    (entity,) = emulator.entities()
    value = entity["video_config"]
    return json.loads(value) if isinstance(value, str) else dict(value)


def _puts(emulator: Any) -> list[Any]:
    return [r for r in emulator.requests() if r.method == "PUT"]


async def test_v01_entity_gets_the_configured_streams_and_follows_updates(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig]
) -> None:
    emulator = make_emulator(dialect="v0.1")
    async with AlienClient(make_config(emulator, nats_server, video_config=CAMERA)) as client:
        assert _server_video(emulator) == CAMERA
        assert not _puts(emulator)  # sent with the entity, not after it
        await client.update_video_config({"protocol": "hls", "hls_url": "https://cams.example/front.m3u8"})
        assert _server_video(emulator) == {"protocol": "hls", "hls_url": "https://cams.example/front.m3u8"}
        with pytest.raises(ConfigError, match=r"ALIEN_VIDEO_CONFIG \(video_config\.port\)"):
            await client.update_video_config({"port": 70000})
    assert len(_puts(emulator)) == 1  # the bad update never reached the server

    # A restart with the setting unchanged sends nothing; a changed setting is applied to the entity.
    async with AlienClient(make_config(emulator, nats_server, video_config=CAMERA)):
        pass
    assert len(_puts(emulator)) == 2 and _server_video(emulator) == CAMERA
    async with AlienClient(make_config(emulator, nats_server, video_config=CAMERA)):
        pass
    assert len(_puts(emulator)) == 2


async def test_v001_has_no_video_config_and_says_so(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], caplog: pytest.LogCaptureFixture
) -> None:
    emulator = make_emulator(dialect="v0.0.1")
    with caplog.at_level(logging.WARNING, logger="alien"):
        async with AlienClient(make_config(emulator, nats_server, video_config=CAMERA)) as client:
            with pytest.raises(UnsupportedByServerError, match=r"v0\.0\.1 server has no video_config"):
                await client.update_video_config(CAMERA)
    assert [r.getMessage() for r in caplog.records if "ALIEN_VIDEO_CONFIG" in r.getMessage()] == [
        "ALIEN_VIDEO_CONFIG is set, but a v0.0.1 server has no video_config on entities (v0.1.x has); not sent"
    ]
    (entity,) = emulator.entities()
    assert "rtsp" not in json.dumps(entity, default=str)  # nowhere, not even smuggled into metadata
    assert not _puts(emulator)


@pytest.mark.parametrize(
    ("video", "named"),
    [
        ({"protocol": "webm"}, r"video_config\.protocol\): Input should be 'rtsp', 'rtmp', 'srt' or 'hls'"),
        ({"port": 0}, r"video_config\.port\)"),
        ({"fps": 30}, r"video_config\.fps\): Extra inputs are not permitted"),
        ({"stream_url": "front-camera"}, r"video_config\.stream_url\): must be an absolute URL"),
        ('{"protocol": ', r"ALIEN_VIDEO_CONFIG \(video_config\)"),
    ],
)
def test_bad_video_config_names_the_field(video: Any, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        AlienConfig(video_config=video)


@pytest.mark.parametrize(
    "value",
    [
        '{"stream_url": "rtsp://admin:hunter2-cam@10.0.0.7/front"}',
        '{"hls_url": "https://cams.example/front.m3u8?token=hunter2-cam"}',
        '{"webrtc_url": "https://cams.example/front?X-Amz-Signature=hunter2-cam"}',
        '["rtsp://admin:hunter2-cam@10.0.0.7/front"]',  # not even an object: still never shown
        '{"stream_url": "rtsp://admin:hunter2-cam@10.0.0.7/front"',  # not even JSON
    ],
)
def test_credentials_in_a_stream_url_are_refused_and_never_echoed(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIEN_VIDEO_CONFIG", value)
    with pytest.raises(ConfigError, match=r"ALIEN_VIDEO_CONFIG \(video_config") as caught:
        AlienConfig()
    assert "hunter2-cam" not in str(caught.value) and "admin" not in str(caught.value)


@pytest.mark.parametrize("char", ["/", "?", "#", "@", ":", "%", "+"])
@pytest.mark.parametrize("field", ["stream_url", "overlay_url", "webrtc_url", "overlay_webrtc_url", "hls_url"])
def test_a_stream_url_password_holding_any_url_special_character_is_refused(field: str, char: str) -> None:
    """urllib ends the host at the first "/", "?" or "#" of an unencoded password: it must not
    hide the user part from the check (operators would see the password)."""
    url = f"rtsp://admin:pa{char}SECRETCAM@10.0.0.7:8554/front"
    with pytest.raises(ConfigError, match=rf"video_config\.{field}\): must not carry credentials") as caught:
        AlienConfig(video_config={field: url})
    assert "SECRETCAM" not in str(caught.value) and "admin" not in str(caught.value)


def test_the_environment_sets_it_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIEN_VIDEO_CONFIG", json.dumps(CAMERA))
    video = AlienConfig().video_config
    assert video is not None and video.body() == CAMERA


async def test_a_key_that_cannot_write_entities_still_starts_with_saved_ids(
    make_emulator: Any, nats_server: Any, make_config: Callable[..., AlienConfig], caplog: pytest.LogCaptureFixture
) -> None:
    """The video sync is optional metadata: a 403 on it is a WARNING, never a failed start or a new entity."""
    from alien_testing.emulator.contract import SCOPE_ADMIN
    from alien_testing.emulator.server import DEFAULT_API_KEY

    read_only = "c4_test_" + "r" * 40
    emulator = make_emulator(
        dialect="v0.1",
        api_keys={DEFAULT_API_KEY: {SCOPE_ADMIN}, read_only: {"entities:read", "organizations:read", "nats:all"}},
    )
    async with AlienClient(make_config(emulator, nats_server, api_key=DEFAULT_API_KEY)) as first:
        entity_id = first.config.entity_id
    with caplog.at_level(logging.WARNING, logger="alien"):
        async with AlienClient(make_config(emulator, nats_server, api_key=read_only, video_config=CAMERA)) as again:
            assert again.config.entity_id == entity_id
    assert [e["entity_id"] for e in emulator.entities()] == [entity_id]
    assert any("could not update the entity's video_config" in r.getMessage() for r in caplog.records)
