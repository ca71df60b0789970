"""`clipneg export-tsne`: PCA against scikit-learn on the same rows, the stratified sample, rank-count
independence, and refusals.

Tolerances: the covariance and eigenvectors are float64 on both sides, so components agree to ~1e-12;
the stored coordinates X are float32, so they are compared with atol 1e-5 (|X| < 2, float32
rounding ~1e-7, plus the float64 differences). explained_variance(_ratio): rtol 1e-9. Components are
compared only where the eigenvalue gap to both neighbours is > 1e-6 relative (elsewhere the
eigenvectors are not determined by the data); the test asserts that at least half of them qualify.
"""
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
sklearn_decomposition = pytest.importorskip("sklearn.decomposition")


def run(args, ranks=1, check=True):
    return run_command("export-tsne", args, ranks, check)


def read_tsne(path):
    with h5py.File(path, "r") as f:
        t = f["tsne"]
        out = {k: t[k][()] for k in t}
        out["attrs"] = dict(t.attrs)
        out["polarity"] = f["variants/polarity"][()]
        out["names"] = [s.decode() if isinstance(s, bytes) else s for s in f["variants/name"][()]]
        out["img_status"] = f["images/status"][()]
        out["txt_status"] = f["texts/status"][()]
        out["image_index_of_caption"] = f["captions/image_index"][()]
        img, txt = f["embeddings/image"][()], f["embeddings/text"][()]
    V = len(out["names"])
    rows = []
    for k, v, i, c in zip(out["kind"], out["variant"], out["image_index"], out["caption_index"]):
        rows.append(img[i] if k == 0 else txt[c * V + v])
    out["rows"] = np.array(rows, dtype=np.float64)
    return out


def fix_signs(comp):
    comp = comp.copy()
    for k in range(comp.shape[0]):
        j = np.argmax(np.abs(comp[k]))
        if comp[k, j] < 0:
            comp[k] = -comp[k]
    return comp


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    d = tmp_path_factory.mktemp("tsne")
    p = str(d / "syn.h5")
    make_synthetic_h5.make(p, n_img=60, dim=48, seed=3, full="none")
    out = {"syn": p}
    demo, why = make_synthetic_h5.real_demo_file()
    if demo:
        out["demo"] = demo
    else:
        out["demo_reason"] = why
    return out


