"""slurm/submit.sh suites without SLURM (docs/cluster.md "A suite"): `--dry-run` prints the sbatch
lines instead of submitting, so the argument handling and the generated lines are checked here:
models x jobs as ONE eval array, the reduce array paired with it (aftercorr), one table job after
it (afterany); the task list; what each array task runs (slurm/array-eval.sh and array-reduce.sh
against stub eval/reduce scripts); slurm/table.sbatch on real small outputs (with one missing).
The real SLURM run is tests/slurm/test_slurm.sh (label slurm).
"""
import os
import re
import subprocess

import pytest

from eval_common import BIN, REPO, TINY_MODEL, env_for, require_binaries, run_eval

SUBMIT = os.path.join(REPO, "slurm", "submit.sh")
JOBS = [os.path.join(REPO, "jobs", "demo.ini"), os.path.join(REPO, "jobs", "classification-demo.ini")]


def submit(*args, cwd=REPO):
    env = dict(os.environ, CLIPNEG=BIN)
    return subprocess.run(["bash", SUBMIT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def models(tmp_path):
    if not os.path.exists(BIN):
        pytest.skip(f"clipneg is not built ({BIN})")
    out = []
    for n in ("model-a", "model-b"):
        os.symlink(TINY_MODEL, tmp_path / n)
        out.append(str(tmp_path / n))
    return out


def sbatch_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("sbatch ")]


def test_suite_dry_run(models, tmp_path):
    out = tmp_path / "res"
    p = submit("--dry-run", "--cpu", "2", "--out-dir", str(out), "--model", models[0], "--model", models[1] + "/",
               "--set", "model.quick_gelu=false", *JOBS, "--", "--partition=x")
    assert p.returncode == 0, p.stderr
    lines = sbatch_lines(p.stderr)
    assert len(lines) == 3, p.stderr
    ev, red, tab = lines
    # one eval array over 2 models x 2 jobs, CPU resources, the extra sbatch option, the --set passed on
    assert "--array=0-3" in ev and "--ntasks-per-node=2" in ev and "--partition=x" in ev
    assert ev.split()[-5:] == [os.path.join(REPO, "slurm", "array-eval.sh"), "--set", "model.quick_gelu=false",
                               "--set", "run.backend=cpu"]
    eid = re.search(r"--dependency=aftercorr:(DRY\d+)", red)
    assert eid and "--array=0-3" in red and red.split()[-1].endswith("slurm/array-reduce.sh")
    assert re.search(r"--dependency=afterany:DRY\d+", tab) and "slurm/table.sbatch" in tab
    outs = [str(out / m / f"{j}.h5") for m in ("model-a", "model-b") for j in ("demo", "classification-demo")]
    assert tab.split()[-5:] == [str(out)] + outs
    assert "suite: 2 models x 2 jobs" in p.stdout
    # the task list: job, output, model (absolute), model-major
    lists = list((out / "logs").glob("jobs-*.txt"))
    assert len(lists) == 1
    rows = [l.split("\t") for l in lists[0].read_text().splitlines()]
    assert rows == [[JOBS[k], outs[2 * i + k], models[i]] for i in range(2) for k in range(2)]
    assert (out / "model-a").is_dir() and (out / "model-b").is_dir()


def test_array_tasks_run_the_right_lines(models, tmp_path):
    out = tmp_path / "res"
    p = submit("--dry-run", "--out-dir", str(out), "--model", models[0], "--model", models[1], *JOBS)
    assert p.returncode == 0, p.stderr
    job_list = str(next((out / "logs").glob("jobs-*.txt")))
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in ("eval.sbatch", "reduce.sbatch"):
        (stubs / name).write_text('printf "%s\\n" "$@"\n')
    env = dict(os.environ, CLIPNEG_SLURM_DIR=str(stubs), CLIPNEG_JOB_LIST=job_list, CLIPNEG_OUT_DIR=str(out))
    for task, (m, job) in enumerate([(models[i], JOBS[k]) for i in range(2) for k in range(2)]):
        env["SLURM_ARRAY_TASK_ID"] = str(task)
        o = str(out / os.path.basename(m) / (os.path.basename(job)[:-4] + ".h5"))
        r = subprocess.run(["bash", os.path.join(REPO, "slurm", "array-eval.sh"), "--set", "run.backend=cpu"], env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.stdout.splitlines() == [job, "--output", o, "--set", f"model.path={m}", "--set", "run.backend=cpu"]
        r = subprocess.run(["bash", os.path.join(REPO, "slurm", "array-reduce.sh")], env=env, capture_output=True,
                           text=True, timeout=30)
        assert r.stdout.splitlines() == [o]


def test_plain_array_keeps_its_layout(models, tmp_path):
    out = tmp_path / "res"
    p = submit("--dry-run", "--array", "--out-dir", str(out), *JOBS)
    assert p.returncode == 0, p.stderr
    assert len(sbatch_lines(p.stderr)) == 2  # eval array + reduce array, no table
    rows = [l.split("\t") for l in next((out / "logs").glob("jobs-*.txt")).read_text().splitlines()]
    assert rows == [[JOBS[0], str(out / "demo.h5")], [JOBS[1], str(out / "classification-demo.h5")]]


@pytest.mark.parametrize("args,fragment", [
    (["--model"], "--model needs a path"),
    (["--model", "/nonexistent/model", "jobs/demo.ini"], "--model /nonexistent/model: no such file or folder"),
    (["--set"], "--set needs section.key=value"),
    (["--model", "{a}", "--model", "{b}", "jobs/demo.ini"], "two models are named 'same'"),
])
def test_bad_arguments(models, tmp_path, args, fragment):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    os.symlink(TINY_MODEL, tmp_path / "x" / "same")
    os.symlink(TINY_MODEL, tmp_path / "y" / "same")
    args = [a.format(a=tmp_path / "x" / "same", b=tmp_path / "y" / "same") for a in args]
    p = submit("--dry-run", "--out-dir", str(tmp_path / "res"), *args)
    assert p.returncode == 2 and fragment in p.stderr, p.stderr


def test_table_job_on_real_outputs(tmp_path):
    require_binaries()
    outs = []
    for m in ("model-a", "model-b"):
        os.symlink(TINY_MODEL, tmp_path / m)
        (tmp_path / "res" / m).mkdir(parents=True)
        env = env_for(tmp_path / "res" / m, CLIPNEG_MODEL=str(tmp_path / m))
        assert run_eval(0, JOBS[1], ["--set", "run.threads=1"], env).returncode == 0
        outs.append(str(tmp_path / "res" / m / "classification-demo.h5"))
        assert subprocess.run([BIN, "reduce", outs[-1], "--bootstrap", "0", "--no-table"], env=env,
                              capture_output=True).returncode == 0
    missing = str(tmp_path / "res" / "model-c" / "classification-demo.h5")
    env = dict(os.environ, SLURM_SUBMIT_DIR=REPO, CLIPNEG_PYTHON=os.path.join(REPO, ".venv", "bin", "python"))
    if not os.path.exists(env["CLIPNEG_PYTHON"]):
        env["CLIPNEG_PYTHON"] = "python3"
    r = subprocess.run(["bash", os.path.join(REPO, "slurm", "table.sbatch"), str(tmp_path / "res"), *outs, missing],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"missing (its evaluation failed?): {missing}" in r.stdout
    md = (tmp_path / "res" / "table.md").read_text()
    assert "| model-a † |" in md and "| model-b † |" in md and "classification: top-1" in md
    assert (tmp_path / "res" / "table.csv").read_text().count("\n") == 3
    assert "Benchmarks per model" in (tmp_path / "res" / "suite-report.html").read_text()
