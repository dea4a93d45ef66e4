"""Our users' own Argo CD definitions, verbatim from their design document (comments, trailing
spaces and all), kept as files under tests/fixtures/argocd-seed."""

from pathlib import Path

_SEED = Path(__file__).resolve().parents[1] / "fixtures" / "argocd-seed"

SEED_APPLICATION = (_SEED / "payment-service-app.yaml").read_text()
SEED_APP_PROJECT = (_SEED / "payments-project.yaml").read_text()
SEED_REPOSITORY_SECRET = (_SEED / "github-repo-secret.yaml").read_text()
