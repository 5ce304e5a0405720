"""Atomic writes, the job lock (incl. a SIGKILLed holder), retention and the manifest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from offrec.atomic import atomic_dir, atomic_path, atomic_write_json, atomic_write_text
from offrec.errors import LockedError
from offrec.locking import JobLock
from offrec.manifest import Manifest
from offrec.pipeline import apply_retention


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "report.html"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"v": 2, "trunc')
        raise RuntimeError("disk full half way")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_dir_swaps_whole_directories(tmp_path: Path) -> None:
    target = tmp_path / "models"
    with atomic_dir(target) as tmp:
        (tmp / "m1").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "m1").write_text("half written")
        raise RuntimeError("crash mid-write")
    assert (target / "m1").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["models"]


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_results_get_umask_permissions_not_private_temp_ones(
    tmp_path: Path, mask: int
) -> None:
    previous = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "report.html", "<html>")
        with atomic_path(tmp_path / "r.parquet") as tmp:
            tmp.write_bytes(b"x")
        with atomic_dir(tmp_path / "models") as tmp:
            (tmp / "m").write_text("m")
    finally:
        os.umask(previous)
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "r.parquet").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "models").stat().st_mode & 0o777 == 0o777 & ~mask


def test_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    path = tmp_path / ".offrec.lock"
    with JobLock(path, command="nightly"):
        code = (
            "import sys; from pathlib import Path; from offrec.locking import JobLock\n"
            "from offrec.errors import LockedError\n"
            f"try:\n    JobLock(Path({str(path)!r}), command='nightly').acquire()\n"
            "except LockedError as e:\n    print(e); sys.exit(4)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 4
        assert "another offrec run holds the lock" in out.stdout
        assert f"pid {os.getpid()}" in out.stdout


def test_lock_from_a_killed_process_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / ".offrec.lock"
    code = (
        "import time; from pathlib import Path; from offrec.locking import JobLock\n"
        f"l = JobLock(Path({str(path)!r}), command='nightly'); l.acquire(); print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    with pytest.raises(LockedError):
        JobLock(path, command="nightly").acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lock = JobLock(path, command="nightly")
    lock.acquire()
    try:
        assert lock.took_over is not None and lock.took_over.pid == proc.pid
    finally:
        lock.release()


def test_lock_waits_up_to_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / ".offrec.lock"
    with JobLock(path, command="a"):
        t0 = time.monotonic()
        with pytest.raises(LockedError):
            JobLock(path, command="b", timeout_s=0.5).acquire()
        assert time.monotonic() - t0 >= 0.4


def test_retention_keeps_newest_runs_and_the_protected_one(tmp_path: Path) -> None:
    for i in range(5):
        d = tmp_path / f"run{i}"
        d.mkdir()
        m = Manifest(run_id=d.name, kind="nightly")
        m.created_at = f"2026-11-2{i}T00:00:00Z"
        m.save(d)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "warehouse.duckdb").write_text("never deleted")
    removed = apply_retention(tmp_path, keep=2, protect="run0")
    assert sorted(p.name for p in removed) == ["run1", "run2"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["not-a-run", "run0", "run3", "run4", "warehouse.duckdb"]


def test_manifest_round_trip(tmp_path: Path) -> None:
    m = Manifest(run_id="r", kind="demo")
    m.stage("ingest").status = "done"
    m.stage("ingest").details = {"rows": 3}
    m.save(tmp_path)
    back = Manifest.load(tmp_path)
    assert back.stages["ingest"].status == "done"
    assert back.stages["ingest"].details == {"rows": 3}
    assert back.package_versions["offrec"]
