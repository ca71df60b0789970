"""Item benchmarks end to end (docs/items.md): `clipneg eval` with `[dataset] format = items` on
tests/data/items/ok.jsonl (multiple choice, CC-Neg pairs, explicit-box and ann_id region items over
coco-mini) with the committed tiny random model, then `clipneg reduce`. Everything is checked from
the file with h5py/numpy, and against independent implementations:
  * /items/sim equals the cosine of the stored embeddings; whole-image rows equal /embeddings/image;
  * accuracies, ties, margins in /stats/items (and stats.json) equal numpy's count from /items/sim;
  * crop windows equal Python's own computation from the COCO boxes (instances JSON read here);
  * crop embeddings equal open_clip's (PIL Image.crop + open_clip preprocess + the same weights);
  * 1 rank and 2 ranks write identical /items; a run killed in the item phase resumes to the same file;
  * bad manifests are refused before any work (exit 5) with FILE:LINE messages.
"""
import json
import math
import os
import subprocess

import h5py
import numpy as np
import pytest

from eval_common import BIN, COCO, BPE, TINY_MODEL, REPO, env_for, require_binaries, run_eval, tiny_open_clip

DATA = os.path.join(REPO, "tests", "data", "items")
INSTANCES = os.path.join(COCO, "annotations", "instances_val2017.json")
EXPAND = 1.3


