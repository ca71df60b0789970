"""One writer per output: while a run writes a file, a second run on the same path stops at once
with exit 6 naming the holder's host and PID, and the first run still ends bitwise identical to a
solo run. The lock lives in `<out>.lock` (fcntl): a holder killed with SIGKILL leaves the file but
not the lock, and the next run takes it over with a note and resumes.
"""
import os
import socket

import h5py

from eval_common import (DEMO, SMALL, assert_same_results, env_for, kill_group, reference_run, run_eval, start_eval,
                         wait_for_progress)

E_IO = 6


def test_second_run_stops_while_the_first_writes(tmp_path_factory, tmp_path):
    reference = reference_run(tmp_path_factory, 1)
    path = str(tmp_path / "demo.h5")
    # the singleton (no launcher): its PID is rank 0's, the one the message must name
    first = start_eval(0, DEMO, SMALL, env_for(tmp_path, CLIPNEG_TEST_ROUND_DELAY_MS=500))
    try:
        assert wait_for_progress(path, "text_shards", 1), "no progress recorded in time"
        with open(path + ".lock") as f:
            assert f.read().split() == [socket.gethostname(), str(first.pid)]
        mtime = os.stat(path).st_mtime_ns
        for args in ([], ["--fresh"]):  # --fresh must not clobber a file being written either
            second = run_eval(2, DEMO, SMALL + args, env_for(tmp_path), timeout=60)
            assert second.returncode == E_IO, second.stderr[-2000:]
            assert f"host {socket.gethostname()}, PID {first.pid}" in second.stderr, second.stderr[-2000:]
            assert path in second.stderr and second.stderr.endswith("\n")
            assert "resuming" not in second.stderr and "overwriting" not in second.stderr
        assert first.poll() is None, "the first run ended before the second one was tried"
        _, err = first.communicate(timeout=300)
    finally:
        kill_group(first)
    assert first.returncode == 0, err[-3000:]
    assert os.stat(path).st_mtime_ns >= mtime
    assert not os.path.exists(path + ".lock"), "a clean exit leaves no lock file"
    assert_same_results(reference, path)


def test_killed_holder_lock_is_taken_over(tmp_path_factory, tmp_path):
    reference = reference_run(tmp_path_factory, 1)
    path = str(tmp_path / "demo.h5")
    p = run_eval(0, DEMO, SMALL, env_for(tmp_path, CLIPNEG_TEST_KILL_AFTER_ROUNDS=3))
    assert p.returncode != 0 and "test hook: SIGKILL" in p.stderr
    with open(path + ".lock") as f:  # the dead holder's file is still there, its lock is not
        host, pid = f.read().split()
    assert host == socket.gethostname()
    with h5py.File(path, "r") as f:
        assert int(f.attrs["complete"]) == 0
    p = run_eval(2, DEMO, SMALL, env_for(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "taking over the stale lock" in p.stderr and f"PID {pid}" in p.stderr, p.stderr[-3000:]
    assert "resuming" in p.stderr
    assert not os.path.exists(path + ".lock")
    assert_same_results(reference, path)
