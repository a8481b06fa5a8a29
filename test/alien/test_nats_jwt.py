"""alien_testing.nats_jwt mints what nats-server's operator mode expects (checked without a server)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import nkeys
import pytest

from alien_testing.nats_jwt import NKey, OperatorTrust, new_nkey, user_jwt, write_creds


def _decode(part: str) -> Any:
    assert "=" not in part  # base64url without padding
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _verified_claims(token: str, issuer: NKey) -> dict[str, Any]:
    """The claims of `token` after checking its header and `issuer`'s signature over header.payload."""
    header, payload, signature = token.split(".")
    assert _decode(header) == {"typ": "JWT", "alg": "ed25519-nkey"}
    pair = nkeys.from_seed(bytearray(issuer.seed.encode()))
    assert pair.verify(f"{header}.{payload}".encode(), base64.urlsafe_b64decode(signature + "=="))
    claims: dict[str, Any] = _decode(payload)
    assert claims["iss"] == issuer.public
    assert claims["nats"]["version"] == 2
    return claims


@pytest.fixture(scope="module")
def trust() -> OperatorTrust:
    return OperatorTrust(account_name="FLEET")


def test_nkeys_have_the_prefix_of_their_role() -> None:
    for role, prefix in (("operator", "O"), ("account", "A"), ("user", "U")):
        key = new_nkey(role)  # type: ignore[arg-type]
        assert key.public.startswith(prefix)
        assert key.seed.startswith("S" + prefix)
        assert bytes(nkeys.from_seed(bytearray(key.seed.encode())).public_key).decode() == key.public
        assert key.seed not in repr(key)


def test_operator_is_self_signed_and_names_the_system_account(trust: OperatorTrust) -> None:
    claims = _verified_claims(trust.operator_jwt, trust.operator)
    assert claims["sub"] == trust.operator.public
    assert claims["nats"]["type"] == "operator"
    assert claims["nats"]["system_account"] == trust.system_account.public


def test_accounts_are_signed_by_the_operator_and_only_the_application_one_has_jetstream(
    trust: OperatorTrust,
) -> None:
    account = _verified_claims(trust.account_jwt, trust.operator)
    assert (account["sub"], account["name"], account["nats"]["type"]) == (trust.account.public, "FLEET", "account")
    limits = account["nats"]["limits"]
    assert limits["mem_storage"] == limits["disk_storage"] == limits["streams"] == limits["consumer"] == -1
    assert limits["conn"] == limits["subs"] == limits["payload"] == -1
    system = _verified_claims(trust.system_account_jwt, trust.operator)
    assert system["sub"] == trust.system_account.public
    assert "mem_storage" not in system["nats"]["limits"]
    assert "disk_storage" not in system["nats"]["limits"]


def test_user_is_signed_by_the_account_with_its_permissions(trust: OperatorTrust) -> None:
    user, token = trust.user(name="robot-1", pub_deny=["constellation.telemetry.>"], sub_allow=["_INBOX.>"])
    claims = _verified_claims(token, trust.account)
    assert (claims["sub"], claims["name"], claims["nats"]["type"]) == (user.public, "robot-1", "user")
    assert claims["nats"]["pub"] == {"deny": ["constellation.telemetry.>"]}
    assert claims["nats"]["sub"] == {"allow": ["_INBOX.>"]}
    assert "exp" not in claims
    assert user_jwt(user, trust.account, expires=2_000_000_000).count(".") == 2


def test_jti_is_the_hash_of_the_standard_claims(trust: OperatorTrust) -> None:
    claims = _verified_claims(trust.account_jwt, trust.operator)
    standard = {key: claims[key] for key in ("iat", "iss", "name", "sub")}
    digest = hashlib.new("sha512_256", json.dumps(standard, separators=(",", ":")).encode()).digest()
    assert claims["jti"] == base64.b32encode(digest).decode().rstrip("=")


def test_a_wrong_signing_key_does_not_verify(trust: OperatorTrust) -> None:
    _, token = trust.user()
    with pytest.raises(nkeys.ErrInvalidSignature):
        _verified_claims(token, trust.system_account)


def test_creds_file_layout_and_mode(trust: OperatorTrust, tmp_path: Path) -> None:
    user, token = trust.user()
    path = tmp_path / "robot.creds"
    path.write_text("old")
    path.chmod(0o644)
    write_creds(path, token, user.seed)
    assert path.stat().st_mode & 0o777 == 0o600
    lines = path.read_text().splitlines()
    jwt_at = lines.index("-----BEGIN NATS USER JWT-----")
    assert lines[jwt_at + 1 : jwt_at + 3] == [token, "------END NATS USER JWT------"]
    seed_at = lines.index("-----BEGIN USER NKEY SEED-----")
    assert lines[seed_at + 1 : seed_at + 3] == [user.seed, "------END USER NKEY SEED------"]
    made = trust.write_user_creds(tmp_path / "sub" / "other.creds")
    assert made.stat().st_mode & 0o777 == 0o600


def test_server_config_trusts_the_operator_and_preloads_both_accounts(trust: OperatorTrust) -> None:
    config = trust.server_config()
    assert f'operator: "{trust.operator_jwt}"' in config.splitlines()
    assert f'system_account: "{trust.system_account.public}"' in config.splitlines()
    assert "resolver: MEMORY" in config.splitlines()
    assert f'  {trust.account.public}: "{trust.account_jwt}"' in config.splitlines()
    assert f'  {trust.system_account.public}: "{trust.system_account_jwt}"' in config.splitlines()
    for key in (trust.operator, trust.account, trust.system_account):
        assert key.seed not in config
        assert key.seed not in repr(trust)
