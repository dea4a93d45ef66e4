"""The agent's memory on disk: one atomic, checksummed snapshot of every app's AppState (status,
inventory, proofs of sync, sync history, pause, the sync in progress), with the previous
snapshot as a backup.

    snapshot   the file format and the atomic write (blocking; run in a thread)
    journal    the records changed since the last snapshot, appended (blocking; run in a thread)
    codec      AppState and its JSON form
    store      StateStore: load with fallback, coalesced background writes, final write
"""

from agent.state.codec import RecordError, history_to_dict, state_from_dict, state_to_dict
from agent.state.snapshot import SnapshotError, SnapshotFile
from agent.state.store import LoadResult, StateObserver, StateStore, records_on_disk

__all__ = [
    "LoadResult",
    "RecordError",
    "SnapshotError",
    "SnapshotFile",
    "StateObserver",
    "StateStore",
    "history_to_dict",
    "records_on_disk",
    "state_from_dict",
    "state_to_dict",
]
