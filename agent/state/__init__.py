"""The agent's memory on disk: one atomic, checksummed snapshot of every app's status,
inventory, proofs of sync and sync history, with the previous snapshot as a backup.

    snapshot   the file format and the atomic write (blocking; run in a thread)
    codec      AppRecord and its JSON form
    store      StateStore: load with fallback, coalesced background writes, final write
"""

from agent.state.codec import AppRecord, RecordError, history_to_dict, record_from_dict, record_to_dict
from agent.state.snapshot import SnapshotError, SnapshotFile
from agent.state.store import LoadResult, StateObserver, StateStore

__all__ = [
    "AppRecord",
    "LoadResult",
    "RecordError",
    "SnapshotError",
    "SnapshotFile",
    "StateObserver",
    "StateStore",
    "history_to_dict",
    "record_from_dict",
    "record_to_dict",
]
