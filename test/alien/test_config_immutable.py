"""AlienConfig is immutable once validated; what registration learns lives in its identity.

docs/architecture.md#settings-and-identity
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alien import AlienConfig, ConfigError


@pytest.mark.parametrize(
    ("name", "value"),
    [("org_name", "Other Fleet"), ("request_attempts", 1), ("mothership_url", "http://127.0.0.1:1"), ("org_id", "o")],
)
def test_no_setting_can_be_assigned_after_validation(name: str, value: object) -> None:
    config = AlienConfig()
    before = config.model_dump()
    with pytest.raises(ConfigError, match=f"AlienConfig is immutable: {name} cannot be set"):
        setattr(config, name, value)
    assert config.model_dump() == before


def test_the_seed_names_org_id_and_entity_id_pin_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    given = AlienConfig(org_id="org-1", entity_id="ent-1")
    assert (given.org_id, given.entity_id) == ("org-1", "ent-1")
    assert given.identity.org_pinned and given.identity.entity_pinned
    monkeypatch.setenv("ALIEN_ORG_ID", "org-env")
    from_env = AlienConfig()
    assert (from_env.org_id, from_env.entity_id) == ("org-env", None)
    assert from_env.identity.org_pinned and not from_env.identity.entity_pinned
    monkeypatch.setenv("ORG_ID", "not-a-setting")  # only ALIEN_ORG_ID names it
    monkeypatch.delenv("ALIEN_ORG_ID")
    assert AlienConfig().org_id is None


def test_what_registration_learns_reads_through_the_config_and_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    config = AlienConfig(config_file=str(path), entity_name="hawk-1")
    settings = config.model_dump()
    config.identity.org_id, config.identity.entity_id, config.identity.dialect = "org-9", "ent-9", "v0.1"
    assert (config.org_id, config.entity_id, config.server_dialect) == ("org-9", "ent-9", "v0.1")
    assert config.model_dump() == settings  # the settings did not change
    config.save()
    again = AlienConfig(config_file=str(path))
    again.load()
    assert (again.org_id, again.entity_id, again.server_dialect) == ("org-9", "ent-9", "v0.1")


def test_derive_validates_and_gets_an_identity_of_its_own(tmp_path: Path) -> None:
    base = AlienConfig(config_file=str(tmp_path / "a.json"), org_name="Fleet A")
    base.identity.org_id = "org-learnt"
    derived = base.derive(entity_name="rover-2", org_id="org-pinned")
    assert (derived.org_name, derived.entity_name, derived.org_id) == ("Fleet A", "rover-2", "org-pinned")
    assert derived.identity is not base.identity and base.org_id == "org-learnt"
    assert {"org_name", "entity_name", "pinned_org_id"} <= derived.model_fields_set
    assert "request_attempts" not in derived.model_fields_set  # a default stays told apart from a setting
    with pytest.raises(ConfigError, match="ALIEN_REQUEST_ATTEMPTS"):
        base.derive(request_attempts=0)
    with pytest.raises(ConfigError, match="no setting 'entity_nmae'"):
        base.derive(entity_nmae="typo")
