"""The output is self-describing (format_version 2, docs/hdf5-schema.md): opened with xarray's h5netcdf
engine — an independent reader that knows nothing of clipneg — every group has named dimensions with
coordinates (caption ids, variant names, image ids, rendered texts, ...), `h5dump -A` shows a
description and units on every dataset, and `[output] compression` changes the bytes on disk but
not one value: a deflated file reads identically (h5py, every dataset) to the uncompressed one,
for 1 and 3 ranks, and after a SIGKILL + resume. `clipneg_analysis.load` is checked against h5py.

Files: the small demo job (eval_common.SMALL) with /similarity/full, /embeddings, then `clipneg
reduce` (/stats) and `clipneg export-tsne` (/tsne); the region item job (/items, /stats/items); the
NegBench MCQ job (jobs/negbench-mcq.ini: /items from a benchmark reader). Classification files are
checked the same way in test_classify.py.
"""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from eval_common import (BIN, DEMO, MPIEXEC, REPO, SMALL, assert_every_dataset_described, assert_same_datasets,
                         assert_same_results, env_for, h5_strings as strings, require_binaries, run_eval,
                         xr_open as opened)

pytest.importorskip("xarray", reason="xarray is not installed (scripts/install-deps.sh: python3-xarray)")
pytest.importorskip("h5netcdf", reason="h5netcdf is not installed (scripts/install-deps.sh: python3-h5netcdf)")
pytest.importorskip("pandas", reason="pandas is not installed (scripts/install-deps.sh: python3-pandas)")
sys.path.insert(0, os.path.join(REPO, "analysis"))
from clipneg_analysis import load  # noqa: E402

COMPRESS = ["--set", "output.compression=6"]


