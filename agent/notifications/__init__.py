"""Notifications as Argo CD users know them: triggers, templates, services and subscriptions.

Pure (no I/O):
    expressions    Jinja2 sandbox: `when` / `once_per` expressions and templates, checked at load
    catalog        the built-in triggers and templates (Argo CD's catalog, in Jinja2)
    context        the Argo-CD-shaped `app` a condition or template sees, from spec and AppState
    triggers       which triggers fire between two stored states, and the marks that make
                   each notification go out once
    subscriptions  who hears of a trigger: configured subscriptions and Argo CD's annotations
    settings       `[notifications]` as frozen, compiled values (agent.config builds them)

Effects, at the edge:
    delivery       bounded, non-blocking delivery with timeouts, retries and backoff
    services       Slack, email (SMTP), webhooks
    center         the hook the app table calls when it stores a state

Nothing here imports agent.config (agent.config imports the compiler from here).
"""

from agent.notifications.center import Notifications, Pending
from agent.notifications.settings import NotificationSettings

__all__ = ["NotificationSettings", "Notifications", "Pending"]
