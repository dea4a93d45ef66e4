"""Health of live objects, with Argo CD's semantics: pure functions over plain dicts.

    object_health(obj, rules=())   one live object (None: not in the cluster) → Health
    HealthAssessor(rules)          the same, with `[[health_checks]]` rules built once
    aggregate(statuses)            app health: the worst of its resources
    wave_health(live, rules=())    may the sync start the next wave? → WaveHealth

Modules: `workloads` (Deployment … CronJob), `core` (Service … CustomResourceDefinition),
`custom` (condition-based rule for custom resources and overrides), `assess` (dispatch).
A check that cannot decide returns Unknown with a message; nothing here raises.
"""

from agent.engine.health._common import Health
from agent.engine.health.assess import (
    CHECKS,
    HealthAssessor,
    WaveHealth,
    aggregate,
    object_health,
    wave_health,
    wave_status,
)
from agent.engine.health.custom import HealthRule, condition_health

__all__ = [
    "CHECKS",
    "Health",
    "HealthAssessor",
    "HealthRule",
    "WaveHealth",
    "aggregate",
    "condition_health",
    "object_health",
    "wave_health",
    "wave_status",
]
