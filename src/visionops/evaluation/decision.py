"""The champion/challenger rule: a pure function so the notebook, the CLI, the local pipeline
and the Azure ML pipeline step decide identically and the rule table is unit-testable.

Both models are scored on the same frozen test split by the caller; this module only compares
numbers. A tie never promotes (no churn for nothing); with no champion, the challenger must
clear the floor.

Label sets: a challenger is compared only with a champion trained on the same ordered class list.
mAP over other classes measures another task, and a promoted model with other classes (or the
same names in another order) would silently change what every class id means to the endpoint's
clients. So when the caller passes both class lists and they differ, the outcome is "reject",
whatever the numbers, and the reason names both lists and says to register the challenger under
a new model name (a new name has no champion yet, so the floor decides there). The structured
fields `class_list_differs`, `challenger_classes` and `champion_classes` carry the same facts.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    challenger_classes: list[str] | None = None
    champion_classes: list[str] | None = None
    class_list_differs: bool = False

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
    challenger_classes: Sequence[str] | None = None,
    champion_classes: Sequence[str] | None = None,
    model_name: str | None = None,
    suggested_name: str | None = None,
) -> Decision:
    """Compare the challenger's metrics with the champion's (None when there is none yet).

    With both class lists given and different, reject without comparing (`champion` may then be
    None: a champion of another label set is not re-scored). `model_name` and `suggested_name`
    (a new model name to offer, e.g. `<dataset>-detector`) only word the reason.
    """
    if rule.metric not in challenger:
        raise KeyError(f"challenger metrics have no {rule.metric!r} (have: {sorted(challenger)})")
    new = float(challenger[rule.metric])
    sign = 1.0 if rule.direction == "maximize" else -1.0
    common = dict(
        metric=rule.metric, direction=rule.direction, challenger=new, min_gain=rule.min_gain, floor=rule.floor,
        challenger_version=challenger_version, champion_version=champion_version,
        challenger_classes=None if challenger_classes is None else list(challenger_classes),
        champion_classes=None if champion_classes is None else list(champion_classes),
    )
    if (
        challenger_classes is not None
        and champion_classes is not None
        and list(challenger_classes) != list(champion_classes)
    ):
        reason = class_list_reason(challenger_classes, champion_classes, champion_version, model_name, suggested_name)
        return Decision(outcome="reject", reason=reason, champion=None, gain=None, class_list_differs=True, **common)
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


SHOWN_CLASSES = 6  # names shown per list in a reason; the decision's fields carry the full lists


def short_list(names: Sequence[str], limit: int = SHOWN_CLASSES) -> str:
    """`[a, b, c]`, or the first `limit` names and how many more: a reason stays one readable line."""
    shown = ", ".join(names[:limit])
    more = f", ... (+{len(names) - limit} more, {len(names)} in all)" if len(names) > limit else ""
    return f"[{shown}{more}]"


def class_list_reason(
    challenger: Sequence[str],
    champion: Sequence[str],
    champion_version: str | None = None,
    model_name: str | None = None,
    suggested_name: str | None = None,
) -> str:
    """Why a challenger is not compared with this champion, and what to do instead."""
    who = f"model {model_name!r}" if model_name else "the model"
    version = f" v{champion_version}" if champion_version else ""
    added = [c for c in challenger if c not in set(champion)]
    dropped = [c for c in champion if c not in set(challenger)]
    if not added and not dropped:
        diff = "the same names in another order (class ids would change meaning)"
    else:
        parts = []
        if added:
            parts.append(f"adds {short_list(added)}")
        if dropped:
            parts.append(f"drops {short_list(dropped)}")
        diff = "the challenger " + " and ".join(parts)
    fresh = suggested_name if suggested_name and suggested_name != model_name else "<dataset>-detector"
    example = f"e.g. {fresh!r}"
    return (
        f"class list differs: the champion{version} of {who} was trained on {len(champion)} classes "
        f"{short_list(champion)}, the challenger on {len(challenger)} classes {short_list(challenger)}; "
        f"{diff}. Metrics across label sets are not comparable, so the challenger is not promoted over "
        f"this champion: register it under a new model name ({example}; setting model_name / "
        "VISIONOPS_MODEL_NAME)"
    )