def check_pca(t, K):
    X = t["rows"]
    n, D = X.shape
    pca = sklearn_decomposition.PCA(n_components=K, svd_solver="full").fit(X)
    ev = pca.explained_variance_
    np.testing.assert_allclose(t["explained_variance"], ev, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(t["explained_variance_ratio"], pca.explained_variance_ratio_, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(t["mean"], X.mean(axis=0), rtol=0, atol=1e-12)
    full_ev = np.linalg.eigvalsh(np.cov(X.T))[::-1]
    ok = []
    for k in range(K):
        gaps = [abs(full_ev[k] - full_ev[j]) for j in (k - 1, k + 1) if 0 <= j < len(full_ev)]
        ok.append(min(gaps) > 1e-6 * full_ev[0])
    ok = np.array(ok)
    assert ok.sum() >= K // 2, "synthetic data too degenerate to test the components"
    ref_comp = fix_signs(pca.components_)
    np.testing.assert_allclose(t["components"][ok], ref_comp[ok], rtol=0, atol=1e-8)
    ref_X = (X - pca.mean_) @ ref_comp.T
    np.testing.assert_allclose(t["X"][:, ok], ref_X[:, ok], rtol=0, atol=1e-5)
    # clipneg's own sign rule holds for every component
    for k in range(K):
        assert t["components"][k][np.argmax(np.abs(t["components"][k]))] > 0


@pytest.mark.parametrize("which", ["syn", "demo"])
def test_pca_matches_sklearn(syn, tmp_path, which):
    if which not in syn:
        pytest.skip(f"no real demo output: {syn['demo_reason']}")
    path = str(tmp_path / "a.h5")
    shutil.copy(syn[which], path)
    run([path, "--max-points", 400, "--pca", 12, "--seed", 5])
    t = read_tsne(path)
    assert t["X"].shape == (len(t["kind"]), 12) and t["X"].dtype == np.float32
    check_pca(t, 12)


def test_sampling(syn, tmp_path):
    path = str(tmp_path / "s.h5")
    shutil.copy(syn["syn"], path)
    run([path, "--max-points", 300, "--pca", 5, "--seed", 1])
    t = read_tsne(path)
    pol, V = t["polarity"], len(t["names"])
    base = t["names"].index("original")
    chosen = [v for v in range(V) if v == base or pol[v] == 1]   # default: base + every negative
    assert t["attrs"]["variants"] == ",".join(t["names"][v] for v in chosen)
    avail = np.array([np.sum(t["img_status"] == 1),
                      sum(np.sum(t["txt_status"][v::V] == 0) for v in chosen if pol[v] == 0),
                      sum(np.sum(t["txt_status"][v::V] == 0) for v in chosen if pol[v] == 1), 0])
    np.testing.assert_array_equal(t["n_available"], avail)
    counts = np.bincount(t["kind"], minlength=4)
    # equal shares with water filling: the 59 valid images are all taken, the rest is split evenly
    assert counts.sum() == 300 and counts[0] == avail[0] == 59
    assert abs(int(counts[1]) - int(counts[2])) <= 1 and counts[3] == 0
    # every sampled row is valid, distinct, of a chosen variant, and consistent with /captions
    texts = t["kind"] > 0
    assert np.all(t["variant"][~texts] == -1) and np.all(t["caption_index"][~texts] == -1)
    assert np.all(np.isin(t["variant"][texts], chosen))
    trow = t["caption_index"][texts].astype(np.int64) * V + t["variant"][texts]
    assert np.all(t["txt_status"][trow] == 0) and len(set(trow)) == len(trow)
    assert np.all(t["image_index"][texts] == t["image_index_of_caption"][t["caption_index"][texts]])
    assert np.all(t["img_status"][t["image_index"][~texts]] == 1)
    assert np.all([pol[v] == k - 1 for v, k in zip(t["variant"][texts], t["kind"][texts])])
    assert np.all(np.isfinite(t["X"]))
    # same seed -> same sample; another seed -> another one
    run([path, "--max-points", 300, "--pca", 5, "--seed", 1])
    t2 = read_tsne(path)
    np.testing.assert_array_equal(t2["caption_index"], t["caption_index"])
    np.testing.assert_array_equal(t2["X"], t["X"])
    run([path, "--max-points", 300, "--pca", 5, "--seed", 2])
    assert not np.array_equal(read_tsne(path)["caption_index"], t["caption_index"])


def test_variants_option_and_all_points(syn, tmp_path):
    path = str(tmp_path / "v.h5")
    shutil.copy(syn["syn"], path)
    run([path, "--variants", "photo_of,other_obj,this_is_not", "--max-points", 0, "--pca", 4])
    t = read_tsne(path)
    V = len(t["names"])
    chosen = [t["names"].index(n) for n in ("photo_of", "this_is_not", "other_obj")]
    expect = np.sum(t["img_status"] == 1) + sum(np.sum(t["txt_status"][v::V] == 0) for v in chosen)
    assert len(t["kind"]) == expect                            # --max-points 0: every valid row
    assert set(np.unique(t["variant"][t["kind"] > 0])) == set(chosen)
    assert np.sum(t["kind"] == 3) == np.sum(t["txt_status"][chosen[2]::V] == 0)  # "other" polarity -> kind 3
    check_pca(t, 4)


def test_rank_count_does_not_change_results(syn, tmp_path):
    out = []
    for ranks in (1, 3):
        path = str(tmp_path / f"r{ranks}.h5")
        shutil.copy(syn["syn"], path)
        run([path, "--max-points", 350, "--pca", 8, "--block-rows", 40], ranks=ranks)
        out.append(read_tsne(path))
    for key in ("X", "kind", "variant", "image_index", "caption_index", "explained_variance", "components", "mean"):
        assert np.array_equal(out[0][key], out[1][key]), f"/tsne/{key} differs between 1 and 3 ranks"


def test_incomplete_file_uses_finished_shards_only(syn, tmp_path):
    path = str(tmp_path / "partial.h5")
    shutil.copy(syn["syn"], path)
    with h5py.File(path, "a") as f:
        f.attrs["complete"] = 0
        S = int(f["progress"].attrs["text_shard"])
        f["progress/text_shards"][0] = 0          # text rows [0, S) not written yet (garbage)
        f["embeddings/text"][:S] = np.nan
        f["progress/image_shards"][0] = 0         # image rows [0, 64) neither
        f["embeddings/image"][:64] = np.nan
    run([path, "--max-points", 0, "--pca", 4])
    t = read_tsne(path)
    V = len(t["names"])
    texts = t["kind"] > 0
    assert np.all(t["caption_index"][texts].astype(np.int64) * V + t["variant"][texts] >= S)
    assert not np.any(t["kind"] == 0)                 # every image is in the unfinished shard
    assert np.all(np.isfinite(t["X"]))


def test_bad_input_is_refused(syn, tmp_path):
    path = str(tmp_path / "b.h5")
    shutil.copy(syn["syn"], path)
    p = run([path, "--pca", 1000], check=False)
    assert p.returncode == 2 and "--pca" in p.stderr
    p = run([path, "--variants", "original,nope"], check=False)
    assert p.returncode == 2 and "'nope'" in p.stderr
    p = run([path, "--max-points", "-1"], check=False)
    assert p.returncode == 2
    noemb = str(tmp_path / "noemb.h5")
    make_synthetic_h5.make(noemb, n_img=8, dim=8, seed=1, full="none", embeddings=False)
    p = run([noemb], check=False)
    assert p.returncode == 5 and "/embeddings" in p.stderr
    # a row whose status says ok but whose embedding is NaN: a damaged file, refused with its row
    with h5py.File(path, "a") as f:
        f["embeddings/text"][6, 3] = np.nan
        f["texts/status"][6] = 0
    p = run([path, "--max-points", 0, "--variants", "original", "--pca", 4], check=False)
    assert p.returncode == 5 and "row 6 of /embeddings/text" in p.stderr
