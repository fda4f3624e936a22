"""The champion/challenger rule: a pure function so the notebook, the CLI, the local pipeline
and the Azure ML pipeline step decide identically and the rule table is unit-testable.

Both models are scored on the same frozen test split by the caller; this module only compares
numbers. A tie never promotes (no churn for nothing); with no champion, the challenger must
clear the floor.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Direction = Literal["maximize", "minimize"]
Outcome = Literal["promote", "reject"]


class DecisionRule(BaseModel):
    metric: str = Field("map50_95", description="Metric both models are compared on.")
    direction: Direction = Field("maximize", description="maximize (mAP, recall) or minimize (a loss).")
    min_gain: float = Field(0.0, ge=0, description="Smallest improvement that promotes (absolute units).")
    floor: float = Field(0.3, description="The first model must reach at least this (or at most, minimizing).")


class Decision(BaseModel):
    outcome: Outcome
    reason: str
    metric: str
    direction: Direction
    challenger: float
    champion: float | None
    gain: float | None
    min_gain: float
    floor: float
    challenger_version: str | None = None
    champion_version: str | None = None

    @property
    def promote(self) -> bool:
        return self.outcome == "promote"


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    rule: DecisionRule,
    *,
    challenger_version: str | None = None,
    champion_version: str | None = None,
) -> Decision:
    """Compare the challenger's metrics with the champion's (None when there is none yet)."""
    if rule.metric not in challenger:
        raise KeyError(f"challenger metrics have no {rule.metric!r} (have: {sorted(challenger)})")
    new = float(challenger[rule.metric])
    sign = 1.0 if rule.direction == "maximize" else -1.0
    common = dict(
        metric=rule.metric, direction=rule.direction, challenger=new, min_gain=rule.min_gain, floor=rule.floor,
        challenger_version=challenger_version, champion_version=champion_version,
    )
    if champion is None:
        clears = sign * (new - rule.floor) >= 0
        cmp = ">=" if rule.direction == "maximize" else "<="
        reason = (
            f"no champion yet; {rule.metric}={new:.4f} {'clears' if clears else 'misses'} the floor "
            f"({cmp} {rule.floor:.4f})"
        )
        return Decision(outcome="promote" if clears else "reject", reason=reason, champion=None, gain=None, **common)
    if rule.metric not in champion:
        raise KeyError(f"champion metrics have no {rule.metric!r} (have: {sorted(champion)})")
    old = float(champion[rule.metric])
    gain = round(sign * (new - old), 12)  # positive = better, whatever the direction; no float dust
    promote = gain > 0 and gain >= rule.min_gain
    if gain <= 0:
        why = "tie: the champion stays" if gain == 0 else "worse than the champion"
    elif gain < rule.min_gain:
        why = f"better by {gain:.4f}, less than the minimum gain {rule.min_gain:.4f}"
    else:
        why = f"better by {gain:.4f} (minimum gain {rule.min_gain:.4f})"
    reason = f"{rule.metric}: challenger {new:.4f} vs champion {old:.4f} ({rule.direction}); {why}"
    return Decision(outcome="promote" if promote else "reject", reason=reason, champion=old, gain=gain, **common)
