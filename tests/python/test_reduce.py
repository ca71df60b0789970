"""`clipneg reduce` against an independent numpy computation from the stored similarities/embeddings.

Inputs: synthetic evaluation files written with h5py by tests/reference/make_synthetic_h5.py (failed
images, unrendered texts, exact ties, duplicate images), one per retrieval source (/similarity/full as
float16 or float32, /embeddings only, neither), plus the real demo output when CLIPNEG_DEMO_H5 names
one. Tolerances (stated per check):
  * counts, flips, ties, histograms, R@k from /similarity/full: exact;
  * mean/std/min/max/mean diff/Cohen's d: 1e-12 relative (float64 accumulation, different order);
  * quantiles: 5e-5 = half a fine-histogram bin (20000 bins over [-1, 1]), + 1e-12;
  * bootstrap CI: 1e-12 (the splitmix64 draws are reproduced here bit for bit);
  * R@k from embeddings: clipneg's float32 dot products may order near-ties (|gap| < 1e-5)
    differently from numpy's float64: the value must lie between the pessimistic and optimistic
    counts with a 1e-5 band.
1 rank vs 3 ranks: /stats must be bit-identical (fixed global blocks merged in block order).
"""
import json
import os
import shutil
import sys

import h5py
import numpy as np
import pytest

