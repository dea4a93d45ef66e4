"""Custom resources and every kind without a dedicated check: judged by a status condition.

Default rule, for any object without a built-in check:
- no `status` (or an empty one) → Healthy: many kinds never report one;
- `status.observedGeneration` (or the condition's own `observedGeneration`) behind
  `metadata.generation` → Progressing: the controller has not looked at this spec yet;
- condition `Ready`, else `Available`: True → Healthy, False → Degraded, Unknown → Progressing;
- neither condition → Healthy.

A `[[health_checks]]` rule for the object's group and kind (see `HealthRule`) names the
condition to read instead and which of its reasons mean Degraded or Progressing; with a
rule, a missing status or condition means Progressing (the rule says one will appear).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from agent.engine.health._common import (
    Health,
    condition,
    degraded,
    generation,
    healthy,
    integer,
    join,
    progressing,
    section,
    text,
)
from agent.model import KubeObject

DEFAULT_CONDITIONS = ("Ready", "Available")


class HealthRule(Protocol):
    """How to judge one group/kind by a condition; `agent.config.HealthCheckSpec` is one.

    `kind` may be `*` for every kind of the group. An empty `condition` keeps the default
    (`Ready`, else `Available`). When `degraded_reasons` is empty, a False condition is
    Degraded whatever its reason; when given, only those reasons are Degraded and any
    other not-True reason is Progressing. `progressing_reasons` are always Progressing.
    """

    @property
    def group(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def condition(self) -> str: ...

    @property
    def degraded_reasons(self) -> Collection[str]: ...

    @property
    def progressing_reasons(self) -> Collection[str]: ...


def condition_health(obj: KubeObject, rule: HealthRule | None = None) -> Health:
    """Health from `status.conditions`, by the default rule or by a configured one."""
    wanted = (rule.condition,) if rule is not None and rule.condition else DEFAULT_CONDITIONS
    strict = rule is not None and bool(rule.condition)
    status = section(obj, "status")
    if not status:
        return progressing(f"Waiting for condition {wanted[0]}") if strict else healthy()
    desired = generation(obj)
    observed = integer(status, "observedGeneration", desired)
    if observed < desired:
        return progressing(f"Waiting for the controller to observe generation {desired} (observed {observed})")
    cond = next((found for found in (condition(obj, kind) for kind in wanted) if found is not None), None)
    if cond is None:
        return progressing(f"Waiting for condition {wanted[0]}") if strict else healthy()
    kind = text(cond, "type")
    cond_observed = integer(cond, "observedGeneration", desired, where=f"status.conditions[{kind}]")
    if cond_observed < desired:
        return progressing(f"Waiting for condition {kind} to reflect generation {desired} (it shows {cond_observed})")
    state, reason = text(cond, "status"), text(cond, "reason")
    message = join(f"{kind}={state}", reason, text(cond, "message"))
    if state == "True":
        return healthy(text(cond, "message"))
    if rule is not None and reason in rule.progressing_reasons:
        return progressing(message)
    if rule is not None and rule.degraded_reasons:
        return degraded(message) if reason in rule.degraded_reasons else progressing(message)
    return degraded(message) if state == "False" else progressing(message)