def run_tool(env, *args, np_=2):
    p = subprocess.run([MPIEXEC, "-n", str(np_), BIN, *args], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stderr[-3000:]}"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """plain (2 ranks, reduce + export-tsne), deflated on 1 and 3 ranks, the region item job."""
    require_binaries()
    out = {}
    for key, np_, extra in (("plain", 2, []), ("z1", 1, COMPRESS), ("z3", 3, COMPRESS)):
        d = tmp_path_factory.mktemp(key)
        p = run_eval(np_, DEMO, SMALL + extra, env_for(d))
        assert p.returncode == 0, f"{key}: exit {p.returncode}\n{p.stderr[-3000:]}"
        out[key] = str(d / "demo.h5")
    env = env_for(os.path.dirname(out["plain"]))
    run_tool(env, "reduce", out["plain"])
    run_tool(env, "export-tsne", out["plain"])
    d = tmp_path_factory.mktemp("items")
    env = env_for(d)
    p = run_eval(2, os.path.join(REPO, "jobs", "region-demo.ini"), COMPRESS, env)
    assert p.returncode == 0, p.stderr[-3000:]
    out["items"] = str(d / "region-demo.h5")
    run_tool(env, "reduce", out["items"])
    d = tmp_path_factory.mktemp("negbench")  # a benchmark reader's /items (format, tie rule attributes)
    env = env_for(d)
    p = run_eval(2, os.path.join(REPO, "jobs", "negbench-mcq.ini"), ["--set", "run.backend=cpu"], env)
    assert p.returncode == 0, p.stderr[-3000:]
    out["negbench"] = str(d / "negbench-mcq.h5")
    run_tool(env, "reduce", out["negbench"])
    return out


def test_format_version_2(files):
    with h5py.File(files["plain"], "r") as f:
        assert f.attrs["format_version"] == 2 and f.attrs["complete"] == 1


def test_xarray_main_groups(files):
    path = files["plain"]
    with h5py.File(path, "r") as f:
        img_id, cap_id = f["images/id"][()], f["captions/id"][()]
        names, texts = strings(f, "variants/name"), strings(f, "texts/text")
        n_img, n_cap, V, D = len(img_id), len(cap_id), len(names), f["embeddings/image"].shape[1]
        paired, full = f["similarity/paired"][()], f["similarity/full"][()]
    ds = opened(path, "similarity")
    assert ds["paired"].dims == ("caption", "variant") and ds["full"].dims == ("image", "text")
    assert (ds["caption"].values == cap_id).all() and list(ds["variant"].values) == names
    assert (ds["image"].values == img_id).all() and list(ds["text"].values) == texts
    assert ds["paired"].values.tobytes() == paired.tobytes() and ds["full"].values.tobytes() == full.tobytes()
    # label-based selection works without renaming anything
    c, v = int(cap_id[7]), names[2]
    assert np.array_equal(ds["paired"].sel(caption=c, variant=v).values, paired[7, 2], equal_nan=True)

    expect = {"images": ("image", img_id), "captions": ("caption", cap_id), "variants": ("variant", names),
              "texts": ("text", texts)}
    for group, (dim, coord) in expect.items():
        g = opened(path, group)
        assert list(g.dims) == [dim], (group, g.dims)
        assert list(g[dim].values) == list(coord), group
        assert all(g[k].dims == (dim,) for k in g.data_vars), group
    assert set(opened(path, "images").data_vars) >= {"id", "file_name", "status", "error", "first_caption"}

    e = opened(path, "embeddings")
    assert e["image"].dims == ("image_row", "dim") and e["text"].dims == ("text_row", "dim")
    assert (e["image_row"].values == np.arange(n_img)).all() and (e["text_row"].values == np.arange(n_cap * V)).all()
    assert (e["dim"].values == np.arange(D)).all()

    p = opened(path, "progress")
    assert p["text_shards"].dims == ("text_shard",) and p["sim_shards"].dims == ("image_shard",)
    assert p.sizes["text_shard"] == 14 and p.sizes["image_shard"] == 4


def test_xarray_stats_and_tsne(files):
    path = files["plain"]
    with h5py.File(path, "r") as f:
        names = strings(f, "variants/name")
        edges = f["stats/variants/hist"].attrs["edges"]
        mean = f["stats/variants/mean"][()]
    s = opened(path, "stats/variants")
    assert s["mean"].dims == ("variant",) and s["hist"].dims == ("variant", "bin")
    assert list(s["variant"].values) == names and s["mean"].values.tobytes() == mean.tobytes()
    np.testing.assert_allclose(s["bin"].values, (edges[:-1] + edges[1:]) / 2, rtol=0, atol=1e-15)
    for group in ("stats/contrast", "stats/retrieval"):
        g = opened(path, group)
        assert list(g["variant"].values) == names, group
    assert opened(path, "stats/retrieval")["i2t_r1"].dims == ()
    t = opened(path, "tsne")
    assert t["X"].dims == ("point", "component") and t["components"].dims == ("component", "dim")
    assert list(t["kind_name"].values) == ["image", "positive", "negative", "other"]
    assert t["n_available"].dims == ("kind_name",)


def test_xarray_items(files):
    path = files["items"]
    with h5py.File(path, "r") as f:
        types = strings(f, "items/type_names")
        N, K = f["items/sim"].shape
    it = opened(path, "items")
    assert it["sim"].dims == ("item", "candidate") and it["text"].dims == ("item", "text_candidate")
    assert it["box"].dims == ("item", "image_candidate", "box_field")
    assert it["crop"].dims == ("item", "image_candidate", "crop_field")
    assert list(it["box_field"].values) == ["x", "y", "w", "h"]
    assert list(it["crop_field"].values) == ["x0", "y0", "x1", "y1"]
    assert list(it["item_type"].values) == types and it["type_names"].dims == ("item_type",)
    assert (it["item"].values == np.arange(N)).all() and (it["candidate"].values == np.arange(K)).all()
    e = opened(path, "items/embeddings")
    assert e["text"].dims == ("text_row", "dim") and e["image"].dims == ("image_row", "dim")
    s = opened(path, "stats/items")
    assert list(s["item_type"].values) == types + ["all"] and s["accuracy"].dims == ("item_type",)
    assert opened(path, "progress")["item_shards"].dims == ("item_shard",)


@pytest.mark.parametrize("key", ["plain", "items", "negbench"])
def test_every_dataset_described(files, key):
    datasets = assert_every_dataset_described(files[key])
    assert len(datasets) >= (60 if key == "plain" else 50)


def test_compressed_reads_identically(files):
    """Every dataset (h5py) of the deflated file equals the uncompressed one, bit for bit (the
    uncompressed file has /stats and /tsne in addition: left out)."""
    assert_same_datasets(files["plain"], files["z1"], skip=("stats", "tsne"))
    with h5py.File(files["z1"], "r") as z, h5py.File(files["plain"], "r") as p:
        for name in ("similarity/full", "similarity/paired", "embeddings/text", "texts/status"):
            assert z[name].compression == "gzip" and z[name].compression_opts == 6, name
            assert p[name].chunks is not None and p[name].compression is None, name
        # chunks follow the writers' blocks: image shard (3) x tile (64) for full, text shard (32) rows
        assert z["similarity/full"].chunks == (3, 64) and z["embeddings/text"].chunks[0] == 32


def test_compression_level_out_of_range(files, tmp_path):
    p = run_eval(1, DEMO, SMALL + ["--set", "output.compression=10"], env_for(tmp_path))
    assert p.returncode == 3 and "compression" in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / "demo.h5").exists()


def test_compressed_one_vs_three_ranks(files):
    assert_same_results(files["z1"], files["z3"])


# killed in the text (round 3), image (8) and similarity (10) phases of a 2-rank run (as
# test_eval_resume.py), resumed on 3, 1 and 4 ranks
@pytest.mark.parametrize("kill_after,resume_np,phase", [(3, 3, "text_shards"), (8, 1, "image_shards"),
                                                         (10, 4, "sim_shards")])
def test_compressed_sigkill_then_resume(files, tmp_path, kill_after, resume_np, phase):
    """Deflated chunks move when rewritten: a run killed mid-round (data written and flushed, flags
    not) must still resume to exactly the uninterrupted result."""
    path = str(tmp_path / "demo.h5")
    p = run_eval(2, DEMO, SMALL + COMPRESS, env_for(tmp_path, CLIPNEG_TEST_KILL_AFTER_ROUNDS=kill_after))
    assert p.returncode != 0 and "test hook: SIGKILL" in p.stderr
    with h5py.File(path, "r") as f:
        done = f["progress/" + phase][()]
        assert f.attrs["complete"] == 0 and 0 < done.sum() < len(done)
    p = run_eval(resume_np, DEMO, SMALL + COMPRESS, env_for(tmp_path))
    assert p.returncode == 0 and "resuming" in p.stderr, p.stderr[-3000:]
    assert_same_results(files["z1"], path)


def test_load(files):
    path = files["plain"]
    res = load(path)
    df, ds = res.pairs, res.dataset
    with h5py.File(path, "r") as f:
        paired = f["similarity/paired"][()]
        n_cap, V = paired.shape
        cap_img = f["captions/image_index"][()]
        img_id = f["images/id"][()]
        names = strings(f, "variants/name")
        pol = f["variants/polarity"][()]
        cap_text = strings(f, "captions/text")
        texts = strings(f, "texts/text")
        tst = f["texts/status"][()]
    assert len(df) == n_cap * V
    assert df["similarity"].to_numpy().tobytes() == paired.reshape(-1).tobytes()
    rows = np.arange(n_cap * V)
    assert (df["image_id"].to_numpy() == img_id[cap_img[rows // V]]).all()
    assert list(df["variant"]) == [names[r % V] for r in rows]
    assert list(df["polarity"]) == [["positive", "negative", "other"][pol[r % V]] for r in rows]
    assert list(df["caption"]) == [cap_text[r // V] for r in rows] and list(df["text"]) == texts
    ok = (df["status"] == "ok").to_numpy()
    assert (ok == (tst == 0)).all() and np.isfinite(df["similarity"][ok]).all()
    assert np.isnan(df["similarity"][~ok]).all() and set(df["status"][~ok]) <= {"no subject found"}
    assert ds["similarity"].dims == ("caption", "variant") and ds["full"].dims == ("image", "text")
    assert list(ds["variant"].values) == names and (ds["image_id"].values == img_id[cap_img]).all()
    assert ds["similarity"].values.tobytes() == paired.tobytes()


def test_status_rows_in_report(files):
    """The report's "pairs by status" table counts /texts/status per variant (h5py)."""
    from clipneg_analysis.load import pairs_frame, status_rows
    header, rows = status_rows(pairs_frame(files["plain"]))
    with h5py.File(files["plain"], "r") as f:
        names = strings(f, "variants/name")
        st = f["texts/status"][()].reshape(-1, len(names))
    assert header[:2] == ["variant", "ok"] and [r[0][1] for r in rows] == names
    for v, row in enumerate(rows):
        counts = dict(zip(header[1:], (c[1] for c in row[1:])))
        assert counts["ok"] == int((st[:, v] == 0).sum())
        assert counts.get("no subject found", 0) == int((st[:, v] == 1).sum())
        assert sum(counts.values()) == st.shape[0]


def test_pairs_command(files, tmp_path):
    import pandas as pd
    out = tmp_path / "pairs.csv"
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "analysis"))
    p = subprocess.run([sys.executable, "-m", "clipneg_analysis", "pairs", files["plain"], "--status", "ok", "-o",
                        str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(out)
    with h5py.File(files["plain"], "r") as f:
        assert len(df) == int((f["texts/status"][()] == 0).sum())
