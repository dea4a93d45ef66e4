"""`spec.syncPolicy` and `spec.ignoreDifferences` of an Application → SyncPolicy, IgnoreDifference."""

from __future__ import annotations

from agent.argocd.durations import parse_go_duration
from agent.argocd.fields import Fields
from agent.engine.ignore import jq_problem
from agent.model import APP_SYNC_OPTIONS, REFUSED_SYNC_OPTIONS, IgnoreDifference, RetryPolicy, SyncPolicy

# Boolean options spelled with their default value: Argo CD accepts them and so does an
# Application here, as what happens anyway (`ServerSideApply=false` included: objects are
# always written with server-side apply, which an Application need not know).
_DEFAULT_SPELLINGS = frozenset(
    key + ("=false" if value == "true" else "=true")
    for key, _, value in (option.partition("=") for option in APP_SYNC_OPTIONS) if value in ("true", "false")
)

# Argo CD's retry defaults (pkg/apis/application/v1alpha1 application_defaults.go).
DEFAULT_BACKOFF_DURATION = 5.0
DEFAULT_BACKOFF_FACTOR = 2
DEFAULT_BACKOFF_MAX_DURATION = 180.0


def parse_sync_policy(fields: Fields | None) -> SyncPolicy:
    """No `syncPolicy` (or no `automated` in it): manual sync only, as in Argo CD."""
    if fields is None:
        return SyncPolicy(automated=False)
    automated = fields.sub("automated")
    enabled = prune = self_heal = allow_empty = False
    if automated is not None:
        enabled = automated.boolean("enabled", True)
        prune = automated.boolean("prune")
        self_heal = automated.boolean("selfHeal")
        allow_empty = automated.boolean("allowEmpty")
        automated.finish()
    options = _sync_options(fields)
    retry = fields.sub("retry")
    fields.refuse(["managedNamespaceMetadata"], "is not supported yet")
    policy = SyncPolicy(automated=enabled, prune=prune, self_heal=self_heal, allow_empty=allow_empty,
                        options=options, retry=_retry(retry) if retry is not None else RetryPolicy())
    fields.finish()
    return policy


def _sync_options(fields: Fields) -> frozenset[str]:
    options = set()
    for index, option in enumerate(fields.strings("syncOptions")):
        if option in APP_SYNC_OPTIONS:
            options.add(option)
        elif option in REFUSED_SYNC_OPTIONS and option not in _DEFAULT_SPELLINGS:
            raise fields.unsupported(f"syncOptions[{index}]", f"{option!r} is not supported: "
                                                            f"{REFUSED_SYNC_OPTIONS[option]}")
        elif option not in _DEFAULT_SPELLINGS:
            known = ", ".join(sorted(APP_SYNC_OPTIONS))
            raise fields.unsupported(f"syncOptions[{index}]", f"{option!r} is not supported (supported: {known})")
    return frozenset(options)


def _retry(fields: Fields) -> RetryPolicy:
    limit = fields.integer("limit", 0)
    if limit < 0:
        raise fields.unsupported("limit", f"{fields.field('limit')}: unlimited retries ({limit}) are not supported; "
                                          "give a number of retries")
    fields.refuse(["refresh"], "(retrying with a newer revision) is not supported yet")
    backoff = fields.sub("backoff")
    duration, factor, max_duration = DEFAULT_BACKOFF_DURATION, DEFAULT_BACKOFF_FACTOR, DEFAULT_BACKOFF_MAX_DURATION
    if backoff is not None:
        duration = _duration(backoff, "duration", duration)
        factor = backoff.integer("factor", factor)
        if factor < 1:
            raise backoff.invalid("factor", f"must be at least 1, not {factor}")
        max_duration = _duration(backoff, "maxDuration", max_duration)
        backoff.finish()
    fields.finish()
    return RetryPolicy(limit=limit, backoff_duration=duration, backoff_factor=float(factor),
                       backoff_max_duration=max_duration)


def _duration(fields: Fields, key: str, default: float) -> float:
    text = fields.string(key)
    if not text:
        return default
    try:
        return parse_go_duration(text)
    except ValueError as exc:
        raise fields.invalid(key, str(exc)) from exc


def parse_ignore_differences(items: list[Fields]) -> tuple[IgnoreDifference, ...]:
    return tuple(_ignore_difference(item) for item in items)


def _ignore_difference(fields: Fields) -> IgnoreDifference:
    rule = IgnoreDifference(
        kind=fields.string("kind", required=True),
        group=fields.string("group"),
        name=fields.string("name"),
        namespace=fields.string("namespace"),
        json_pointers=tuple(fields.strings("jsonPointers")),
        managed_fields_managers=tuple(fields.strings("managedFieldsManagers")),
        jq_path_expressions=tuple(fields.strings("jqPathExpressions")),
    )
    for index, pointer in enumerate(rule.json_pointers):
        if not pointer.startswith("/"):
            raise fields.invalid(f"jsonPointers[{index}]", f"{pointer!r} is not a JSON pointer (it starts with '/')")
    for index, expression in enumerate(rule.jq_path_expressions):
        if problem := jq_problem(expression):
            raise fields.invalid(f"jqPathExpressions[{index}]", problem)
    if not rule.json_pointers and not rule.managed_fields_managers and not rule.jq_path_expressions:
        raise fields.invalid("jsonPointers", "give jsonPointers, jqPathExpressions or managedFieldsManagers")
    fields.finish()
    return rule
