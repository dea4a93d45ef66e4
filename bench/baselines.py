"""What the agent is measured against: today's manual process and the bound the API server sets.

- kubectl: `kubectl apply --server-side -n NS -f apps/app-NNNN` once per app, one after another,
  with the cached kubectl of the local cluster (its discovery cache starts empty).
- raw: one aiohttp session sends the server-side-apply PATCHes the agent sends (field manager,
  force, the agent's label and tracking annotation) for every object, at --concurrency
  requests in flight; no reads, no diffs, no health.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from agent import APP_LABEL, FIELD_MANAGER, TRACKING_ANNOTATION
from agent.engine.desired import tracking_id
from agent.model import ObjectRef
from bench.apps import KIND_OF, Obj, app_dir, app_objects
from bench.console import BenchError, say
from bench.run import Bench


def placed(obj: Obj, namespace: str, app: str) -> Obj:
    """`obj` in `namespace`, labelled and annotated the way the agent applies it."""
    meta = dict(obj["metadata"], namespace=namespace)
    meta["labels"] = {**meta.get("labels", {}), APP_LABEL: app}
    meta["annotations"] = {TRACKING_ANNOTATION: tracking_id(app, ObjectRef.of({**obj, "metadata": meta}))}
    return {**obj, "metadata": meta}


async def run_kubectl(bench: Bench, args: argparse.Namespace) -> float:
    """Seconds for `kubectl apply --server-side -n NS -f apps/app-NNNN` for every app, one after another."""
    assert bench.cluster is not None
    namespace = await bench.namespace("kubectl")
    say(f"kubectl: {args.apps} x kubectl apply --server-side into {namespace}")
    kubectl = [str(bench.cluster.bin_dir / "kubectl"), "--kubeconfig", str(bench.cluster.kubeconfig),
               "--cache-dir", str(bench.tmp / "kubectl-cache")]
    started = time.monotonic()
    for index in range(1, args.apps + 1):
        path = bench.repo.workdir / "apps" / app_dir(index)
        proc = await asyncio.create_subprocess_exec(
            *kubectl, "apply", "--server-side", "-n", namespace, "-f", str(path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, stderr = await proc.communicate()
        if proc.returncode != 0:
            raise BenchError(f"kubectl apply -f {path} exited {proc.returncode}: {stderr.decode().strip()}")
    return time.monotonic() - started


async def run_raw(bench: Bench, args: argparse.Namespace) -> float:
    """Seconds to send every object's server-side-apply PATCH (as the agent sends it) at --concurrency."""
    namespace = await bench.namespace("raw")
    say(f"raw: {args.apps * 4} server-side-apply PATCHes at concurrency {args.concurrency} into {namespace}")
    bodies = [placed(obj, namespace, f"{bench.prefix}r-{index:04d}")
              for index in range(1, args.apps + 1) for obj in app_objects(index)]
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    kube = bench.k
    params = {"fieldManager": FIELD_MANAGER, "force": "true"}
    headers = {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"}

    async def worker() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            meta = body["metadata"]
            assert isinstance(meta, dict)
            url = kube.server + KIND_OF[str(body["kind"])].path(meta["namespace"], meta["name"])
            async with kube.session.patch(url, data=json.dumps(body), params=params, headers=headers) as resp:
                text = await resp.read()
                if resp.status >= 300:
                    raise BenchError(f"raw PATCH {url}: HTTP {resp.status}: {text[:300]!r}")

    await kube.call("GET", "/version")  # open a connection first, as the agent has one before it applies
    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return time.monotonic() - started
