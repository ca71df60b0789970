"""Resume: a job killed by SIGKILL mid-way (rank 0 kills itself in the middle of a round: that round's
data written and flushed, its progress flags not — like a node failure) leaves a structurally valid,
incomplete file; re-running the same job, even with another rank count, skips the recorded shards,
recomputes the ones in flight and ends bitwise identical to an uninterrupted run. A changed job or
model refuses to resume (exit 7) saying what differs; a complete file is left alone.
"""
import os
import shutil

import h5py
import pytest

from eval_common import (DEMO, REPO, SMALL, assert_same_results, env_for, info, reference_run, require_binaries,
                         run_eval)

E_RESUME = 7


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_run(tmp_path_factory, 2)


def flags(path):
    with h5py.File(path, "r") as f:
        return {k: f["progress"][k][()].copy() for k in ("text_shards", "image_shards", "sim_shards")}, \
               int(f.attrs["complete"])


# With 2 ranks: 14 text shards = 7 rounds, 4 image shards = 2 rounds, 2 similarity rounds.
# Kill after 3 rounds (in text round 4), 8 (in image round 2), 10 (in similarity round 2);
# resume on 3, 1 and 4 ranks.
@pytest.mark.parametrize("kill_after,resume_np,phase,flags_set", [
    (3, 3, "text_shards", 6), (8, 1, "image_shards", 2), (10, 4, "sim_shards", 2)])
def test_sigkill_then_resume(reference, tmp_path, kill_after, resume_np, phase, flags_set):
    env = env_for(tmp_path)
    path = str(tmp_path / "demo.h5")
    p = run_eval(2, DEMO, SMALL, env_for(tmp_path, CLIPNEG_TEST_KILL_AFTER_ROUNDS=kill_after))
    assert p.returncode != 0, "the kill hook did not fire"
    assert "test hook: SIGKILL" in p.stderr
    f, complete = flags(path)  # h5py opens it: the killed file is structurally valid
    assert complete == 0
    # exactly the finished rounds are recorded; the round in flight is not
    assert int(f[phase].sum()) == flags_set, (phase, f)
    assert info(path).returncode == 1  # clipneg info: incomplete
    p = run_eval(resume_np, DEMO, SMALL, env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "resuming" in p.stderr
    assert_same_results(reference, path)
    assert info(path).returncode == 0


def test_changed_job_or_model_refuses(reference, tmp_path):
    path = tmp_path / "demo.h5"
    p = run_eval(2, DEMO, SMALL, env_for(tmp_path, CLIPNEG_TEST_KILL_AFTER_ROUNDS=2))
    assert p.returncode != 0 and path.exists()
    before = flags(str(path))
    mtime = os.stat(path).st_mtime_ns

    p = run_eval(2, DEMO, SMALL + ["--set", "run.seed=8"], env_for(tmp_path))
    assert p.returncode == E_RESUME, p.stderr[-2000:]
    assert "refusing to resume" in p.stderr and "job_sha256 differs" in p.stderr and "--fresh" in p.stderr

    p = run_eval(1, DEMO, SMALL + ["--set", "run.text_shard=16"], env_for(tmp_path))
    assert p.returncode == E_RESUME and "run.text_shard differs (file 32, this run 16)" in p.stderr, p.stderr[-2000:]

    # same weights, other files (the HF layout of the same tiny model): another model_sha256
    hf = os.path.join(REPO, "tests", "fixtures", "models", "vit-tiny-hf")
    p = run_eval(1, DEMO, SMALL, env_for(tmp_path, CLIPNEG_MODEL=hf))
    assert p.returncode == E_RESUME and "model_sha256 differs" in p.stderr, p.stderr[-2000:]

    # nothing was touched by the refusals
    after = flags(str(path))
    assert os.stat(path).st_mtime_ns == mtime
    assert all((before[0][k] == after[0][k]).all() for k in before[0])

    # --fresh overwrites it with the new job
    p = run_eval(2, DEMO, SMALL + ["--set", "run.seed=8", "--fresh"], env_for(tmp_path))
    assert p.returncode == 0, p.stderr[-2000:]
    assert flags(str(path))[1] == 1


def test_complete_file_is_left_alone(reference, tmp_path):
    path = tmp_path / "demo.h5"
    shutil.copy(reference, path)
    mtime = os.stat(path).st_mtime_ns
    p = run_eval(3, DEMO, SMALL, env_for(tmp_path))
    assert p.returncode == 0 and "already complete" in p.stderr, p.stderr[-2000:]
    assert os.stat(path).st_mtime_ns == mtime


def test_not_a_clipneg_file_is_never_overwritten(tmp_path):
    require_binaries()
    path = tmp_path / "demo.h5"
    with h5py.File(path, "w") as f:
        f["x"] = [1, 2, 3]
    p = run_eval(1, DEMO, SMALL, env_for(tmp_path))
    assert p.returncode == E_RESUME and "not a clipneg eval output" in p.stderr, p.stderr[-2000:]
    with h5py.File(path, "r") as f:
        assert list(f) == ["x"]
