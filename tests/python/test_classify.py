"""Zero-shot classification end to end (docs/classification.md): `clipneg eval` with
`[dataset] format = classification` on fixtures built here from coco-mini (images grouped by their
dominant COCO category, tests/reference/make_zeroshot_data.py coco_groups(): 6 classes, 43 images)
as an ImageFolder tree of symlinks and as a CSV, with the committed tiny random model, the 80 OpenAI
templates and the negated templates of jobs/classification/. Checked from the file with h5py/numpy
against open_clip's own zero-shot code path:
  * /classify/classifier[_negated] = open_clip.build_zero_shot_classifier (same model, same templates);
  * /classify/topk = the first-maximum top-5 of the stored image features x that classifier:
    the SAME predictions, image by image; from open_clip's own features of PIL-decoded images the
    same wherever the reference's margin exceeds the decoders' difference;
  * /stats/classify (top-1, top-5, ties, negation probe) = numpy's count of the reference;
  * ImageFolder and CSV give the same results; 1 rank and 3 ranks write identical files; a run
    killed in the classify phase, and one stopped by SIGTERM (exit 75), resume to the same file;
    `clipneg info` counts the classes/classify shards done;
  * bad files stop before any work (exit 5) with FILE:LINE and the field;
  * the file is self-describing (docs/hdf5-schema.md): xarray (h5netcdf) opens /classify with named
    dims, every dataset has a description and units, `[output] compression` deflates /classify
    without changing one value.
"""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from eval_common import BIN, BPE, COCO, REPO, TINY_MODEL, assert_every_dataset_described, assert_same_datasets, \
    assert_same_results, env_for, h5_strings, info, require_binaries, run_eval, tiny_open_clip, xr_open

sys.path.insert(0, os.path.join(REPO, "tests", "reference"))
from make_zeroshot_data import coco_groups  # noqa: E402

ZS = os.path.join(REPO, "jobs", "classification")
TEMPLATES = os.path.join(ZS, "openai_templates.txt")
NEGATED = os.path.join(ZS, "openai_templates_negated.txt")
INSTANCES = os.path.join(COCO, "annotations", "instances_val2017.json")


def lines(path):
    return [l for l in open(path, encoding="utf-8").read().splitlines() if l and not l.startswith("#")]


def write_job(d, name, path, classnames=None, templates=TEMPLATES, negated=NEGATED, images=None):
    job = os.path.join(d, f"{name}.ini")
    extra = "".join(f"{k} = {v}\n" for k, v in
                    (("classnames", classnames), ("negated_templates", negated), ("images", images)) if v)
    with open(job, "w") as f:
        f.write(f"""[model]
path = {TINY_MODEL}
tokenizer = {BPE}
[dataset]
format = classification
path = {path}
templates = {templates}
{extra}[variants]
file = {os.path.join(REPO, "jobs", "variants", "seed7.ini")}
[output]
path = ${{CLIPNEG_OUT}}/{name}.h5
[run]
backend = cpu
threads = 1
image_shard = 5
image_batch = 3
text_shard = 200
text_batch = 37
""")
    return job


def make_fixtures(d):
    """ImageFolder d/folder/<class>/<file> (symlinks) and d/labels.csv over the same images in the
    same order (class by class, files sorted), labels alternating class index and class name."""
    groups = coco_groups(INSTANCES)
    classes = sorted(groups)
    rows = []
    for c, name in enumerate(classes):
        os.makedirs(os.path.join(d, "folder", name))
        for f in groups[name]:
            os.symlink(os.path.join(COCO, "val2017", f), os.path.join(d, "folder", name, f))
            rows.append((f, c))
    with open(os.path.join(d, "classes.txt"), "w") as fp:
        fp.write("\n".join(classes) + "\n")
    with open(os.path.join(d, "labels.csv"), "w") as fp:
        fp.write("image,label\n")
        for i, (f, c) in enumerate(rows):
            fp.write(f"{f},{c if i % 2 else classes[c]}\n")
    return classes, rows


