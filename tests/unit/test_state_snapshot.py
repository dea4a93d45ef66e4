"""The snapshot file: checksummed envelope, atomic replace, backup, fallback on corruption, kill -9."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

import agent.state.snapshot as snapshot_module
from agent.state.snapshot import SnapshotError, SnapshotFile, decode, encode
from tests.support.killed import kill_while_writing


def test_envelope_is_json_and_round_trips() -> None:
    data = encode({"apps": {"a": {"x": [1, 2.5, "é"]}}}, written_at=1700000000.25)
    envelope = json.loads(data)
    assert envelope["format"] == 1 and envelope["checksum"].startswith("sha256:")
    assert envelope["written_at"] == 1700000000.25
    decoded = decode(data)
    assert decoded.payload == {"apps": {"a": {"x": [1, 2.5, "é"]}}}
    assert decoded.written_at == 1700000000.25


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage", "format"])
def test_damaged_snapshots_are_refused(damage: str) -> None:
    data = bytearray(encode({"apps": {"a": {"n": 1, "pad": "x" * 1000}}}, written_at=1.0))
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x04
    elif damage == "empty":
        data = bytearray()
    elif damage == "garbage":
        data = bytearray(b"\x00" * 64)
    else:
        data = bytearray(bytes(data).replace(b'"format":1', b'"format":2'))
    with pytest.raises(SnapshotError):
        decode(bytes(data))


def test_every_single_bit_flip_in_a_small_snapshot_is_detected() -> None:
    data = encode({"apps": {"a": {"n": 7}}}, written_at=2.0)
    for index in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[index] ^= 1 << bit
            try:
                found = decode(bytes(damaged))
            except SnapshotError:
                continue
            # A flip inside the written_at digits can still parse: the payload must be intact then.
            assert found.payload == {"apps": {"a": {"n": 7}}}, (index, bit)


def test_second_write_keeps_the_first_as_backup(tmp_path: Path) -> None:
    file = SnapshotFile(tmp_path)
    file.write({"n": 1}, written_at=1.0)
    assert not file.backup.exists()
    file.write({"n": 2}, written_at=2.0)
    assert decode(file.primary.read_bytes()).payload == {"n": 2}
    assert decode(file.backup.read_bytes()).payload == {"n": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.bak"]


def _two_snapshots(tmp_path: Path) -> SnapshotFile:
    file = SnapshotFile(tmp_path)
    file.write({"n": 1}, written_at=1.0)
    file.write({"n": 2}, written_at=2.0)
    return file


def test_truncated_snapshot_loads_the_backup(tmp_path: Path) -> None:
    file = _two_snapshots(tmp_path)
    file.primary.write_bytes(file.primary.read_bytes()[:-10])
    loaded = SnapshotFile(tmp_path).load()
    assert loaded.source == "backup" and loaded.snapshot is not None
    assert loaded.snapshot.payload == {"n": 1}
    assert "truncated" in loaded.problems[0]


def test_bit_flipped_snapshot_loads_the_backup(tmp_path: Path) -> None:
    file = _two_snapshots(tmp_path)
    data = bytearray(file.primary.read_bytes())
    data[-5] ^= 0x01
    file.primary.write_bytes(bytes(data))
    loaded = SnapshotFile(tmp_path).load()
    assert loaded.source == "backup" and loaded.snapshot is not None and loaded.snapshot.payload == {"n": 1}
    assert "checksum mismatch" in loaded.problems[0]


def test_both_corrupt_is_empty_and_neither_present_is_absent(tmp_path: Path) -> None:
    assert SnapshotFile(tmp_path).load().source == "absent"
    file = _two_snapshots(tmp_path)
    file.primary.write_bytes(b'{"format":1,')
    file.backup.write_bytes(b"")
    loaded = SnapshotFile(tmp_path).load()
    assert loaded.source == "empty" and loaded.snapshot is None and len(loaded.problems) == 2


def test_a_corrupt_current_file_never_replaces_the_good_backup(tmp_path: Path) -> None:
    file = _two_snapshots(tmp_path)
    file.primary.write_bytes(b"garbage")
    reopened = SnapshotFile(tmp_path)
    assert reopened.load().source == "backup"
    reopened.write({"n": 3}, written_at=3.0)
    assert decode(reopened.backup.read_bytes()).payload == {"n": 1}
    reopened.write({"n": 4}, written_at=4.0)
    assert decode(reopened.backup.read_bytes()).payload == {"n": 3}


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    file = _two_snapshots(tmp_path)
    (tmp_path / ".state.json.tmp-123-0").write_bytes(b"half a snapsh")
    assert file.remove_stale_temporaries() == [".state.json.tmp-123-0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.bak"]


# ------------------------------------------------------------------ kill -9 while writing

_WRITER = r"""
file = module.SnapshotFile(Path(sys.argv[2]))
loaded = file.load()
n = loaded.snapshot.payload["n"] if loaded.snapshot else 0
os.write(1, b"ready\n")
while True:
    n += 1
    # A size that changes with n, so writes take different times and kills land anywhere.
    file.write({"n": n, "pad": str(n % 10) * (20_000 + (n * 7919) % 300_000)}, written_at=time.time())
    os.write(1, b"%d\n" % n)
"""
KILLS = 120


def test_kill_9_while_writing_always_leaves_the_old_or_the_new_snapshot(tmp_path: Path) -> None:
    """A writer in a subprocess, killed with SIGKILL at random moments: the snapshot always loads,
    from the current file (never the backup, never partial), and is the last one the writer
    finished or the one it was writing."""
    rng = random.Random(8)
    # A kill before the first write finishes would rightly leave no snapshot at all: start from one.
    SnapshotFile(tmp_path).write({"n": 0, "pad": "0"}, written_at=time.time())
    last_done = 0
    interrupted = caught_after_rename = 0
    started = time.monotonic()
    for _ in range(KILLS):
        finished, returncode = kill_while_writing(_WRITER, snapshot_module.__file__, str(tmp_path), rng=rng)
        assert returncode == -9
        last_done = finished[-1] if finished else last_done
        loaded = SnapshotFile(tmp_path).load()
        assert loaded.source == "primary", loaded.problems
        assert loaded.snapshot is not None
        n = loaded.snapshot.payload["n"]
        assert n in (last_done, last_done + 1), (n, last_done)
        assert set(loaded.snapshot.payload["pad"]) == {str(n % 10)}
        caught_after_rename += n == last_done + 1
        last_done = n
        leftovers = list(tmp_path.glob(".state.json.tmp-*"))
        interrupted += bool(leftovers)
        for path in leftovers:
            path.unlink()
    elapsed = time.monotonic() - started
    print(f"{KILLS} kills in {elapsed:.1f}s: {interrupted} interrupted a write (temporary file left), "
          f"{caught_after_rename} landed after the rename and before the writer reported; {last_done} snapshots")
    assert interrupted > KILLS // 10, "the kills should land inside writes"
