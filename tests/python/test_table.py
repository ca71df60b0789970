"""`clipneg-analysis table` with several models and benchmarks (docs/analysis.md "Benchmark table"),
on real small runs: two "models" (the committed tiny random model under two folder names) x three
jobs (jobs/classification-demo.ini, jobs/demo.ini cut to 8 images, jobs/mcq-demo.ini), reduced.
Every number in the table is compared with the file's own /stats group read here with h5py; the
fallback without /stats (classification computed from /classify) equals the reduced numbers; the
HTML report carries the grouped table.
"""
import csv
import io
import os
import shutil
import subprocess
import sys

import h5py
import pytest

from eval_common import BIN, REPO, TINY_MODEL, env_for, require_binaries, run_eval

sys.path.insert(0, os.path.join(REPO, "analysis"))
pytest.importorskip("matplotlib")
from clipneg_analysis import classify, cli, suite  # noqa: E402

JOBS = {"classification": "classification-demo.ini", "coco": "demo.ini", "items": "mcq-demo.ini"}
OUT = {"classification": "classification-demo.h5", "coco": "demo.h5", "items": "mcq-demo.h5"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    require_binaries()
    d = tmp_path_factory.mktemp("table")
    models = {}
    (d / "models").mkdir()
    for name in ("tiny-a", "tiny-b"):
        os.symlink(TINY_MODEL, d / "models" / name)
        models[name] = str(d / "models" / name)
    out = {}
    for m, path in models.items():
        for bench, job in JOBS.items():
            od = d / "out" / m
            od.mkdir(parents=True, exist_ok=True)
            env = env_for(od, CLIPNEG_MODEL=path)
            p = run_eval(1, os.path.join(REPO, "jobs", job), ["--set", "dataset.max_images=8", "--set", "run.threads=1"]
                         if bench == "coco" else ["--set", "run.threads=1"], env)
            assert p.returncode == 0, p.stderr
            f = str(od / OUT[bench])
            if bench == "classification":  # a copy without /stats for the fallback
                shutil.copy(f, str(od / "unreduced.h5"))
            r = subprocess.run([BIN, "reduce", f, "--bootstrap", "0", "--no-table"], env=env, capture_output=True,
                               text=True, timeout=120)
            assert r.returncode == 0, r.stderr
            out[(m, bench)] = f
    out["unreduced"] = str(d / "out" / "tiny-a" / "unreduced.h5")
    return out


def table_csv(paths):
    buf = io.StringIO()
    from contextlib import redirect_stdout
    with redirect_stdout(buf):
        assert cli.main(["table", "--csv", *paths]) == 0
    return list(csv.DictReader(io.StringIO(buf.getvalue())))


def test_one_row_per_model_one_group_per_benchmark(files):
    paths = [files[(m, b)] for m in ("tiny-a", "tiny-b") for b in ("items", "coco", "classification")]
    groups, rows = suite.build(paths)
    # the NegationCLIP Table 2 order: classification first, then COCO retrieval, then item benchmarks
    assert [g[0] for g in groups] == ["classification", "coco", "items"]
    assert groups[0][1] == ["top-1", "top-5", "ties", "negated top-1"]
    assert groups[1][1] == ["t2i R@1", "t2i R@5", "t2i R@10", "i2t R@1", "i2t R@5", "i2t R@10"]
    assert groups[2][1][0] == "accuracy" and set(groups[2][1][1:-1]) == {"affirmation", "negation", "hybrid"}
    assert [r[0] for r in rows] == ["tiny-a †", "tiny-b †"]  # model names from model_path; random weights marked


def test_numbers_equal_the_files_stats(files):
    paths = [files[(m, b)] for m in ("tiny-a", "tiny-b") for b in ("classification", "coco", "items")]
    rows = {r["model"]: r for r in table_csv(paths)}
    assert set(rows) == {"tiny-a †", "tiny-b †"}
    for m in ("tiny-a", "tiny-b"):
        r = rows[m + " †"]
        with h5py.File(files[(m, "classification")], "r") as f:
            s = f["stats/classify"]
            assert float(r["classification: top-1"]) == s["accuracy_top1"][()]
            assert float(r["classification: top-5"]) == s["accuracy_top5"][()]
            assert float(r["classification: negated top-1"]) == s["accuracy_negated_top1"][()]
            assert int(r["classification: ties"]) == s["ties"][()]
        with h5py.File(files[(m, "coco")], "r") as f:
            base = int(f["stats"].attrs["base_index"])
            for k in (1, 5, 10):
                assert float(r[f"coco: t2i R@{k}"]) == f["stats/retrieval"][f"t2i_r{k}"][base]
                assert float(r[f"coco: i2t R@{k}"]) == float(f["stats/retrieval"][f"i2t_r{k}"][()])
        with h5py.File(files[(m, "items")], "r") as f:
            g = f["stats/items"]
            labels = str(g.attrs["labels"]).split(",")
            assert float(r["items: accuracy"]) == g["accuracy"][labels.index("all")]
            for t in ("affirmation", "negation", "hybrid"):
                assert float(r[f"items: {t}"]) == g["accuracy"][labels.index(t)]
            assert int(r["items: ties"]) == g["n_ties"][labels.index("all")]


def test_markdown_and_table1(files, capsys):
    paths = [files[("tiny-a", "classification")], files[("tiny-a", "coco")], files[("tiny-b", "coco")]]
    assert cli.main(["table", *paths]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("| model | classification: top-1 |")
    with h5py.File(paths[0], "r") as f:
        top1 = 100 * f["stats/classify/accuracy_top1"][()]
    assert f"| tiny-a † | {top1:.1f} |" in text
    assert "| tiny-b † | – | – | – | – |" in text  # no classification run for tiny-b
    assert "Table 1 (COCO caption-variant runs)" in text and "flips not" in text
    # plain COCO runs keep the Table 1 layout unless --suite asks
    assert cli.main(["table", paths[1]]) == 0
    assert capsys.readouterr().out.startswith("| model | captions |")
    assert cli.main(["table", "--suite", paths[1]]) == 0
    assert capsys.readouterr().out.startswith("| model | coco: t2i R@1 |")


def test_without_stats_the_same_numbers(files):
    a = classify.stats(files["unreduced"])
    b = classify.stats(files[("tiny-a", "classification")])
    with h5py.File(files["unreduced"], "r") as f:
        assert "stats" not in f or "classify" not in f["stats"]
    assert a == b


def test_report_has_the_grouped_table(files, tmp_path):
    out = str(tmp_path / "report.html")
    paths = [files[(m, b)] for m in ("tiny-a", "tiny-b") for b in ("classification", "coco")]
    assert cli.main(["report", "--no-tsne", "-o", out, *paths]) == 0
    text = open(out, encoding="utf-8").read()
    assert "<h2>Benchmarks per model</h2>" in text
    assert '<th colspan="4">classification</th>' in text and '<th colspan="6">coco</th>' in text
    assert text.count("<td>tiny-a †</td>") == 1 and text.count("<td>tiny-b †</td>") == 1
