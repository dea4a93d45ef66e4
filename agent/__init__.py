"""gitops-agent: keeps a Kubernetes cluster equal to what Git declares."""

__version__ = "0.1.0"

FIELD_MANAGER = "gitops-agent"
APP_LABEL = "gitops-agent.io/app"
TRACKING_ANNOTATION = "gitops-agent.io/tracking-id"
