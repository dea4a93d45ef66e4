"""gitops-agent: keeps a Kubernetes cluster equal to what Git declares."""

__version__ = "0.1.0"

FIELD_MANAGER = "gitops-agent"
APP_LABEL = "gitops-agent.io/app"
TRACKING_ANNOTATION = "gitops-agent.io/tracking-id"
HOOK_LABEL = "gitops-agent.io/hook-of"  # on hook objects: the app whose sync created them (never APP_LABEL)
HOOK_TEMPLATE_ANNOTATION = "gitops-agent.io/hook-template"  # on hook objects: `<phase>:<group>/<kind>:<ns>/<template>`
