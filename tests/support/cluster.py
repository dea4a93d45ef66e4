"""The local Kubernetes control plane for tests, through ``scripts/local-cluster``.

Fixtures call :func:`ensure_cluster` (start it, or reuse one that already runs) and,
when ``started_here`` is true, :func:`stop_cluster` at the end. The script honours
``GITOPS_AGENT_CLUSTER_CACHE``, ``GITOPS_AGENT_CLUSTER_DIR`` and
``GITOPS_AGENT_CLUSTER_NODES`` from the environment. A `name` selects another,
independent cluster (``--name``); :func:`pause_cluster` stops one and keeps its data,
so that :func:`ensure_cluster` starts the same cluster again.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "local-cluster"


class KubectlError(subprocess.CalledProcessError):
    """A failed kubectl call; unlike its base class, the message includes kubectl's stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"


@dataclass(frozen=True)
class LocalCluster:
    kubeconfig: Path
    bin_dir: Path
    started_here: bool  # True when ensure_cluster() started it, so the caller should stop it
    name: str = ""  # empty: the default cluster; else the one `--name NAME` runs

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the cached kubectl against this cluster; output is captured as text."""
        cmd = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def compact_etcd(self) -> int:
        """Compact etcd up to its current revision, as the API server does every few minutes;
        returns that revision. A watch the API server serves from etcd (PodTemplates here, see
        scripts/local-cluster) from an older resourceVersion is then answered with 410 Gone."""
        ports = json.loads((self.kubeconfig.parent / "cluster.json").read_text())["ports"]
        base = f"http://127.0.0.1:{ports['etcd']}/v3/kv"
        revision = int(_etcd_call(f"{base}/range", {"key": "AA=="})["header"]["revision"])  # key "\0"
        _etcd_call(f"{base}/compaction", {"revision": revision})
        return revision


def _etcd_call(url: str, body: dict[str, object]) -> dict[str, Any]:
    """One request to etcd's JSON gateway."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def _script(verb: str, timeout: float | None = None, *, name: str = "",
            size: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), verb, *(["--name", name] if name else []), *(["--size", size] if size else [])],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
    )


def _checked(verb: str, timeout: float | None = None, *, name: str = "",
             size: str = "") -> subprocess.CompletedProcess[str]:
    proc = _script(verb, timeout, name=name, size=size)
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/local-cluster {verb} {name} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def _bin_dir() -> Path:
    """BIN_DIR from the `export PATH=BIN_DIR:"$PATH"` line that `local-cluster env` prints."""
    for line in _checked("env", timeout=30).stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and words[1].startswith("PATH="):
            return Path(words[1].removeprefix("PATH=").removesuffix(":$PATH"))
    raise RuntimeError("scripts/local-cluster env printed no PATH export")


def cached_binary(name: str) -> Path:
    """A binary from the local-cluster cache (kustomize, promtool, ...), without starting a cluster."""
    binary = _bin_dir() / name
    if not binary.is_file():
        raise RuntimeError(f"{binary} is missing: run `scripts/local-cluster build` (scripts/test does)")
    return binary


def ensure_cluster(name: str = "", *, size: str = "") -> LocalCluster:
    """Start the cluster (building the binaries on first use), start it again after `pause_cluster`,
    or reuse the running one. `size`: `large` for benchmarks of many apps (`local-cluster up --size`);
    a running cluster of another size is replaced."""
    already_running = _script("status", timeout=30, name=name).returncode == 0
    lines = _checked("up", name=name, size=size).stdout.strip().splitlines()  # no timeout: a cold build takes minutes
    if not lines:
        raise RuntimeError(f"scripts/local-cluster up {name} printed no kubeconfig path")
    return LocalCluster(kubeconfig=Path(lines[-1]), bin_dir=_bin_dir(), started_here=not already_running, name=name)


def pause_cluster(name: str = "") -> None:
    """Stop the cluster's processes and keep its data: `ensure_cluster` starts the same one again."""
    _checked("stop", timeout=60, name=name)


def stop_cluster(name: str = "") -> None:
    """Stop the cluster and remove its data directory (a no-op when nothing runs)."""
    _checked("down", timeout=60, name=name)
