"""The champion/challenger rule as a table: direction, minimum gain, ties, the floor."""

from __future__ import annotations

import pytest

from visionops.evaluation.decision import DecisionRule, decide

MAX = DecisionRule(metric="map50_95", direction="maximize", min_gain=0.01, floor=0.5)
MIN = DecisionRule(metric="val_loss", direction="minimize", min_gain=0.01, floor=1.0)


@pytest.mark.parametrize(
    ("rule", "challenger", "champion", "outcome", "why"),
    [
        # maximize: higher is better
        (MAX, 0.70, 0.60, "promote", "better by 0.1000"),
        (MAX, 0.61, 0.60, "promote", "better by 0.0100"),  # exactly the minimum gain
        (MAX, 0.605, 0.60, "reject", "less than the minimum gain"),
        (MAX, 0.60, 0.60, "reject", "tie"),
        (MAX, 0.55, 0.60, "reject", "worse than the champion"),
        # minimize: lower is better, same gain semantics
        (MIN, 0.40, 0.50, "promote", "better by 0.1000"),
        (MIN, 0.495, 0.50, "reject", "less than the minimum gain"),
        (MIN, 0.50, 0.50, "reject", "tie"),
        (MIN, 0.60, 0.50, "reject", "worse than the champion"),
        # no champion: the floor decides, inclusive
        (MAX, 0.50, None, "promote", "clears the floor"),
        (MAX, 0.49, None, "reject", "misses the floor"),
        (MIN, 1.00, None, "promote", "clears the floor"),
        (MIN, 1.20, None, "reject", "misses the floor"),
    ],
)
def test_rule_table(rule, challenger, champion, outcome, why):
    champ = None if champion is None else {rule.metric: champion}
    d = decide({rule.metric: challenger, "other": 1.0}, champ, rule)
    assert d.outcome == outcome
    assert why in d.reason
    assert d.promote is (outcome == "promote")
    assert d.challenger == challenger and d.champion == champion
    if champion is not None:
        sign = 1 if rule.direction == "maximize" else -1
        assert d.gain == pytest.approx(sign * (challenger - champion))


def test_tie_never_promotes_even_with_zero_min_gain():
    rule = DecisionRule(min_gain=0.0, floor=0.0)
    assert decide({"map50_95": 0.3}, {"map50_95": 0.3}, rule).outcome == "reject"
    assert decide({"map50_95": 0.3000001}, {"map50_95": 0.3}, rule).outcome == "promote"


def test_float_dust_does_not_flip_an_exact_minimum_gain():
    rule = DecisionRule(min_gain=0.05, floor=0.0)
    assert decide({"map50_95": 0.30}, {"map50_95": 0.25}, rule).outcome == "promote"  # 0.30-0.25 = 0.04999...


def test_missing_metric_names_the_metric():
    with pytest.raises(KeyError, match="map50_95"):
        decide({"map50": 0.5}, None, DecisionRule())
    with pytest.raises(KeyError, match="champion metrics"):
        decide({"map50_95": 0.5}, {"map50": 0.5}, DecisionRule())


def test_versions_are_recorded():
    d = decide({"map50_95": 0.7}, {"map50_95": 0.6}, MAX, challenger_version="2", champion_version="1")
    assert (d.challenger_version, d.champion_version) == ("2", "1")
    assert d.model_dump()["outcome"] == "promote"
