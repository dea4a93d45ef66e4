"""What one scrape of /metrics costs at N apps: bytes, and CPU time of `Metrics.exposition()`.

In-process, no cluster: Metrics is filled as the controller fills it after every app was
synced once (status, reconciles, one sync, one render, and the API requests one sync of
four objects sends: a dry-run apply, an apply and a read-back of each), then scraped
`--repeat` times; the median is printed, for both families and for each alone.

    python -m bench.metrics_scrape --apps 1000
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from collections.abc import Sequence

from agent.config import AppSpec
from agent.kube import KubeRequest
from agent.metrics import Metrics
from agent.model import AppStatus, HealthStatus, OperationPhase, Revision, SyncStatus

RESOURCES = (("", "ServiceAccount", "serviceaccounts"), ("", "ConfigMap", "configmaps"),
             ("", "Service", "services"), ("apps", "Deployment", "deployments"))
REPO = "https://git.example.com/payments/gitops.git"


def filled(apps: int, families: Sequence[str]) -> Metrics:
    metrics = Metrics(namespace="gitops-agent", families=families)
    revision = Revision(sha="a" * 40, ref="main")
    for index in range(apps):
        name, namespace = f"app-{index:04d}", f"team-{index % 20:02d}"
        spec = AppSpec(name=name, repo=REPO, path=f"apps/{name}", namespace=namespace)
        with metrics.requests_for(name, dry_run=False):
            for group, kind, plural in RESOURCES:
                base = f"/apis/{group}/v1" if group else "/api/v1"
                path = f"{base}/namespaces/{namespace}/{plural}/{name}"
                for verb in ("patch", "patch", "get"):
                    metrics.observe_kube_request(KubeRequest(verb, kind, path, 200))
        metrics.observe_render(name, "rendered", 0.05)
        metrics.observe_reconcile(name, "synced", 0.4)
        metrics.observe_reconcile(name, "compared", 0.01)
        metrics.observe_sync(name, OperationPhase.SUCCEEDED, 0.4)
        metrics.observe_status(AppStatus(name=name, sync_status=SyncStatus.SYNCED, health_status=HealthStatus.HEALTHY,
                                         revision=revision, reconciled_at=time.time()), app=spec)
    for request in ("ls-remote", "fetch"):
        metrics.observe_git_request(REPO, request, "succeeded", 0.2)
    return metrics


def measure(apps: int, families: Sequence[str], repeat: int) -> tuple[int, int, float]:
    """(bytes, bytes gzipped as /metrics serves them, median CPU seconds of one exposition)."""
    metrics = filled(apps, families)
    seconds = []
    body = b""
    for _ in range(repeat):
        started = time.process_time()
        body = metrics.exposition()
        seconds.append(time.process_time() - started)
    return len(body), len(gzip.compress(body, compresslevel=1)), statistics.median(seconds)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    print(f"| families ({args.apps} apps) | bytes | gzip bytes | CPU per scrape |")
    print("|---|---|---|---|")
    for families in (("gitops_agent", "argocd"), ("gitops_agent",), ("argocd",)):
        size, packed, seconds = measure(args.apps, families, args.repeat)
        print(f"| {' + '.join(families)} | {size / 1e6:.2f} MB | {packed / 1e3:.0f} kB | {seconds * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
