"""Bad retention configuration fails at load time with the dotted key and the rule."""

import pytest

from pipelines.config import Config, ConfigError


def _with(retention: dict) -> Config:
    return Config().with_overrides({"retention": retention})


def test_defaults_have_none_first():
    config = Config()
    assert config.retention.action_names[0] == "none"
    assert set(config.retention.action_names) == {"none", "coupon", "outreach", "recommendation"}


def test_unknown_action_in_rules_is_named():
    with pytest.raises(ConfigError, match="cold_start_rules: unknown action.*'sms_blast'"):
        _with({"cold_start_rules": {"high": "sms_blast"}})


def test_unknown_action_lookup_is_named():
    with pytest.raises(KeyError, match="unknown retention action 'gift'"):
        Config().retention.action("gift")


def test_negative_cost_is_refused():
    with pytest.raises(ConfigError, match=r"retention.actions.0.cost_per_contact: .*greater than or equal to 0"):
        _with({"actions": [{"name": "coupon", "cost_per_contact": -1.0}], "cold_start_rules": {}})


def test_budget_below_one_contact_is_refused():
    with pytest.raises(ConfigError, match="budget_per_run 0.01 is below one contact"):
        _with({"budget_per_run": 0.01})


@pytest.mark.parametrize("share", [0.0, 0.51, 1.0, -0.1])
def test_holdout_share_outside_range_is_refused(share):
    with pytest.raises(ConfigError, match="retention.holdout_share"):
        _with({"holdout_share": share})


def test_none_cannot_be_redefined():
    with pytest.raises(ConfigError, match="'none' is built in"):
        _with({"actions": [{"name": "none"}], "cold_start_rules": {}})


def test_min_risk_tier_must_exist():
    with pytest.raises(ConfigError, match="min_risk_tier 'extreme' is not a tier"):
        _with(
            {
                "actions": [{"name": "coupon", "min_risk_tier": "extreme"}],
                "cold_start_rules": {"high": "coupon", "medium": "none", "low": "none"},
            }
        )


def test_retention_has_its_own_exit_code():
    from pipelines.contract import ExitCode

    assert ExitCode.RETENTION.name == "RETENTION"  # not an alias of another code
    assert len(ExitCode.__members__) == len({int(code) for code in ExitCode.__members__.values()})
