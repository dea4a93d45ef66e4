"""The built-in triggers and templates: Argo CD's notifications catalog, in Jinja2.

Same names, conditions and oncePer keys as Argo CD's `notifications_catalog`, with three
deliberate differences (each documented in docs/notifications.md):

- `on-health-degraded` has no oncePer: Argo CD keys it by the synced revision, so a second
  degradation of the same revision (Degraded → Healthy → Degraded) was never reported.
  Here it is reported each time health becomes Degraded.
- `on-created` / `on-deleted` have no oncePer either: Argo CD forgets an Application's marks
  with the object; here an app's state (and marks) outlives its removal, so the conditions
  re-arm instead (`on-created` holds while the app is not being deleted).
- `on-deployed` is "the sync succeeded and the app is Healthy", once per revision: a
  sync here ends only after each wave it applied became healthy, so Argo CD's
  comparison of health and operation timestamps is not needed.

Templates link to `context.argocdUrl` only when it is set.
"""

from __future__ import annotations

from dataclasses import dataclass

REVISION = "app.status.operationState.syncResult.revision"
_OPERATION = "app.status.operationState != nil and app.status.operationState.phase in "


@dataclass(frozen=True)
class CatalogTrigger:
    name: str
    when: str
    send: tuple[str, ...]
    once_per: str = ""
    description: str = ""


@dataclass(frozen=True)
class CatalogTemplate:
    name: str
    message: str
    email_subject: str
    slack_attachments: str = ""


TRIGGERS = (
    CatalogTrigger("on-created", "app.metadata.deletionTimestamp == nil", ("app-created",),
                   description="Application is created."),
    CatalogTrigger("on-deleted", "app.metadata.deletionTimestamp != nil", ("app-deleted",),
                   description="Application is deleted."),
    CatalogTrigger("on-deployed", _OPERATION + "['Succeeded'] and app.status.health.status == 'Healthy'",
                   ("app-deployed",), REVISION,
                   "Application is synced and healthy. Triggered once per commit."),
    CatalogTrigger("on-health-degraded", "app.status.health.status == 'Degraded'", ("app-health-degraded",),
                   description="Application has degraded"),
    CatalogTrigger("on-sync-failed", _OPERATION + "['Error', 'Failed']", ("app-sync-failed",), REVISION,
                   "Application syncing has failed"),
    CatalogTrigger("on-sync-running", _OPERATION + "['Running']", ("app-sync-running",), REVISION,
                   "Application is being synced"),
    CatalogTrigger("on-sync-status-unknown", "app.status.sync.status == 'Unknown'", ("app-sync-status-unknown",),
                   REVISION, "Application status is 'Unknown'"),
    CatalogTrigger("on-sync-succeeded", _OPERATION + "['Succeeded']", ("app-sync-succeeded",), REVISION,
                   "Application syncing has succeeded"),
)

_LINK = "{% if context.argocdUrl %}{{ context.argocdUrl }}/applications/{{ app.metadata.name }}{% endif %}"
_DETAILS = "{% if context.argocdUrl %}\nApplication details: " + _LINK + ".{% endif %}"
_OPERATION_DETAILS = ("{% if context.argocdUrl %}\nSync operation details are available at: " + _LINK
                      + "?operation=true .{% endif %}")
_SLACK = "{% if serviceType == 'slack' %}{} {% endif %}"

_SYNC_STATUS = '{"title": "Sync Status", "value": {{ app.status.sync.status | tojson }}, "short": true}'
_HEALTH_STATUS = '{"title": "Health Status", "value": {{ app.status.health.status | tojson }}, "short": true}'
_REPOSITORY = ('{"title": "Repository", "value": {{ (":arrow_heading_up: " ~ app.spec.source.repoURL) | tojson }},'
               ' "short": true}')
_REVISION = '{"title": "Revision", "value": {{ app.status.sync.revision | tojson }}, "short": true}'


def _attachments(color: str, *fields: str) -> str:
    """Argo CD's Slack attachment: the app, a colour, some fields, then every condition."""
    return (
        '[{"title": {{ app.metadata.name | tojson }},'
        '{% if context.argocdUrl %} "title_link": {{ (context.argocdUrl ~ "/applications/" ~ app.metadata.name)'
        ' | tojson }},{% endif %}'
        f' "color": "{color}", "fields": [' + ", ".join(fields)
        + '{% for c in app.status.conditions %}, {"title": {{ c.type | tojson }}, "value": {{ c.message | tojson }},'
        ' "short": true}{% endfor %}]}]'
    )


TEMPLATES = (
    CatalogTemplate("app-created", "Application {{ app.metadata.name }} has been created.",
                    "Application {{ app.metadata.name }} has been created."),
    CatalogTemplate("app-deleted", "Application {{ app.metadata.name }} has been deleted.",
                    "Application {{ app.metadata.name }} has been deleted."),
    CatalogTemplate(
        "app-deployed",
        _SLACK.replace("{}", ":white_check_mark:")
        + "Application {{ app.metadata.name }} is now running new version of deployments manifests.",
        "New version of an application {{ app.metadata.name }} is up and running.",
        _attachments("#18be52", _SYNC_STATUS, _REPOSITORY, _REVISION)),
    CatalogTemplate(
        "app-health-degraded",
        _SLACK.replace("{}", ":exclamation:") + "Application {{ app.metadata.name }} has degraded." + _DETAILS,
        "Application {{ app.metadata.name }} has degraded.",
        _attachments("#f4c030", _HEALTH_STATUS, _REPOSITORY)),
    CatalogTemplate(
        "app-sync-failed",
        _SLACK.replace("{}", ":exclamation:") + "The sync operation of application {{ app.metadata.name }} has "
        "failed at {{ app.status.operationState.finishedAt }} with the following error: "
        "{{ app.status.operationState.message }}" + _OPERATION_DETAILS,
        "Failed to sync application {{ app.metadata.name }}.",
        _attachments("#E96D76", _SYNC_STATUS, _REPOSITORY)),
    CatalogTemplate(
        "app-sync-running",
        "The sync operation of application {{ app.metadata.name }} has started at "
        "{{ app.status.operationState.startedAt }}." + _OPERATION_DETAILS,
        "Start syncing application {{ app.metadata.name }}.",
        _attachments("#0DADEA", _SYNC_STATUS, _REPOSITORY)),
    CatalogTemplate(
        "app-sync-status-unknown",
        _SLACK.replace("{}", ":exclamation:") + "Application {{ app.metadata.name }} sync is 'Unknown'." + _DETAILS
        + "{% if serviceType != 'slack' %}{% for c in app.status.conditions %}\n* {{ c.message }}{% endfor %}"
        "{% endif %}",
        "Application {{ app.metadata.name }} sync status is 'Unknown'",
        _attachments("#E96D76", _SYNC_STATUS, _REPOSITORY)),
    CatalogTemplate(
        "app-sync-succeeded",
        _SLACK.replace("{}", ":white_check_mark:") + "Application {{ app.metadata.name }} has been successfully "
        "synced at {{ app.status.operationState.finishedAt }}." + _OPERATION_DETAILS,
        "Application {{ app.metadata.name }} has been successfully synced.",
        _attachments("#18be52", _SYNC_STATUS, _REPOSITORY)),
)
