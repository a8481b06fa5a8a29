"""End-to-end encryption without a server: keys, the sealed-value format, what a device seals, the composer.

docs/encryption.md: keys are NKeys of the curve role (X... / SX...); a sealed value is
{"alg", "to": [{"kid", "ek"}], "nonce", "ct"}, bound to its context; tampering, a wrong key and
an unknown key id are refused with reasons that say which.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alien.delivery.outbox import Outbox
from alien.e2e import ALGORITHM, E2EError, E2EKeyError, Opener, Sealer, context, generate_keypair, is_sealed
from alien.e2e.fields import FieldSealer
from alien.e2e.keys import encode_public, private_key, public_key, public_key_of, read_seed_file
from alien.rate_limits import TelemetryLimiter
from alien.settings import TelemetrySettings
from alien.signing import generate_keypair as generate_signing_keypair
from alien.telemetry.composer import PENDING_EVENT, PENDING_READING, Composer
from alien.telemetry.wire_format import WireFormat

OPERATOR = generate_keypair()
OTHER = generate_keypair()
CAMERA = context("telemetry", "ent-1", "camera")


def opener(*pairs: Any) -> Opener:
    return Opener([private_key(pair.seed) for pair in pairs or (OPERATOR,)])


FACES = {"faces": 2}


def sealed(value: Any = FACES, aad: bytes = CAMERA, *readers: str) -> dict[str, Any]:
    return Sealer(readers or (OPERATOR.public_key,)).seal(value, aad)


def refused(value: Any, aad: bytes = CAMERA, with_opener: Opener | None = None) -> E2EError:
    with pytest.raises(E2EError) as raised:
        (with_opener or opener()).open(value, aad)
    return raised.value


# --- keys ---


def test_keys_are_curve_nkeys_whose_seed_gives_the_public_key() -> None:
    pair = generate_keypair()
    assert pair.public_key.startswith("X") and len(pair.public_key) == 56
    assert pair.seed.startswith("SX") and len(pair.seed) == 58
    assert public_key_of(pair.seed) == pair.public_key == encode_public(bytes(private_key(pair.seed).public_key))
    assert pair.seed not in repr(pair)
    assert bytes(public_key(pair.public_key)) == bytes(private_key(pair.seed).public_key)


def test_keys_of_other_roles_and_typos_are_refused_without_quoting_a_seed() -> None:
    signing = generate_signing_keypair()
    for text, message in (
        (signing.public_key, "operator (command-signing) key, not an encryption public key"),
        (OPERATOR.seed, "a seed (S...) was given where a public key (X...) belongs"),
        ("X" + OPERATOR.public_key[1:-1] + ("A" if OPERATOR.public_key[-1] != "A" else "B"), "bad length or checksum"),
        ("hello world", "not a key"),
    ):
        with pytest.raises(E2EKeyError, match=re.escape(message)) as raised:
            public_key(text)
        assert OPERATOR.seed not in str(raised.value)
    for seed, message in (
        (signing.seed, "an operator (command-signing) seed, not an encryption seed"),
        ("SU" + OPERATOR.seed[2:], "not an encryption seed"),  # the checksum no longer matches either
        ("not a seed", "not an encryption seed"),
    ):
        with pytest.raises(E2EKeyError, match=re.escape(message)) as raised:
            private_key(seed)
        assert seed not in str(raised.value)


def test_a_seed_file_is_read_named_in_errors_and_a_readable_one_warned_about(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "device.xk"
    path.write_text(OPERATOR.seed + "\n")
    path.chmod(0o600)
    assert bytes(read_seed_file(path, "ALIEN_E2E_DEVICE_SEED_FILE")) == bytes(private_key(OPERATOR.seed))
    assert "can be read by other users" not in caplog.text
    path.chmod(0o644)
    read_seed_file(path, "ALIEN_E2E_DEVICE_SEED_FILE")
    assert f"ALIEN_E2E_DEVICE_SEED_FILE: {path} can be read by other users (mode 644)" in caplog.text
    with pytest.raises(E2EKeyError, match=r"ALIEN_E2E_DEVICE_SEED_FILE: cannot read .*missing\.xk"):
        read_seed_file(tmp_path / "missing.xk", "ALIEN_E2E_DEVICE_SEED_FILE")
    signing_seed = generate_signing_keypair().seed
    path.write_text(signing_seed)
    with pytest.raises(E2EKeyError, match=r"device\.xk: an operator") as raised:
        read_seed_file(path, "ALIEN_E2E_DEVICE_SEED_FILE")
    assert signing_seed not in str(raised.value) and OPERATOR.seed not in caplog.text


# --- the format ---


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_any_json_value_seals_and_opens_as_it_was(value: Any) -> None:
    box = sealed(value)
    assert is_sealed(box) and set(box) == {"alg", "to", "nonce", "ct"} and box["alg"] == ALGORITHM
    assert opener().open(json.loads(json.dumps(box)), CAMERA) == value


def test_each_reader_opens_it_and_the_wire_names_each_by_its_public_key() -> None:
    box = sealed({"faces": 2}, CAMERA, OPERATOR.public_key, OTHER.public_key)
    assert [entry["kid"] for entry in box["to"]] == [OPERATOR.public_key, OTHER.public_key]
    assert opener(OPERATOR).open(box, CAMERA) == opener(OTHER).open(box, CAMERA) == {"faces": 2}
    assert opener(generate_keypair(), OTHER).open(box, CAMERA) == {"faces": 2}  # a reader's old and new keys


def test_a_content_key_serves_many_values_then_a_new_one_is_sealed() -> None:
    now = [0.0]
    sealer = Sealer([OPERATOR.public_key], key_uses=3, key_life_s=60, clock=lambda: now[0])
    boxes = [sealer.seal(i, CAMERA) for i in range(4)]
    assert [b["to"] == boxes[0]["to"] for b in boxes] == [True, True, True, False]  # 3 uses, then a new key
    assert len({b["nonce"] for b in boxes}) == 4  # a fresh nonce every time
    now[0] = 61.0
    late = sealer.seal(4, CAMERA)
    assert late["to"] != boxes[3]["to"] and sealer.keys_made == 3
    assert [opener().open(b, CAMERA) for b in [*boxes, late]] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "other",
    [
        context("telemetry", "ent-2", "camera"),  # another entity
        context("telemetry", "ent-1", "payload"),  # another key
        context("event", "ent-1", "camera"),  # another kind
        context("params", "ent-1", "camera"),
    ],
)
def test_a_value_moved_to_another_context_does_not_authenticate(other: bytes) -> None:
    error = refused(sealed(), other)
    assert error.reason == "authentication_failed" and "belongs to another field, entity or command" in error.detail


@pytest.mark.parametrize("field", ["ct", "nonce", "ek"])
def test_any_changed_byte_is_refused(field: str) -> None:
    box = sealed({"faces": 2, "names": ["a", "b"]})
    target = box["to"][0] if field == "ek" else box
    raw = base64.urlsafe_b64decode(target[field] + "==")
    for index in range(len(raw)):
        changed = bytearray(raw)
        changed[index] ^= 0x01
        target_copy = {**target, field: base64.urlsafe_b64encode(bytes(changed)).decode().rstrip("=")}
        tampered = {**box, "to": [target_copy]} if field == "ek" else target_copy
        assert refused(tampered).reason == "authentication_failed", (field, index)


def test_a_wrong_key_and_an_unknown_key_id_say_so() -> None:
    box = sealed()
    stranger = opener(OTHER)
    error = refused(box, with_opener=stranger)  # not one of its readers: the key ids tell
    assert error.reason == "not_for_us"
    assert (
        error.detail == f"encrypted for another key ({OPERATOR.public_key[:12]}...), not for {OTHER.public_key[:12]}..."
    )
    # the key id claims OTHER, but the content key was sealed to OPERATOR: a wrong key
    lying = {**box, "to": [{**box["to"][0], "kid": OTHER.public_key}]}
    error = refused(lying, with_opener=stranger)
    assert error.reason == "authentication_failed"
    assert f"the content key sealed for {OTHER.public_key[:12]}... does not open with that key" in error.detail
    unknown = {**box, "to": [{**box["to"][0], "kid": "XNOSUCHKEY"}]}
    assert refused(unknown).reason == "not_for_us"


@pytest.mark.parametrize(
    ("change", "reason", "words"),
    [
        ({"alg": "rsa-oaep"}, "unsupported_algorithm", "'rsa-oaep' is not x25519-sealedbox+xchacha20poly1305"),
        ({"alg": None}, "unsupported_algorithm", "is not"),
        ({"extra": 1}, "malformed", "unknown fields 'extra'"),
        ({"to": []}, "malformed", "'to' must list 1 to 64 readers"),
        ({"to": "X"}, "malformed", "'to' must list"),
        ({"to": [{"kid": OPERATOR.public_key, "ek": "AA"} for _ in range(65)]}, "malformed", "'to' must list"),
        ({"to": [{"kid": 1}]}, "malformed", "each entry of 'to'"),
        ({"to": [{"kid": OPERATOR.public_key, "ek": "!!"}]}, "malformed", "ek is not base64url"),
        ({"to": [{"kid": OPERATOR.public_key, "ek": "AAAA"}]}, "malformed", "ek is 3 bytes, not 80"),
        ({"nonce": "AAAA"}, "malformed", "nonce is 3 bytes, not 24"),
        ({"nonce": 7}, "malformed", "nonce is not base64url"),
        ({"ct": "AAAA"}, "malformed", "ct is shorter than the 16-byte tag"),
        ({"ct": "A"}, "malformed", "ct is not base64url"),
        ({"ct": "AB"}, "malformed", "not canonical"),
    ],
)
def test_malformed_values_are_refused_with_what_is_wrong(change: dict[str, Any], reason: str, words: str) -> None:
    error = refused({**sealed(), **change})
    assert error.reason == reason and words in error.detail


def test_not_a_sealed_value_and_too_deep_plaintext() -> None:
    assert not is_sealed({"faces": 2}) and not is_sealed("ct") and not is_sealed({"alg": 1, "ct": ""})
    assert refused(["not", "an", "object"]).reason == "malformed"
    deep: Any = 0
    for _ in range(40):
        deep = [deep]
    error = refused(sealed(deep))
    assert (error.reason, error.detail) == ("bad_plaintext", "the decrypted value nests deeper than 32")


def test_a_sealer_needs_readers_with_valid_keys() -> None:
    with pytest.raises(E2EKeyError, match="no reader"):
        Sealer([])
    with pytest.raises(E2EKeyError, match="operator"):
        Sealer([generate_signing_keypair().public_key])


# --- what a device seals ---


def test_only_the_chosen_keys_and_events_are_sealed() -> None:
    fields = FieldSealer(Sealer([OPERATOR.public_key]), ["camera", "payload"], ["door_opened"])
    reading = {"position": {"latitude": 1.0, "longitude": 2.0}, "battery_level": 80, "camera": {"faces": 2}, "speed": 3}
    assert fields.reading({"speed": 3}, "ent-1") == {"speed": 3}
    out = fields.reading(reading, "ent-1")
    assert list(out) == list(reading) and is_sealed(out["camera"])
    assert {k: v for k, v in out.items() if k != "camera"} == {k: v for k, v in reading.items() if k != "camera"}
    assert opener().open(out["camera"], CAMERA) == {"faces": 2}
    event = fields.event("door_opened", {"door": 1}, "ent-1")
    assert opener().open(event, context("event", "ent-1", "door_opened")) == {"door": 1}
    assert fields.event("door_closed", {"door": 1}, "ent-1") == {"door": 1}


@pytest.mark.parametrize("fmt", ["seed", "mavlink", "envelope_v1"])
async def test_a_reading_queued_before_registration_is_sealed_when_it_is_encoded(fmt: str) -> None:
    """Pending readings and events wait in clear on the robot's disk; the encoded ones are sealed.

    docs/encryption.md#what-it-does-not-do
    """
    ids: list[tuple[str, str] | None] = [None]
    outbox = Outbox(20)
    fields = FieldSealer(Sealer([OPERATOR.public_key]), ["camera"], ["door_opened"])
    wire_format = WireFormat(TelemetrySettings(telemetry_format=fmt), lambda: None)  # type: ignore[arg-type]
    composer = Composer(outbox, wire_format, lambda: ids[0], TelemetryLimiter(0, 0, 0, 0), fields)
    reading = {"position": {"latitude": 1.0, "longitude": 2.0}, "camera": {"faces": 2}}
    composer.telemetry(reading)
    composer.event("door_opened", {"door": 1})
    held: list[Any] = []
    outbox.resolve(held.append)  # returns None: each stays pending, as it is
    assert {m.subject for m in held} == {PENDING_READING, PENDING_EVENT}
    held_data = sorted((json.loads(m.payload)["data"] for m in held), key=len)
    assert held_data == [{"door": 1}, reading]
    ids[0] = ("org-1", "ent-1")
    composer.resolve()
    sent = await outbox.take(10)
    by_subject = {m.subject: json.loads(m.payload) for m in sent}
    door = by_subject["constellation.events.org-1.door_opened"]
    assert opener().open(door["data"], context("event", "ent-1", "door_opened")) == {"door": 1}
    if fmt == "seed":
        data = by_subject["constellation.telemetry.org-1.ent-1"]["data"]
    else:  # the MAVLink formats carry free-form keys in a telemetry event (docs/contract.md#mavlink-style-telemetry)
        data = by_subject["constellation.events.org-1.telemetry"]["data"]
    assert opener().open(data["camera"], CAMERA) == {"faces": 2}
    assert all(b'"faces"' not in m.payload for m in sent)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=120),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)
_GOOD = sealed({"faces": 2})


@given(
    field=st.sampled_from(["alg", "to", "nonce", "ct", "kid", "ek", "extra"]),
    value=_JSON | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=200),
)
def test_whatever_a_sender_puts_in_a_sealed_value_is_refused_with_a_reason_never_a_crash(
    field: str, value: Any
) -> None:
    box = json.loads(json.dumps(_GOOD))
    if field in ("kid", "ek"):
        box["to"][0][field] = value
    else:
        box[field] = value
    try:
        assert opener().open(box, CAMERA) == {"faces": 2}  # only an unchanged value may open
        assert box == _GOOD
    except E2EError as error:
        assert error.reason in {"malformed", "unsupported_algorithm", "not_for_us", "authentication_failed"}