def classify_of(path):
    with h5py.File(path, "r") as f:
        g = f["classify"]
        d = {k: g[k][()] for k in g if isinstance(g[k], h5py.Dataset) and g[k].dtype.kind != "O"}
        d["classnames"] = list(g["classnames"].asstr()[()])
        d["attrs"] = dict(g.attrs)
        d["progress"] = (f["progress/class_shards"][()], f["progress/classify_shards"][()])
        d["complete"] = int(f.attrs.get("complete", 0))
        if "stats" in f and "classify" in f["stats"]:
            d["stats"] = {k: f["stats/classify"][k][()] for k in f["stats/classify"]}
    return d


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    require_binaries()
    d = str(tmp_path_factory.mktemp("classify"))
    classes, rows = make_fixtures(d)
    env = env_for(d)
    job = write_job(d, "folder", os.path.join(d, "folder"))
    p = run_eval(1, job, [], env)
    assert p.returncode == 0, p.stderr
    out = os.path.join(d, "folder.h5")
    r = subprocess.run([BIN, "reduce", out, "--bootstrap", "0"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return {"dir": d, "out": out, "env": env, "classes": classes, "rows": rows, "reduce_stdout": r.stdout,
            "stats_json": out[:-3] + ".stats.json"}


@pytest.fixture(scope="module")
def reference(run):
    """open_clip's zero-shot path: classifier [C, D] (and negated) from build_zero_shot_classifier;
    logits of the image features clipneg stored (so the predictions must be the same, image by
    image) and of open_clip's own features on PIL-decoded images (the end-to-end check)."""
    torch, open_clip, model, preprocess = tiny_open_clip()
    from open_clip.zero_shot_classifier import build_zero_shot_classifier
    from PIL import Image

    def templates(path):  # our "{c}" slot as callables, the form open_clip's metadata uses
        return [lambda c, t=t: t.replace("{c}", c) for t in lines(path)]

    with h5py.File(run["out"], "r") as f:
        stored = torch.from_numpy(f["embeddings/image"][()])
    with torch.no_grad():
        w = build_zero_shot_classifier(model, open_clip.tokenize, run["classes"], templates(TEMPLATES))
        wn = build_zero_shot_classifier(model, open_clip.tokenize, run["classes"], templates(NEGATED))
        x = torch.stack([preprocess(Image.open(os.path.join(COCO, "val2017", f)).convert("RGB")) for f, _ in run["rows"]])
        pil = model.encode_image(x, normalize=True)
        logits, nlogits, pil_logits = (stored @ w).numpy(), (stored @ wn).numpy(), (pil @ w).numpy()
    labels = np.array([c for _, c in run["rows"]])
    # first maximum: a stable sort of the negated cosines keeps equal values in class order
    top = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    return {"w": w.T.numpy(), "wn": wn.T.numpy(), "logits": logits, "nlogits": nlogits, "top": top, "labels": labels,
            "neg_top1": np.argmax(nlogits, axis=1), "pil_logits": pil_logits}


def test_classifier_matches_open_clip(run, reference):
    d = classify_of(run["out"])
    assert d["classnames"] == run["classes"]
    assert d["classifier"].shape == reference["w"].shape
    # text towers agree to ~1e-6 (docs/encoders.md); the mean and the norm are the same arithmetic
    err = np.abs(d["classifier"] - reference["w"]).max()
    nerr = np.abs(d["classifier_negated"] - reference["wn"]).max()
    print(f"classifier max |diff| {err:.2e}, negated {nerr:.2e}")
    assert err < 1e-5 and nerr < 1e-5
    assert np.allclose(np.linalg.norm(d["classifier"], axis=1), 1, atol=1e-6)


def test_predictions_equal_open_clip(run, reference):
    d = classify_of(run["out"])
    assert list(d["label"]) == list(reference["labels"])
    assert (d["status"] == 1).all()
    # the same predictions image by image (top-5 in order, the negated classifier's top-1)
    assert np.array_equal(d["topk"], reference["top"])
    assert np.array_equal(d["negated_top1"], reference["neg_top1"])
    ref_label = reference["logits"][np.arange(len(d["label"])), d["label"]]
    assert np.abs(d["label_sim"] - ref_label).max() < 1e-5
    assert np.allclose(d["topk_sim"], np.take_along_axis(reference["logits"], reference["top"], 1), atol=1e-5)


def test_end_to_end_against_open_clip_on_pil_images(run, reference):
    """From the JPEG files through open_clip's own decoding (PIL) and preprocessing: the image features
    differ by up to 2.4e-4 (stb_image vs libjpeg, <= 3/255 levels, docs/images.md), so two classes
    closer than that may swap. Every place whose reference margin to its neighbour exceeds 1e-3 must
    hold the same class, and the cosines agree to 1e-3."""
    d = classify_of(run["out"])
    lg = reference["pil_logits"]
    top = np.argsort(-lg, axis=1, kind="stable")[:, :5]
    srt = np.take_along_axis(lg, np.argsort(-lg, axis=1, kind="stable"), 1)
    gap_after = np.full(top.shape, np.inf)  # margin of place k to place k + 1 and to place k - 1
    gaps = srt[:, :-1] - srt[:, 1:]
    gap_after[:, :] = np.minimum(gaps[:, :5], np.concatenate([np.full((len(lg), 1), np.inf), gaps[:, :4]], 1))
    safe = gap_after > 1e-3
    print(f"places checked: {safe.sum()} of {safe.size}; top-1 places checked {safe[:, 0].sum()} of {len(lg)}")
    assert safe[:, 0].sum() >= len(lg) * 3 // 4  # the check is not vacuous
    assert np.array_equal(d["topk"][safe], top[safe])
    assert np.allclose(d["topk_sim"], np.take_along_axis(lg, d["topk"], 1), atol=1e-3)


def test_stats_match_numpy(run, reference):
    d = classify_of(run["out"])
    s = d["stats"]
    labels, top = reference["labels"], reference["top"]
    n = len(labels)
    top1 = int((top[:, 0] == labels).sum())
    top5 = int((top == labels[:, None]).any(axis=1).sum())
    lg = reference["logits"]
    ties = int(((lg == lg.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
    neg = int((reference["neg_top1"] == labels).sum())
    assert (s["n"], s["n_valid"], s["n_classes"]) == (n, n, len(run["classes"]))
    assert (s["top1"], s["top5"], s["ties"], s["negated_top1"]) == (top1, top5, ties, neg)
    assert s["accuracy_top1"] == pytest.approx(top1 / n, abs=0)
    assert s["accuracy_top5"] == pytest.approx(top5 / n, abs=0)
    assert s["accuracy_negated_top1"] == pytest.approx(neg / n, abs=0)
    assert s["chance"] == pytest.approx(1 / len(run["classes"]))
    j = json.load(open(run["stats_json"]))["classify"]
    assert (j["top1"], j["top5"], j["negated_top1"], j["n_valid"]) == (top1, top5, neg, n)
    assert f"| classification | {n} | {n} | {len(run['classes'])} | {100 * top1 / n:.1f}% |" in run["reduce_stdout"]
    print(f"top-1 {top1}/{n}, top-5 {top5}/{n}, negated top-1 {neg}/{n}, ties {ties}")


def test_self_describing(run, tmp_path):
    path = run["out"]
    with h5py.File(path, "r") as f:
        N, K = f["classify/topk"].shape
        C, D = f["classify/classifier"].shape
        templates, negated = h5_strings(f, "classify/templates"), h5_strings(f, "classify/negated_templates")
        topk, n_class_shards = f["classify/topk"][()], len(f["progress/class_shards"])
        assert f["classify/topk"].chunks is not None and f["classify/classifier"].chunks is not None
    c = xr_open(path, "classify")
    assert c["topk"].dims == ("image", "k") and c["topk_sim"].dims == ("image", "k")
    assert c["classifier"].dims == ("class", "dim") and c["classifier_negated"].dims == ("class", "dim")
    for name in ("label", "status", "label_sim", "n_max", "negated_top1", "negated_label_sim"):
        assert c[name].dims == ("image",), name
    assert c["classnames"].dims == ("class",) and list(c["class"].values) == run["classes"]
    assert list(c["template"].values) == templates and list(c["negated_template"].values) == negated
    assert c["templates"].dims == ("template",) and c["negated_templates"].dims == ("negated_template",)
    assert (c["image"].values == np.arange(N)).all() and (c["k"].values == np.arange(K)).all()
    assert (c["dim"].values == np.arange(D)).all() and len(run["classes"]) == C
    assert np.array_equal(c["topk"].values, topk)
    # label-based selection: the best class of image 3 by its name
    assert c["topk"].sel(image=3, k=0).item() == topk[3, 0]
    p = xr_open(path, "progress")
    assert p["class_shards"].dims == ("class_shard",) and p.sizes["class_shard"] == n_class_shards
    assert p["classify_shards"].dims == ("classify_shard",) and p.sizes["classify_shard"] == -(-N // 5)
    s = xr_open(path, "stats/classify")
    assert s["accuracy_top1"].dims == () and s["top1"].dims == ()
    datasets = assert_every_dataset_described(path)
    assert {"/classify/topk", "/stats/classify/accuracy_top1", "/progress/class_shards"} <= set(datasets)

    # compression: the same values, deflated chunks
    job = write_job(str(tmp_path), "z", os.path.join(run["dir"], "folder"))
    p = run_eval(1, job, ["--set", "output.compression=6"], env_for(str(tmp_path)))
    assert p.returncode == 0, p.stderr[-3000:]
    z = os.path.join(str(tmp_path), "z.h5")
    assert_same_datasets(path, z, skip=("stats",))
    with h5py.File(z, "r") as f:
        for name in ("classify/topk", "classify/classifier", "classify/label_sim", "progress/classify_shards"):
            assert f[name].compression == "gzip" and f[name].compression_opts == 6, name


def test_ties_go_to_the_lower_class_index(run, tmp_path):
    """A class listed twice gets the same class vector twice: every image it wins ties at the top, and
    the prediction is the lower index, its twin second (open_clip's argmax: the first maximum)."""
    d = str(tmp_path)
    a = classify_of(run["out"])
    w = int(np.bincount(a["topk"][:, 0]).argmax())  # the class that wins most often
    names = run["classes"] + [run["classes"][w]]  # class 6 repeats class w
    with open(os.path.join(d, "names.txt"), "w") as fp:
        fp.write("\n".join(names) + "\n")
    with open(os.path.join(d, "rows.csv"), "w") as fp:
        fp.write("label,image\n" + "".join(f"{c},{f}\n" for f, c in run["rows"]))  # columns by name, any order
    job = write_job(d, "ties", os.path.join(d, "rows.csv"), classnames=os.path.join(d, "names.txt"),
                    images=os.path.join(COCO, "val2017"))
    p = run_eval(0, job, [], env_for(d))
    assert p.returncode == 0, p.stderr
    assert subprocess.run([BIN, "reduce", os.path.join(d, "ties.h5"), "--bootstrap", "0"], env=env_for(d),
                          capture_output=True).returncode == 0
    t = classify_of(os.path.join(d, "ties.h5"))
    assert np.array_equal(t["classifier"][6], t["classifier"][w])
    wins = a["topk"][:, 0] == w
    assert wins.any()
    assert (t["topk"][wins, :2] == [w, 6]).all()  # tie at the top: lower index first, then its twin
    assert (t["n_max"][wins] == 2).all() and (t["n_max"][~wins] == 1).all()
    assert t["stats"]["ties"] == int(wins.sum())
    assert np.array_equal(t["topk"][:, 0], a["topk"][:, 0])
    print(f"class {w} wins {wins.sum()} of {len(wins)} images: each a tie, resolved to {w}")


def test_csv_equals_image_folder(run, tmp_path):
    d = run["dir"]
    job = write_job(str(tmp_path), "csv", os.path.join(d, "labels.csv"), classnames=os.path.join(d, "classes.txt"),
                    images=os.path.join(COCO, "val2017"))
    p = run_eval(0, job, [], env_for(tmp_path))
    assert p.returncode == 0, p.stderr
    a, b = classify_of(run["out"]), classify_of(os.path.join(tmp_path, "csv.h5"))
    for k in ("label", "classifier", "classifier_negated", "topk", "topk_sim", "label_sim", "n_max", "negated_top1",
              "negated_label_sim", "status"):
        assert np.array_equal(a[k], b[k], equal_nan=True), k
    assert b["attrs"]["source_kind"] == "csv" and a["attrs"]["source_kind"] == "imagefolder"


def test_ranks_and_resume_give_identical_files(run, tmp_path):
    job = write_job(str(tmp_path), "cmp", os.path.join(run["dir"], "folder"))  # one job text for every run
    out = {}
    for name in ("one", "three", "killed", "stopped"):
        os.makedirs(tmp_path / name)
        out[name] = str(tmp_path / name / "cmp.h5")
    assert run_eval(1, job, [], env_for(tmp_path / "one")).returncode == 0
    assert run_eval(3, job, [], env_for(tmp_path / "three")).returncode == 0
    assert_same_results(out["one"], out["three"])
    i = info(out["one"])
    assert i.returncode == 0 and "shards done: classes 6/6, classify 9/9; 43 ok, 0 image failed, 0 pending" in i.stdout, i.stdout
    # 2 ranks: texts 1 round (301 texts, shards of 200), images 5 (9 shards of 5), similarity 5,
    # classes 3 (6 shards of one class: 200 // (80 + 24) = 1), classify 5. Killed after 16 rounds:
    # in the third classify round, after its data, before its flags.
    p = run_eval(2, job, [], env_for(tmp_path / "killed", CLIPNEG_TEST_KILL_AFTER_ROUNDS=16))
    assert p.returncode != 0
    k = classify_of(out["killed"])
    assert k["complete"] != 1 and list(k["progress"][1]) == [1, 1, 1, 1, 0, 0, 0, 0, 0]
    i = info(out["killed"])  # `clipneg info` reads the same flags
    assert i.returncode == 1 and "classification: 43 images, 6 classes; shards done: classes 6/6, classify 4/9;" in i.stdout, i.stdout
    p = run_eval(2, job, [], env_for(tmp_path / "killed"))
    assert p.returncode == 0, p.stderr
    assert "20/43" in p.stderr, p.stderr
    assert_same_results(out["one"], out["killed"])
    # SIGTERM in the classes phase (after 12 rounds): flush, exit 75, then resume
    p = run_eval(2, job, [], env_for(tmp_path / "stopped", CLIPNEG_TEST_SIGNAL_AFTER_ROUNDS=12))
    assert p.returncode == 75, p.stderr
    s = classify_of(out["stopped"])
    assert 0 < s["progress"][0].sum() < 6 and s["progress"][1].sum() == 0
    assert run_eval(2, job, [], env_for(tmp_path / "stopped")).returncode == 0
    assert_same_results(out["one"], out["stopped"])


BAD = [
    ("labels.csv", "image,label\n000000000139.jpg,1\n000000000802.jpg\n", "labels.csv:3: label: missing"),
    ("labels.csv", "image,label\n000000000139.jpg,9\n", "labels.csv:2: label: 9 is out of range (6 classes, 0..5)"),
    ("labels.csv", "image,label\n000000000139.jpg,sofa\n", "labels.csv:2: label: 'sofa' is neither"),
    ("labels.csv", "file,class\n000000000139.jpg,1\n", "labels.csv:1: header: expected the columns 'image' and 'label'"),
    ("labels.csv", "image,label\n\"000000000139.jpg,1\n", "labels.csv:2: unterminated quote"),
    ("labels.csv", "image,label\n,1\n", "labels.csv:2: image: empty"),
    ("templates.txt", "# comment\na photo of a {c}.\na photo\n", "templates.txt:3: templates: 'a photo' has no {c}"),
    ("classes.txt", "bed\nlaptop\n", "classes.txt: classnames: 2 class names for 6 class folders"),
]


@pytest.mark.parametrize("name,content,fragment", BAD, ids=[f"{b[0]}:{i}" for i, b in enumerate(BAD)])
def test_bad_files_refused(run, tmp_path, name, content, fragment):
    d = str(tmp_path)
    with open(os.path.join(d, name), "w") as fp:
        fp.write(content)
    given = os.path.join(d, name)
    if name == "labels.csv":
        job = write_job(d, "bad", given, classnames=os.path.join(run["dir"], "classes.txt"),
                        images=os.path.join(COCO, "val2017"))
    elif name == "templates.txt":
        job = write_job(d, "bad", os.path.join(run["dir"], "folder"), templates=given)
    else:
        job = write_job(d, "bad", os.path.join(run["dir"], "folder"), classnames=given)
    p = run_eval(0, job, [], env_for(d))
    assert p.returncode == 5, p.stderr
    assert fragment in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(d, "bad.h5"))


def test_demo_job_runs(tmp_path):
    require_binaries()
    env = env_for(tmp_path)
    p = run_eval(2, os.path.join(REPO, "jobs", "classification-demo.ini"), [], env)
    assert p.returncode == 0, p.stderr
    d = classify_of(os.path.join(tmp_path, "classification-demo.h5"))
    assert len(d["classnames"]) == 6 and d["topk"].shape == (43, 5) and (d["status"] == 1).all()


def test_resume_refuses_edited_inputs(run, tmp_path):
    """The class names, templates and labels are part of the job hash: after editing the templates
    file the existing (partial) output is refused (exit 7) instead of mixing two classifiers."""
    d = str(tmp_path)
    tmpl = os.path.join(d, "t.txt")
    with open(tmpl, "w") as fp:
        fp.write("a photo of a {c}.\na drawing of a {c}.\n")
    job = write_job(d, "edited", os.path.join(run["dir"], "folder"), templates=tmpl)
    p = run_eval(0, job, [], env_for(d, CLIPNEG_TEST_KILL_AFTER_ROUNDS=3))
    assert p.returncode != 0
    with open(tmpl, "w") as fp:
        fp.write("a photo of a {c}.\na sketch of a {c}.\n")
    p = run_eval(0, job, [], env_for(d))
    assert p.returncode == 7, p.stderr
    assert "job_sha256 differs" in p.stderr and "class names, templates or labelled images" in p.stderr
    assert run_eval(0, job, ["--fresh"], env_for(d)).returncode == 0


def test_missing_image_is_recorded_and_skipped(run, tmp_path):
    d = str(tmp_path)
    with open(os.path.join(d, "rows.csv"), "w") as fp:
        fp.write("image,label\n" + "".join(f"{f},{c}\n" for f, c in run["rows"][:4]) + "not_there.jpg,0\n")
    job = write_job(d, "missing", os.path.join(d, "rows.csv"), classnames=os.path.join(run["dir"], "classes.txt"),
                    images=os.path.join(COCO, "val2017"))
    p = run_eval(0, job, [], env_for(d))
    assert p.returncode == 0, p.stderr
    assert subprocess.run([BIN, "reduce", os.path.join(d, "missing.h5"), "--bootstrap", "0"], env=env_for(d),
                          capture_output=True).returncode == 0
    m = classify_of(os.path.join(d, "missing.h5"))
    assert list(m["status"]) == [1, 1, 1, 1, 2]
    assert list(m["topk"][4]) == [-1] * 5 and np.isnan(m["label_sim"][4])
    assert (m["stats"]["n"], m["stats"]["n_valid"]) == (5, 4)
    a = classify_of(run["out"])
    assert np.array_equal(m["topk"][:4], a["topk"][:4])  # the others are unaffected
