"""Preemption: SIGTERM (SLURM preemption/scancel) or SIGUSR1 (--signal=B:USR1@120, forwarded by mpirun
and slurm/eval.sbatch) makes every rank stop at the next round boundary, flush, close the file and
exit 75; the partial file is valid (h5py reads it, `clipneg info` says incomplete) and re-running the
same job resumes it to the bitwise identical result of an uninterrupted run.
"""
import signal

import h5py
import pytest

from eval_common import (DEMO, SMALL, assert_same_results, env_for, info, kill_group, reference_run, run_eval,
                         start_eval, wait_for_progress)

E_PREEMPTED = 75


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_run(tmp_path_factory, 1)


def check_partial(path):
    with h5py.File(path, "r") as f:
        assert int(f.attrs["complete"]) == 0
        done = sum(int(f["progress"][k][()].sum()) for k in ("text_shards", "image_shards", "sim_shards"))
    assert done > 0, "nothing was recorded before the stop"
    assert info(path).returncode == 1
    return done


def test_sigterm_on_one_rank_stops_all(reference, tmp_path):
    # rank 0 alone receives SIGTERM after 4 rounds; ranks 1 and 2 learn it at the next boundary
    p = run_eval(3, DEMO, SMALL, env_for(tmp_path, CLIPNEG_TEST_SIGNAL_AFTER_ROUNDS=4))
    assert p.returncode == E_PREEMPTED, p.stderr[-3000:]
    assert "preempted" in p.stderr and "SIGTERM" in p.stderr
    path = str(tmp_path / "demo.h5")
    with h5py.File(path, "r") as f:  # with 3 ranks, 4 rounds = 12 of 14 text shards
        assert int(f["progress/text_shards"][()].sum()) == 12
    check_partial(path)
    p = run_eval(2, DEMO, SMALL, env_for(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert_same_results(reference, path)


def test_external_sigterm_singleton(reference, tmp_path):
    # no launcher (as one srun task): the signal goes straight to the process
    path = str(tmp_path / "demo.h5")
    proc = start_eval(0, DEMO, SMALL, env_for(tmp_path, CLIPNEG_TEST_ROUND_DELAY_MS=150))
    try:
        assert wait_for_progress(path, "text_shards", 2), "no progress recorded in time"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == E_PREEMPTED, err[-3000:]
    check_partial(path)
    p = run_eval(0, DEMO, SMALL, env_for(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert_same_results(reference, path)


def test_sigusr1_forwarded_by_mpirun(reference, tmp_path):
    path = str(tmp_path / "demo.h5")
    proc = start_eval(2, DEMO, SMALL, env_for(tmp_path, CLIPNEG_TEST_ROUND_DELAY_MS=150))
    try:
        assert wait_for_progress(path, "text_shards", 2), "no progress recorded in time"
        proc.send_signal(signal.SIGUSR1)  # mpirun forwards SIGUSR1 to every rank
        _, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == E_PREEMPTED, err[-3000:]
    assert "SIGUSR1" in err
    check_partial(path)
    p = run_eval(4, DEMO, SMALL, env_for(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert_same_results(reference, path)