ROOT = os.environ.get("CLIPNEG_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import make_synthetic_h5  # noqa: E402
from eval_common import run_command  # noqa: E402

BIN = os.environ.get("CLIPNEG_BIN", "")
if not BIN or not os.path.exists(BIN):
    pytest.skip("CLIPNEG_BIN is not set to a built clipneg (run through ctest)", allow_module_level=True)


def run(args, ranks=1, check=True):
    return run_command("reduce", args, ranks, check)


def read_stats(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f["stats"].visititems(visit)
        out["attrs"] = dict(f["stats"].attrs)
    return out


# ---- independent reference ---------------------------------------------------------------------

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def splitmix_at(key, j):
    with np.errstate(over="ignore"):
        j = np.asarray(j, dtype=np.uint64)
        return _mix(np.uint64(key) + (j + np.uint64(1)) * GOLDEN)


def bootstrap_ci(x, n_resamples, seed, variant):
    n = len(x)
    kv = splitmix_at(seed, [variant])[0]
    keys = splitmix_at(kv, np.arange(n_resamples))
    means = np.empty(n_resamples)
    for r in range(n_resamples):
        idx = splitmix_at(keys[r], np.arange(n)) % np.uint64(n)
        means[r] = np.cumsum(x[idx.astype(np.int64)])[-1] / n   # sequential sum, as in C
    return np.quantile(means, 0.025), np.quantile(means, 0.975), means


def load(path):
    with h5py.File(path, "r") as f:
        d = {
            "paired": f["similarity/paired"][()].astype(np.float32),
            "polarity": f["variants/polarity"][()],
            "names": [s.decode() if isinstance(s, bytes) else s for s in f["variants/name"][()]],
            "image_index": f["captions/image_index"][()],
            "n_img": f["images/id"].shape[0],
        }
        d["full"] = f["similarity/full"][()].astype(np.float32) if "similarity/full" in f else None
        if "embeddings" in f:
            d["img"] = f["embeddings/image"][()].astype(np.float64)
            d["txt"] = f["embeddings/text"][()].astype(np.float64)
        return d


def ref_retrieval(S, image_index, V, base, band=0.0):
    """R@k for a similarity matrix S [N_img, N_text]; returns (t2i counts [V, 4], i2t counts [4]) for
    the strict rule with `band`: a candidate beats the own item when s > own + band."""
    n_img, n_text = S.shape
    own_img = image_index[np.arange(n_text) // V]
    t2i = np.zeros((V, 4), dtype=np.int64)
    own = S[own_img, np.arange(n_text)]
    valid_q = ~np.isnan(own)
    with np.errstate(invalid="ignore"):
        beats = np.sum(np.nan_to_num(S, nan=-np.inf) > own[None, :] + band, axis=0)
    for t in np.nonzero(valid_q)[0]:
        v = t % V
        t2i[v, 0] += 1
        for j, k in enumerate((1, 5, 10)):
            t2i[v, j + 1] += beats[t] < k
    i2t = np.zeros(4, dtype=np.int64)
    base_cols = np.arange(base, n_text, V)
    Sb = np.nan_to_num(S[:, base_cols], nan=-np.inf)
    caps_img = image_index
    for i in range(n_img):
        mine = Sb[i, caps_img == i]
        if mine.size == 0 or not np.isfinite(mine).any():
            continue
        best = mine.max()
        n_beat = np.sum(Sb[i] > best + band)
        i2t[0] += 1
        for j, k in enumerate((1, 5, 10)):
            i2t[j + 1] += n_beat < k
    return t2i, i2t


# ---- fixtures ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("reduce")
    out = {}
    for kind in ("f16", "f32", "none"):
        p = str(d / f"syn_{kind}.h5")
        make_synthetic_h5.make(p, n_img=40, dim=64, seed=1, full=kind)
        out[kind] = p
    p = str(d / "syn_noemb.h5")
    make_synthetic_h5.make(p, n_img=12, dim=16, seed=2, full="none", embeddings=False)
    out["noemb"] = p
    demo, why = make_synthetic_h5.real_demo_file()
    if demo:
        p = str(d / "demo.h5")
        shutil.copy(demo, p)
        out["demo"] = p
    else:
        out["demo_reason"] = why
    return out


def check_against_numpy(path, stats, bootstrap=1000, seed=0):
    d = load(path)
    P, pol = d["paired"], d["polarity"]
    V = P.shape[1]
    base = int(stats["attrs"]["base_index"])
    # per variant moments and histograms
    for v in range(V):
        s = P[:, v][~np.isnan(P[:, v])].astype(np.float64)
        assert stats["variants/count"][v] == s.size
        np.testing.assert_allclose(stats["variants/mean"][v], s.mean(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(stats["variants/std"][v], s.std(ddof=1), rtol=1e-12)
        assert stats["variants/min"][v] == s.min() and stats["variants/max"][v] == s.max()
        for q, key in ((0.05, "q05"), (0.25, "q25"), (0.5, "median"), (0.75, "q75"), (0.95, "q95")):
            assert abs(stats[f"variants/{key}"][v] - np.quantile(s, q)) <= 5e-5 + 1e-12, (v, key)
        # 400 bins over [-1, 1]: floor(((x + 1) * 0.5) * 400), clamped (same IEEE operations as documented)
        idx = np.clip(np.floor(((s + 1.0) * 0.5) * 400.0), 0, 399).astype(int)
        np.testing.assert_array_equal(stats["variants/hist"][v], np.bincount(idx, minlength=400))
        h_np, _ = np.histogram(np.clip(s, -1, 1), bins=400, range=(-1, 1))
        assert np.abs(stats["variants/hist"][v] - h_np).sum() <= 2  # only exact-edge rounding may differ
    # contrasts
    for v in range(V):
        if pol[v] != 1 or v == base:
            assert stats["contrast/n_pairs"][v] == -1 and np.isnan(stats["contrast/mean_diff"][v])
            continue
        b, n = P[:, base], P[:, v]
        ok = ~np.isnan(b) & ~np.isnan(n)
        b, n = b[ok], n[ok]
        diff = n.astype(np.float64) - b.astype(np.float64)
        assert stats["contrast/n_pairs"][v] == ok.sum()
        assert stats["contrast/n_flips"][v] == np.sum(n > b)
        assert stats["contrast/n_wins"][v] == np.sum(b > n)
        assert stats["contrast/n_ties"][v] == np.sum(b == n)
        np.testing.assert_allclose(stats["contrast/flip_share"][v], np.mean(n > b), rtol=1e-15)
        np.testing.assert_allclose(stats["contrast/neg_accuracy"][v], np.mean(b > n), rtol=1e-15)
        np.testing.assert_allclose(stats["contrast/mean_diff"][v], diff.mean(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(stats["contrast/std_diff"][v], diff.std(ddof=1), rtol=1e-12)
        np.testing.assert_allclose(stats["contrast/cohens_d"][v], diff.mean() / diff.std(ddof=1), rtol=1e-10)
        if bootstrap:
            lo, hi, means = bootstrap_ci(diff, bootstrap, seed, v)
            np.testing.assert_allclose([stats["contrast/ci_low"][v], stats["contrast/ci_high"][v]], [lo, hi],
                                       rtol=0, atol=1e-12)
            # and it behaves like a bootstrap: centred on the mean, width ~ 2 * 1.96 * sd / sqrt(n)
            assert lo < diff.mean() < hi
            se = diff.std(ddof=1) / np.sqrt(diff.size)
            assert 0.8 * 3.92 * se < hi - lo < 1.2 * 3.92 * se
    # retrieval
    src = stats["attrs"].get("source")
    with h5py.File(path, "r") as f:
        src = f["stats/retrieval"].attrs["source"]
    got_t2i = np.stack([stats["retrieval/t2i_n"],
                        np.round(stats["retrieval/t2i_r1"] * stats["retrieval/t2i_n"]),
                        np.round(stats["retrieval/t2i_r5"] * stats["retrieval/t2i_n"]),
                        np.round(stats["retrieval/t2i_r10"] * stats["retrieval/t2i_n"])], axis=1)
    got_i2t = np.array([stats["retrieval/i2t_n"]] + [np.round(stats[f"retrieval/i2t_r{k}"] *
                                                              stats["retrieval/i2t_n"]) for k in (1, 5, 10)])
    if src == "full":
        t2i, i2t = ref_retrieval(d["full"], d["image_index"], V, base)
        np.testing.assert_array_equal(got_t2i, t2i)
        np.testing.assert_array_equal(got_i2t, i2t)
    elif src == "embeddings":
        S = d["img"] @ d["txt"].T
        t_lo, i_lo = ref_retrieval(S, d["image_index"], V, base, band=-1e-5)  # near-ties count against
        t_hi, i_hi = ref_retrieval(S, d["image_index"], V, base, band=+1e-5)  # near-ties count for
        assert np.all(t_lo <= got_t2i) and np.all(got_t2i <= t_hi), (t_lo, got_t2i, t_hi)
        assert np.all(i_lo <= got_i2t) and np.all(got_i2t <= i_hi), (i_lo, got_i2t, i_hi)
    else:
        assert src == "none" and np.all(np.isnan(stats["retrieval/t2i_r1"])) and stats["retrieval/i2t_n"] == 0
    return src


@pytest.mark.parametrize("kind", ["f16", "f32", "none", "noemb", "demo"])
def test_matches_numpy(files, kind):
    if kind not in files:
        pytest.skip(f"no real demo output: {files['demo_reason']}")
    path = files[kind]
    p = run([path, "--bootstrap", 1000, "--seed", 0])
    stats = read_stats(path)
    src = check_against_numpy(path, stats)
    expected_src = {"f16": "full", "f32": "full", "none": "embeddings", "noemb": "none"}.get(kind)
    if expected_src:
        assert src == expected_src
    # the markdown table shows the flip counts that numpy found
    d = load(path)
    base = int(stats["attrs"]["base_index"])
    for v in np.nonzero(d["polarity"] == 1)[0]:
        if v == base:
            continue
        assert f"| {d['names'][v]} | negative | " in p.stdout
        assert f"{stats['contrast/n_flips'][v]}/{stats['contrast/n_pairs'][v]}" in p.stdout
    # stats.json holds the same numbers
    js = json.load(open(path[:-3] + ".stats.json"))
    assert js["base_variant"] == stats["attrs"]["base_variant"]
    for v, jv in enumerate(js["variants"]):
        assert jv["count"] == stats["variants/count"][v]
        assert jv["mean"] == pytest.approx(stats["variants/mean"][v], rel=1e-15, abs=0)
        assert jv["hist"] == list(stats["variants/hist"][v])
        if stats["contrast/n_pairs"][v] >= 0:
            assert jv["contrast"]["n_flips"] == stats["contrast/n_flips"][v]
            assert jv["contrast"]["ci_low"] == pytest.approx(stats["contrast/ci_low"][v], rel=1e-15, abs=0)
        else:
            assert jv["contrast"] is None


def test_base_variant_choice(files, tmp_path):
    path = str(tmp_path / "b.h5")
    shutil.copy(files["f16"], path)
    run([path, "--no-table"])
    st = read_stats(path)["attrs"]
    assert st["base_variant"] == "original" and st["base_source"] == "provenance"
    run([path, "--base", "photo_of", "--bootstrap", 200, "--seed", 7, "--json", str(tmp_path / "x.json")])
    stats = read_stats(path)
    assert stats["attrs"]["base_variant"] == "photo_of" and stats["attrs"]["base_index"] == 1
    assert stats["attrs"]["bootstrap"] == 200 and stats["attrs"]["seed"] == 7
    check_against_numpy(path, stats, bootstrap=200, seed=7)
    assert json.load(open(tmp_path / "x.json"))["base_variant"] == "photo_of"
    # no provenance: the first positive variant
    with h5py.File(path, "a") as f:
        f.attrs["job_text"] = "[model]\npath = m\n"
    run([path, "--no-table"])
    assert read_stats(path)["attrs"]["base_source"] == "first positive"


def test_rank_count_does_not_change_results(files, tmp_path):
    """Small blocks and tiles so that 3 ranks really split the work; /stats must be bit-identical."""
    results = []
    for kind in ("f16", "none"):
        for ranks in (1, 3):
            path = str(tmp_path / f"r{ranks}_{kind}.h5")
            shutil.copy(files[kind], path)
            run([path, "--block-rows", 17, "--tile-texts", 100, "--tile-images", 7, "--no-table"], ranks=ranks)
            results.append(read_stats(path))
        a, b = results[-2], results[-1]
        for key in a:
            if key == "attrs":
                continue
            nan_ok = a[key].dtype.kind == "f"  # the variant-name coordinates are strings
            assert np.array_equal(a[key], b[key], equal_nan=nan_ok), f"{kind}: /stats/{key} differs between 1 and 3 ranks"
    # default (single) block vs 17-row blocks: same statistics up to rounding
    path = str(tmp_path / "default.h5")
    shutil.copy(files["f16"], path)
    run([path, "--no-table"])
    d = read_stats(path)
    for key in ("variants/mean", "variants/std", "contrast/mean_diff", "contrast/ci_low"):
        np.testing.assert_allclose(d[key], results[0][key], rtol=1e-12, equal_nan=True)
    for key in ("variants/hist", "contrast/n_flips", "retrieval/t2i_r5", "retrieval/i2t_r1"):
        assert np.array_equal(d[key], results[0][key], equal_nan=True)


def test_rerun_replaces_stats(files, tmp_path):
    path = str(tmp_path / "again.h5")
    shutil.copy(files["f32"], path)
    run([path, "--no-table", "--seed", 1])
    first = read_stats(path)
    run([path, "--no-table", "--seed", 2])
    second = read_stats(path)
    assert second["attrs"]["seed"] == 2
    assert not np.array_equal(first["contrast/ci_low"], second["contrast/ci_low"], equal_nan=True)
    np.testing.assert_array_equal(first["variants/hist"], second["variants/hist"])


def test_bad_input_is_refused(files, tmp_path):
    # missing file -> I/O error (6)
    p = run([str(tmp_path / "nope.h5")], check=False)
    assert p.returncode == 6 and "no such file" in p.stderr
    # not HDF5 -> data error (5)
    junk = tmp_path / "junk.h5"
    junk.write_text("hello")
    p = run([str(junk)], check=False)
    assert p.returncode == 5 and "not an HDF5 file" in p.stderr
    # an HDF5 file that is not an evaluation -> 5
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    p = run([str(tmp_path / "other.h5")], check=False)
    assert p.returncode == 5 and "not a clipneg evaluation file" in p.stderr
    # incomplete run: refused unless --allow-incomplete
    path = str(tmp_path / "partial.h5")
    shutil.copy(files["f16"], path)
    with h5py.File(path, "a") as f:
        f.attrs["complete"] = 0
    p = run([path], check=False)
    assert p.returncode == 5 and "not complete" in p.stderr
    assert run([path, "--allow-incomplete", "--no-table"]).returncode == 0
    with h5py.File(path, "r") as f:   # rows of unfinished shards of /similarity/full are undefined: no R@k
        assert f["stats/retrieval"].attrs["source"] == "none" and np.isnan(f["stats/retrieval/i2t_r1"][()])
        assert f["stats/variants/count"][0] > 0
    # unknown base variant -> usage error (2); bad option values -> 2
    p = run([path, "--allow-incomplete", "--base", "nope"], check=False)
    assert p.returncode == 2 and "'nope'" in p.stderr
    for args in (["--bootstrap", "-3"], ["--seed", "x"], ["--frobnicate"], ["--block-rows"]):
        p = run([path] + args, check=False)
        assert p.returncode == 2, args
    # inconsistent shapes -> 5, naming the dataset
    bad = str(tmp_path / "badshape.h5")
    shutil.copy(files["f16"], bad)
    with h5py.File(bad, "a") as f:
        del f["similarity/paired"]
        f["similarity/paired"] = np.zeros((3, 2), dtype=np.float32)
    p = run([bad], check=False)
    assert p.returncode == 5 and "/similarity/paired" in p.stderr
    # a caption pointing at a non-existent image -> 5
    bad2 = str(tmp_path / "badindex.h5")
    shutil.copy(files["f16"], bad2)
    with h5py.File(bad2, "a") as f:
        f["captions/image_index"][3] = 10_000
    p = run([bad2], check=False)
    assert p.returncode == 5 and "image_index[3]" in p.stderr