def write_job(dirpath, manifest, name="items", extra=""):
    job = os.path.join(dirpath, f"{name}.ini")
    with open(job, "w") as f:
        f.write(f"""[model]
path = {TINY_MODEL}
tokenizer = {BPE}
[dataset]
format = items
manifest = {manifest}
images = {os.path.join(COCO, "val2017")}
instances = {INSTANCES}
crop_expand = {EXPAND}
[variants]
file = {os.path.join(REPO, "jobs", "variants", "seed7.ini")}
[output]
path = {os.path.join(dirpath, name + ".h5")}
[run]
backend = cpu
threads = 1
image_shard = 2
image_batch = 2
text_shard = 32
text_batch = 5
{extra}
""")
    return job


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    require_binaries()
    d = tmp_path_factory.mktemp("items")
    job = write_job(str(d), os.path.join(DATA, "ok.jsonl"))
    env = env_for(d)
    p = run_eval(2, job, [], env)
    assert p.returncode == 0, p.stderr
    out = os.path.join(d, "items.h5")
    r = subprocess.run([BIN, "reduce", out, "--bootstrap", "0"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return {"dir": str(d), "job": job, "out": out, "env": env, "reduce_stdout": r.stdout}


def items_of(path):
    with h5py.File(path, "r") as f:
        g = f["items"]
        d = {k: g[k][()] for k in g if isinstance(g[k], h5py.Dataset) and g[k].dtype.kind != "O"}
        d["text"] = g["text"].asstr()[()]
        d["type_names"] = list(g["type_names"].asstr()[()])
        d["emb_text"] = g["embeddings/text"][()]
        d["emb_image"] = g["embeddings/image"][()]
        d["attrs"] = dict(g.attrs)
        d["whole"] = f["embeddings/image"][()]
        d["files"] = list(f["images/file_name"].asstr()[()])
        d["progress"] = f["progress/item_shards"][()]
        d["complete"] = int(f.attrs["complete"])
    return d


def test_layout(run):
    d = items_of(run["out"])
    assert d["complete"] == 1 and d["progress"].all()
    assert d["type_names"] == ["hybrid", "ccneg", "region", "negref", "negation"]
    assert list(d["n_candidates"]) == [3, 2, 2, 2, 2, 2]
    assert list(d["answer"]) == [0, 0, 0, 1, 1, 1]
    assert list(d["kind"]) == [0, 0, 0, 1, 1, 0]
    assert list(d["line"]) == [1, 2, 4, 5, 6, 7]
    assert d["sim"].shape == (6, 3) and np.isnan(d["sim"][1:, 2]).all()
    assert np.isfinite(d["sim"][0]).all() and list(d["status"]) == [1] * 6
    assert d["text"][1, 1] == "a kitchen with a microwave and a toaster but no refrigerator" and d["text"][1, 2] == ""
    assert d["text"][3, 0] == "the train that is not green"
    assert list(d["ann_id"][4]) == [56944, 273821]  # both horses of 214753, by id; the referent is 273821
    assert d["attrs"]["crop_expand"] == pytest.approx(EXPAND)


def test_sim_is_cosine_of_stored_embeddings(run):
    d = items_of(run["out"])
    N, K = d["sim"].shape
    KT, KI = int(d["attrs"]["k_text"]), int(d["attrs"]["k_image"])
    for i in range(N):
        if d["kind"][i] == 0:  # choice: its whole image's embedding, copied bitwise from /embeddings/image
            assert np.array_equal(d["emb_image"][i * KI], d["whole"][d["image_index"][i]])
        for k in range(d["n_candidates"][i]):
            t = d["emb_text"][i * KT + (k if d["kind"][i] == 0 else 0)].astype(np.float64)
            v = d["emb_image"][i * KI + (k if d["kind"][i] == 1 else 0)].astype(np.float64)
            assert abs(np.linalg.norm(t) - 1) < 1e-5 and abs(np.linalg.norm(v) - 1) < 1e-5
            # stored sim = float32(dot accumulated in double) of the stored float32 rows: equal to ~1 ulp
            assert abs(d["sim"][i, k] - t @ v) < 1e-6, (i, k)


def test_stats_match_numpy(run):
    d = items_of(run["out"])
    types, sim, n, ans = d["type"], d["sim"], d["n_candidates"], d["answer"]
    with h5py.File(run["out"], "r") as f:
        g = f["stats/items"]
        labels = str(g.attrs["labels"]).split(",")
        st = {k: g[k][()] for k in g}
    assert labels == d["type_names"] + ["all"]
    for r, name in enumerate(labels):
        sel = np.ones(len(types), bool) if name == "all" else types == r
        correct = ties = valid = pairs = pair_ok = 0
        margin = chance = 0.0
        for i in np.nonzero(sel)[0]:
            s = sim[i, : n[i]].astype(np.float64)
            if not np.isfinite(s).all():
                continue
            valid += 1
            other = max(s[k] for k in range(n[i]) if k != ans[i])
            correct += s[ans[i]] > other
            ties += s[ans[i]] == other
            margin += s[ans[i]] - other
            chance += 1 / n[i]
            if n[i] == 2:
                pairs += 1
                pair_ok += s[ans[i]] > other
        assert st["n"][r] == sel.sum() and st["n_valid"][r] == valid
        assert st["n_correct"][r] == correct and st["n_ties"][r] == ties and st["pair_n"][r] == pairs
        assert st["accuracy"][r] == pytest.approx(correct / valid, abs=1e-12)
        assert st["mean_margin"][r] == pytest.approx(margin / valid, abs=1e-9)
        assert st["chance"][r] == pytest.approx(chance / valid, abs=1e-12)
        if pairs:
            assert st["pair_accuracy"][r] == pytest.approx(pair_ok / pairs, abs=1e-12)
        else:
            assert np.isnan(st["pair_accuracy"][r])
    js = json.load(open(os.path.splitext(run["out"])[0] + ".stats.json"))["items"]
    assert js["labels"] == labels and js["n_correct"] == [int(x) for x in st["n_correct"]]
    assert "| all | 6 | 6 |" in run["reduce_stdout"]


def test_crop_windows_from_coco_boxes(run):
    from PIL import Image

    d = items_of(run["out"])
    inst = json.load(open(INSTANCES))
    boxes = {a["id"]: a["bbox"] for a in inst["annotations"]}
    KI = int(d["attrs"]["k_image"])
    for i in np.nonzero(d["kind"] == 1)[0]:
        W, H = Image.open(os.path.join(COCO, "val2017", d["files"][d["image_index"][i]])).size
        for k in range(d["n_candidates"][i]):
            a = d["ann_id"][i, k]
            box = boxes[a] if a >= 0 else d["box"][i, k]
            if a >= 0:
                assert np.allclose(d["box"][i, k], box)
            x, y, w, h = box
            cx, cy = x + w / 2, y + h / 2
            win = [max(math.floor(cx - w * EXPAND / 2), 0), max(math.floor(cy - h * EXPAND / 2), 0),
                   min(math.ceil(cx + w * EXPAND / 2), W), min(math.ceil(cy + h * EXPAND / 2), H)]
            assert list(d["crop"][i, k]) == win, (i, k)
    assert (d["crop"][d["kind"] == 0] == -1).all()
    del KI


def test_crop_embeddings_match_open_clip(run):
    torch, open_clip, model, pre = tiny_open_clip()
    from PIL import Image

    d = items_of(run["out"])
    KI, KT = int(d["attrs"]["k_image"]), int(d["attrs"]["k_text"])
    errs = []
    with torch.no_grad():
        for i in np.nonzero(d["kind"] == 1)[0]:
            img = Image.open(os.path.join(COCO, "val2017", d["files"][d["image_index"][i]])).convert("RGB")
            crops = [pre(img.crop(tuple(int(v) for v in d["crop"][i, k]))) for k in range(d["n_candidates"][i])]
            e = model.encode_image(torch.stack(crops)).double()
            e = (e / e.norm(dim=1, keepdim=True)).numpy()
            t = model.encode_text(open_clip.tokenize([d["text"][i, 0]])).double()
            t = (t / t.norm(dim=1, keepdim=True)).numpy()[0]
            for k in range(len(crops)):
                errs.append(abs(e[k] @ d["emb_image"][i * KI + k] - 1))  # 1 - cosine between the two embeddings
                errs.append(abs(e[k] @ t - d["sim"][i, k]))
            assert np.allclose(t, d["emb_text"][i * KT], atol=1e-5)
    print(f"open_clip vs clipneg crops: {len(errs)} values, max {max(errs):.2e}")
    # The crops see the same pixels up to the JPEG decoders (stb vs libjpeg-turbo, a few 8-bit levels;
    # docs/images.md), the same bound as test_eval_similarity's whole images (measured there 1e-4).
    assert max(errs) < 1e-3


def test_ranks_and_resume_give_identical_items(run, tmp_path):
    env = env_for(tmp_path)
    one = write_job(str(tmp_path), os.path.join(DATA, "ok.jsonl"), name="one")
    assert run_eval(0, one, [], env).returncode == 0
    a, b = items_of(run["out"]), items_of(os.path.join(tmp_path, "one.h5"))
    for k in ("sim", "crop", "status", "emb_text", "emb_image"):
        assert np.array_equal(a[k], b[k], equal_nan=True), k
    # rounds: texts 1, images 1, similarity 1, items 2 (6 items in shards of 2 over 2 ranks): killed
    # in the last item round after its data, before its flags; the re-run does that round again.
    killed = write_job(str(tmp_path), os.path.join(DATA, "ok.jsonl"), name="killed")
    p = run_eval(2, killed, [], env_for(tmp_path, CLIPNEG_TEST_KILL_AFTER_ROUNDS=4))
    assert p.returncode != 0
    with h5py.File(os.path.join(tmp_path, "killed.h5"), "r") as f:
        assert int(f.attrs.get("complete", 0)) != 1
        assert list(f["progress/item_shards"][()]) == [1, 1, 0]
    p = run_eval(2, killed, [], env)
    assert p.returncode == 0, p.stderr
    assert "items      4/6 already done" in p.stderr or "4/6" in p.stderr
    c = items_of(os.path.join(tmp_path, "killed.h5"))
    assert c["complete"] == 1
    for k in ("sim", "crop", "status", "emb_text", "emb_image"):
        assert np.array_equal(a[k], c[k], equal_nan=True), k


@pytest.mark.parametrize("manifest,fragment", [
    ("bad_missing_answer.jsonl", "bad_missing_answer.jsonl:1: answer: missing"),
    ("bad_answer_range.jsonl", "bad_answer_range.jsonl:2: answer: 3 is out of range"),
    ("bad_empty_candidates.jsonl", "bad_empty_candidates.jsonl:2: candidates: 0 given"),
    ("bad_unknown_ann.jsonl", "bad_unknown_ann.jsonl:1: ann_id: unknown annotation id 999"),
])
def test_bad_manifests_refused(tmp_path, manifest, fragment):
    require_binaries()
    job = write_job(str(tmp_path), os.path.join(DATA, manifest))
    p = run_eval(0, job, [], env_for(tmp_path))
    assert p.returncode == 5, p.stderr
    assert fragment in p.stderr
    assert not os.path.exists(os.path.join(tmp_path, "items.h5"))


def test_analysis_module(run):
    import sys

    sys.path.insert(0, os.path.join(REPO, "analysis"))
    from clipneg_analysis import items as ia

    rows, source = ia.stats(run["out"])
    assert source == "stats"
    d = items_of(run["out"])
    ref = ia.compute(d["sim"], d["n_candidates"], d["answer"], d["type"], d["type_names"])
    for a, b in zip(rows, ref):
        assert a["type"] == b["type"] and a["n_correct"] == b["n_correct"] and a["n_valid"] == b["n_valid"]
        assert a["accuracy"] == pytest.approx(b["accuracy"], nan_ok=True)
    md = ia.markdown([run["out"]])
    assert "| hybrid |" in md and "†" in md  # the tiny model is flagged random
    png, _ = ia.plot(run["out"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_images_and_boxes(tmp_path):
    """A missing image fails its items (status 2, NaN), a box outside its image fails that box
    (status 3); the run completes and the statistics count only valid items."""
    require_binaries()
    job = write_job(str(tmp_path), os.path.join(DATA, "failures.jsonl"))
    env = env_for(tmp_path)
    p = run_eval(2, job, [], env)
    assert p.returncode == 0, p.stderr
    out = os.path.join(tmp_path, "items.h5")
    r = subprocess.run([BIN, "reduce", out, "--bootstrap", "0"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = items_of(out)
    assert list(d["status"]) == [2, 2, 3, 1]
    assert np.isnan(d["sim"][:2]).all()
    assert np.isfinite(d["sim"][2, 0]) and np.isnan(d["sim"][2, 1]) and np.isfinite(d["sim"][3]).all()
    assert list(d["crop"][2, 1]) == [-1, -1, -1, -1] and list(d["crop"][2, 0]) == [2, 2, 68, 68]  # centre 35, half 32.5 (expand 1.3)
    with h5py.File(out, "r") as f:
        assert int(f["stats/items/n"][-1]) == 4 and int(f["stats/items/n_valid"][-1]) == 1


def test_truncated_candidates_flagged_and_info_progress(tmp_path):
    """/items/truncated says which candidate texts the tokenizer cut at the 77-token context, as
    open_clip's own tokenizer counts them (BPE ids + SOT + EOT > 77); `clipneg info` reports the
    item phase's shards."""
    require_binaries()
    open_clip = pytest.importorskip("open_clip", reason="open_clip is not installed (scripts/install-deps.sh)")
    long_text = "a photo of " + " ".join(["a red bicycle"] * 30)  # ~90 BPE tokens
    edge = "a " * 75  # 75 words + SOT/EOT = 77: fits exactly
    over = "a " * 76
    manifest = tmp_path / "long.jsonl"
    with open(manifest, "w") as f:
        f.write(json.dumps({"image": "000000370208.jpg", "answer": 0,
                            "candidates": ["a bicycle", long_text, edge.strip(), over.strip()]}) + "\n")
        f.write(json.dumps({"image": "000000453302.jpg", "answer": 1, "candidates": ["a kitchen", long_text]}) + "\n")
    job = write_job(str(tmp_path), str(manifest), name="long")
    p = run_eval(0, job, [], env_for(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    out = tmp_path / "long.h5"
    with h5py.File(out, "r") as f:
        got = f["items/truncated"][()]
        texts = f["items/text"].asstr()[()]
        ncand = f["items/n_candidates"][()]
    tok = open_clip.tokenizer.SimpleTokenizer()
    want = np.full(got.shape, -1, dtype=np.int8)
    for i in range(got.shape[0]):
        for k in range(ncand[i]):
            want[i, k] = int(len(tok.encode(texts[i][k])) + 2 > 77)
    assert got.tolist() == want.tolist()
    assert got.tolist() == [[0, 1, 0, 1], [0, 1, -1, -1]]  # the cases above: none cut by accident
    r = subprocess.run([BIN, "info", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "items: shards done 1/1 (2 items)" in r.stdout, r.stdout
