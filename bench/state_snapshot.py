"""The state store's cost at N apps: full snapshots, a journal append and a load, from memory.

    python -m bench.state_snapshot [--apps 10000] [--repeat 5] [--dir PARENT]

Builds N AppStates shaped like what a cold sync of the benchmark apps (bench.apps) leaves
behind: four objects each, Synced and Healthy, created by one successful sync, with proofs,
inventory, kinds and one history entry. They go to a StateStore in a temporary directory
(under `--dir`, removed at the end), which then writes `--repeat` full snapshots (wall and
process CPU time of each), appends the records of 100 changed apps to its journal, and is
loaded again by a fresh StateStore (wall and CPU time). No cluster and no git server.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from agent.model import (
    AppliedVersion,
    AppState,
    AppStatus,
    Change,
    ChangeAction,
    ChangeSet,
    HealthStatus,
    HistoryEntry,
    InventoryEntry,
    LastSync,
    ObjectRef,
    OperationPhase,
    ResourceState,
    Revision,
    SyncStatus,
    SyncTrigger,
)
from agent.state.codec import state_from_dict, state_to_dict
from agent.state.snapshot import encode_json
from agent.state.store import StateStore

NAMESPACE = "bench"
KINDS = (("v1", "ServiceAccount"), ("v1", "ConfigMap"), ("v1", "Service"), ("apps/v1", "Deployment"))
CHANGED = 100  # apps whose records the journal append writes
STARTED = 1_760_000_000.123457  # time.time() values: full-precision floats, as a real run stores them


def _hex(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def app_state(index: int) -> AppState:
    """App `index` after its first sync (cold): four objects created, Synced and Healthy."""
    name = f"app-{index:05d}"
    at = STARTED + index * 0.0137913
    finished = at + 2.0517
    revision = Revision(sha=_hex("commit")[:40], ref="main", author="Dev <dev@example.com>",
                        message="10000 apps", committed_at=float(int(STARTED) - 60))
    objects = [(api_version, ObjectRef(api_version.rpartition("/")[0], kind, NAMESPACE, name))
               for api_version, kind in KINDS]
    refs = [ref for _, ref in objects]
    status = AppStatus(
        name=name, sync_status=SyncStatus.SYNCED, health_status=HealthStatus.HEALTHY, revision=revision,
        operation_phase=OperationPhase.SUCCEEDED,
        changes=ChangeSet(tuple(Change(ref, ChangeAction.CREATED) for ref in refs)), reconciled_at=finished + 0.0214,
        resources=tuple(ResourceState(ref, SyncStatus.SYNCED, HealthStatus.HEALTHY) for ref in refs))
    applied = {ref: AppliedVersion("sha256:" + _hex("desired", ref), str(100_000 + index * 4 + number),
                                   _hex("live", ref)) for number, ref in enumerate(refs)}
    history = HistoryEntry(id=1, revision=revision.sha, author=revision.author, message=revision.message,
                           trigger=SyncTrigger.AUTO, started=at, finished=finished, phase=OperationPhase.SUCCEEDED,
                           created=len(refs))
    return AppState(name=name, status=status, last_sync=LastSync(revision.sha, OperationPhase.SUCCEEDED, 1, finished),
                    tracked_sha=revision.sha, kinds=frozenset(KINDS), applied=applied,
                    inventory=tuple(InventoryEntry(api_version, ref) for api_version, ref in objects),
                    history=(history,), notified={})


def build(count: int) -> list[AppState]:
    """`count` apps; the first one's record must decode to the same state."""
    states = [app_state(index) for index in range(1, count + 1)]
    first = states[0]
    assert state_from_dict(first.name, state_to_dict(first)) == first, "record does not round-trip"
    return states


async def measure(states: list[AppState], directory: Path, repeat: int) -> list[tuple[str, str]]:
    store = StateStore(directory)
    started = time.monotonic()
    for state in states:
        store.update(state.name, state_to_dict(state))
    filled = time.monotonic() - started
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.monotonic(), time.process_time()
        assert await store.write(full=True), "full write failed"
        walls.append(time.monotonic() - wall)
        cpus.append(time.process_time() - cpu)
    snapshot = store.file.primary.stat().st_size
    for state in states[:CHANGED]:
        store.update(state.name, state_to_dict(replace(state, status=replace(state.status, reconciled_at=time.time()))))
    wall = time.monotonic()
    assert await store.write(), "journal append failed"
    appended = time.monotonic() - wall
    wall, cpu = time.monotonic(), time.process_time()
    loaded = await StateStore(directory).load()
    load_wall, load_cpu = time.monotonic() - wall, time.process_time() - cpu
    assert loaded.source == "primary" and len(loaded.states) == len(states), (loaded.source, len(loaded.states))
    record = sum(len(encode_json(state_to_dict(state))) for state in states) / len(states)
    return [
        ("apps", str(len(states))),
        ("snapshot size (MB)", f"{snapshot / 1e6:.2f}"),
        ("record size, average (bytes)", f"{record:.0f}"),
        ("store.update of every app (s)", f"{filled:.2f}"),
        (f"full write wall min / median / max (s), {repeat}x",
         f"{min(walls):.3f} / {statistics.median(walls):.3f} / {max(walls):.3f}"),
        ("full write CPU, median (s)", f"{statistics.median(cpus):.3f}"),
        (f"journal append of {min(CHANGED, len(states))} apps, wall (ms)", f"{appended * 1000:.1f}"),
        ("load wall (s)", f"{load_wall:.3f}"),
        ("load CPU (s)", f"{load_cpu:.3f}"),
        ("peak RSS (MiB)", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}"),
    ]


def _apps(value: str) -> int:
    count = int(value)
    if not 1 <= count <= 100_000:
        raise argparse.ArgumentTypeError("between 1 and 100000")
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=_apps, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary directory")
    args = parser.parse_args()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"state store at {args.apps} apps: full snapshot x{args.repeat}, journal append, load; "
          f"{os.cpu_count()} cores, load average {load}")
    states = build(args.apps)
    with tempfile.TemporaryDirectory(prefix="state-snapshot-", dir=args.dir) as directory:
        rows = asyncio.run(measure(states, Path(directory), max(args.repeat, 1)))
    width = max(len(metric) for metric, _ in rows)
    for metric, value in rows:
        print(f"{metric.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
