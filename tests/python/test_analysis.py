"""The analysis package (analysis/, importable as clipneg_analysis) on real and synthetic files.

Inputs: the real pipeline's output (`clipneg eval jobs/demo.ini`, tiny random-weights model on coco-mini,
then `clipneg reduce` and `clipneg export-tsne`) when it can be made, and synthetic h5py files (one with
/stats and /tsne, one without either, random_weights = 0) so the fallback paths are covered too.
Figures are checked for being real pictures: PNG that decodes, not tiny, not uniform (pixel std), and
for the t-SNE, every kind of point drawn in its own colour with the expected counts.
Numbers in tables are compared with /stats (or, for the fallback, numpy on /similarity/paired).
"""
import csv
import io
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

ROOT = os.environ.get("CLIPNEG_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(ROOT, "analysis"))
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import make_synthetic_h5  # noqa: E402

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from clipneg_analysis import Run, cli, hist, prompts, report, table, tsne  # noqa: E402
from clipneg_analysis.style import KIND_COLORS  # noqa: E402

BIN = os.environ.get("CLIPNEG_BIN", "")
HAVE_BIN = bool(BIN) and os.path.exists(BIN)
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def clipneg(*args):
    p = subprocess.run([BIN] + [str(a) for a in args], env=ENV, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return p


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("analysis")
    out = {}
    plain = str(d / "plain.h5")             # no /stats, no /tsne, real-looking weights flag
    make_synthetic_h5.make(plain, n_img=20, dim=32, seed=4, full="none", random_weights=0)
    out["plain"] = plain
    if not HAVE_BIN:
        out["why"] = "CLIPNEG_BIN not set: only the fallback paths are tested"
        return out
    syn = str(d / "syn.h5")
    make_synthetic_h5.make(syn, n_img=30, dim=32, seed=5, full="f16", random_weights=1)
    clipneg("reduce", syn, "--no-table")
    clipneg("export-tsne", syn, "--max-points", 200, "--pca", 10)
    out["syn"] = syn
    demo, why = make_synthetic_h5.real_demo_file()
    if demo:
        p = str(d / "demo.h5")
        shutil.copy(demo, p)
        clipneg("reduce", p, "--no-table")
        clipneg("export-tsne", p, "--max-points", 240)
        out["demo"] = p
    else:
        out["why"] = why
    return out


def need(runs, key):
    if key not in runs:
        pytest.skip(runs.get("why", f"no {key} file"))
    return runs[key]


def check_png(path, min_bytes=15000, min_std=12.0):
    assert os.path.getsize(path) >= min_bytes, f"{path}: only {os.path.getsize(path)} bytes"
    im = np.asarray(Image.open(path).convert("RGB")).astype(np.int32)
    assert im.shape[0] > 200 and im.shape[1] > 200
    assert im.std() > min_std, f"{path}: nearly uniform image (std {im.std():.1f})"
    return im


def color_pixels(im, hexcolor):
    rgb = np.array([int(hexcolor[i:i + 2], 16) for i in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(im - rgb) <= 2, axis=-1)))


# ---- table ----------------------------------------------------------------------------------------

def test_table_matches_stats(runs, tmp_path):
    files = [runs[k] for k in ("demo", "syn", "plain") if k in runs]
    rs = [Run(f) for f in files]
    md = table.render(rs, "markdown")
    lines = [l for l in md.splitlines() if l.startswith("| ")]
    assert len(lines) == 1 + len(files)                     # header + one row per file
    for r, line in zip(rs, lines[1:]):
        assert line.startswith(f"| {r.label}")
        for v in r.negatives():
            f, n = int(r.stats["contrast/n_flips"][v]), int(r.stats["contrast/n_pairs"][v])
            assert f"{f}/{n} (" in line
    assert ("† random weights" in md) == any(r.random_weights for r in rs)
    # CSV: raw numbers equal to /stats (or the computed fallback)
    rows = list(csv.DictReader(io.StringIO(table.render(rs, "csv"))))
    assert len(rows) == len(files)
    for r, row in zip(rs, rows):
        for v, name in enumerate(r.names):
            assert float(row[f"mean_{name}"]) == pytest.approx(float(r.stats["variants/mean"][v]), rel=1e-12)
        for v in r.negatives():
            assert int(row[f"n_flips_{r.names[v]}"]) == r.stats["contrast/n_flips"][v]
    long_rows = list(csv.DictReader(io.StringIO(table.render(rs, "csv", long=True))))
    assert len(long_rows) == sum(r.V for r in rs)
    tex = table.render(rs, "latex")
    assert tex.startswith("\\begin{tabular}") and "\\bottomrule" in tex and "\\_" in tex
    assert tex.count("\\\\") == 1 + len(files)


def test_fallback_statistics_match_numpy(runs):
    r = Run(runs["plain"])
    assert r.stats_source == "computed" and not r.random_weights
    with h5py.File(runs["plain"], "r") as f:
        P = f["similarity/paired"][()]
    base = r.names.index("original")                          # the job text's base_variant
    assert r.base == base
    for v in r.negatives():
        ok = ~np.isnan(P[:, v]) & ~np.isnan(P[:, base])
        assert r.stats["contrast/n_flips"][v] == np.sum(P[ok, v] > P[ok, base])
        assert r.stats["contrast/neg_accuracy"][v] == pytest.approx(np.mean(P[ok, base] > P[ok, v]))
    for v in range(r.V):
        x = P[:, v][~np.isnan(P[:, v])].astype(np.float64)
        assert r.stats["variants/mean"][v] == pytest.approx(x.mean(), rel=1e-12)
        assert r.stats["variants/hist"][v].sum() == x.size
    md = table.render([r])
    assert "computed from /similarity/paired" in md


def test_table_cli(runs, tmp_path, capsys):
    f = runs.get("syn", runs["plain"])
    assert cli.main(["table", f]) == 0
    assert "| model |" in capsys.readouterr().out
    out = tmp_path / "t.tex"
    assert cli.main(["table", f, "--latex", "--long", "-o", str(out)]) == 0
    assert out.read_text().count("\\\\") == 1 + Run(f).V
    assert cli.main(["table", str(tmp_path / "missing.h5")]) == 1
    assert "no such file" in capsys.readouterr().err


# ---- figures --------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["demo", "syn"])
def test_tsne_figure(runs, tmp_path, which):
    path = need(runs, which)
    r = Run(path)
    png = str(tmp_path / f"tsne_{which}.png")
    Y1, kind = tsne.embed(r, seed=3, n_iter=200)
    Y2, _ = tsne.embed(r, seed=3, n_iter=200)
    np.testing.assert_array_equal(Y1, Y2)                     # seeded: the same picture every time
    assert Y1.shape == (len(r.tsne["kind"]), 2) and np.all(np.isfinite(Y1))
    _, counts = tsne.plot(r, png, Y=Y1)
    expected = {k: int(n) for k, n in enumerate(np.bincount(r.tsne["kind"])) if n}
    assert counts == expected and {0, 1, 2} <= set(counts)    # images, positive and negative captions
    im = check_png(png)
    for k, n in counts.items():                               # each kind drawn in its own colour
        assert color_pixels(im, KIND_COLORS[k]) >= 4 * min(n, 50), f"kind {k}: colour {KIND_COLORS[k]} missing"


def test_tsne_needs_export(runs, tmp_path, capsys):
    assert cli.main(["tsne", runs["plain"], "-o", str(tmp_path / "x.png")]) == 1
    assert "clipneg export-tsne" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("which", ["demo", "syn", "plain"])
def test_prompts_figure(runs, tmp_path, which):
    path = need(runs, which)
    r = Run(path)
    iid = r.default_image_id()
    png = str(tmp_path / f"prompts_{which}.png")
    _, items = prompts.plot(r, iid, png)
    row = r.image_row(iid)
    caps = r.captions_of(row)
    assert len(items) == len(caps) * r.V
    with h5py.File(path, "r") as f:
        texts = f["texts/text"].asstr()[()]
    for it in items:
        assert it["caption"] in caps and r.caption_image[it["caption"]] == row
        np.testing.assert_equal(it["sim"], r.paired[it["caption"], it["variant"]])
        assert it["text"] == texts[it["caption"] * r.V + it["variant"]]
    check_png(png)
    # one caption only, through the command line
    png1 = str(tmp_path / "one.png")
    assert cli.main(["prompts", path, "--image-id", str(iid), "--caption", "0", "-o", png1]) == 0
    check_png(png1, min_bytes=8000)
    assert cli.main(["prompts", path, "--image-id", "-5", "-o", png1]) == 1


def test_prompts_shows_the_image(runs, tmp_path):
    path = need(runs, "demo")
    r = Run(path)
    iid = r.default_image_id()
    assert prompts.find_image(r, r.image_row(iid)) is not None, "coco-mini image not found via CLIPNEG_SHARED"
    png = str(tmp_path / "with_image.png")
    prompts.plot(r, iid, png, caption=0)
    im = check_png(png, min_bytes=8000)
    # the photo occupies the left part: many distinct colours there, unlike a plain chart
    left = im[:, : im.shape[1] // 4].reshape(-1, 3)
    assert len(np.unique(left, axis=0)) > 500


@pytest.mark.parametrize("which", ["demo", "syn", "plain"])
def test_hist_figure(runs, tmp_path, which):
    path = need(runs, which)
    r = Run(path)
    png = str(tmp_path / f"hist_{which}.png")
    _, panels = hist.plot(r, png)
    assert panels == r.V - 1                                  # every variant but the base
    im = check_png(png)
    for p in set(int(x) for x in r.polarity):                 # each polarity's colour is drawn
        assert color_pixels(im, {0: KIND_COLORS[1], 1: KIND_COLORS[2], 2: KIND_COLORS[3]}[p]) > 200


# ---- report ---------------------------------------------------------------------------------------

def test_report(runs, tmp_path):
    files = [runs[k] for k in ("demo", "syn", "plain") if k in runs]
    out = tmp_path / "report.html"
    assert cli.main(["report"] + files + ["-o", str(out), "--tsne-iterations", "150"]) == 0
    text = out.read_text(encoding="utf-8")
    rs = [Run(f) for f in files]
    # loud banner exactly when a file has random weights (one page banner + one per such file)
    n_random = sum(r.random_weights for r in rs)
    assert text.count('<div class="banner">') == (n_random + 1 if n_random else 0)
    if n_random:
        assert "RANDOM WEIGHTS" in text
    # self-contained: every figure embedded, nothing fetched from elsewhere
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    n_tsne = sum(r.tsne is not None for r in rs)
    assert len(pngs) == 2 * len(rs) + n_tsne                  # hist + prompts per file, t-SNE where exported
    import base64

    for b in pngs:
        im = Image.open(io.BytesIO(base64.b64decode(b)))
        im.verify()
    assert not re.search(r'(src|href)="(http|//)', text)
    for r in rs:
        assert f"<td>{r.label}" in text
    if "plain" in runs:
        assert "No /tsne in this file" in text and "No /stats in this file" in text


def test_console_script_entry_point():
    """pyproject declares `clipneg-analysis`; `python -m clipneg_analysis` runs the same main."""
    text = open(os.path.join(ROOT, "analysis", "pyproject.toml")).read()
    assert 'clipneg-analysis = "clipneg_analysis.cli:main"' in text
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "analysis"))
    p = subprocess.run([sys.executable, "-m", "clipneg_analysis", "--help"], env=env, capture_output=True, text=True)
    assert p.returncode == 0
    for sub in ("table", "tsne", "prompts", "hist", "report"):
        assert sub in p.stdout
