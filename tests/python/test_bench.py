"""The negation benchmarks read from their published files (docs/benchmarks.md), end to end:
`clipneg eval` (2 MPI ranks) + `clipneg reduce` on tests/data/bench/ (the exact published layouts,
awkward rows included) with the committed tiny random model, against an INDEPENDENT implementation
of each benchmark's own scoring code: the files read with pandas / ast.literal_eval / json, the
texts and images encoded by open_clip (PIL decoding, PIL crops, open_clip preprocessing), and each
benchmark's rule in numpy:
  * negbench-mcq: argmax over the four captions (first maximum) == correct_answer, per type;
  * negbench-retrieval: text -> image R@1/5/10 (the text's own row in the top k);
  * negrefcocog: argmax over crops image.crop((x, y, x + w, y + h)), correct when that box == ref_bbox;
  * valse-existence: items with mturk.caption >= 2, caption > foil (strict);
  * sugarcrepe: per split, caption > negative_caption (strict);
  * ccneg: ccneg_preprocessed.pt read with torch.load, its last N entries, commas removed from the
    negation, argmax over [sim(caption), sim(negation)] == 0 (first maximum: a tie is correct).
clipneg's decisions must equal the reference's for every item (same items, same ties: the fixtures
hold ties on purpose). The two implementations decode JPEGs differently (stb vs libjpeg-turbo: the
cosines differ by < 1e-3, docs/images.md); every non-tied fixture item's margin is checked to lie
outside that band, so an equal decision is a real agreement, not luck.
Also: 1 vs 3 ranks write identical /items and /stats/items; a run killed in the item phase resumes
to an identical file; bad files exit 5 before any work, naming FILE:LINE / FILE: item and the field.
"""
import ast
import json
import os
import subprocess

import h5py
import numpy as np
import pytest

from eval_common import BIN, BPE, COCO, REPO, TINY_MODEL, env_for, require_binaries, run_eval, tiny_open_clip

DATA = os.path.join(REPO, "tests", "data", "bench")
VAL = os.path.join(COCO, "val2017")
MCQ = os.path.join(DATA, "COCO_val_mcq_llama3.1_rephrased.csv")
RET = os.path.join(DATA, "COCO_val_negated_retrieval_llama3.1_rephrased_affneg_true.csv")
NEGREF = os.path.join(DATA, "NegRefCOCOg.json")
VALSE = os.path.join(DATA, "existence.json")
SUGAR = os.path.join(DATA, "sugarcrepe")
CCNEG = os.path.join(DATA, "ccneg_preprocessed.pt")
CCNEG_PREFIX = "/workspace/datasets/cc3m/"
BAND = 1e-3  # |cosine difference| bound between the two implementations (JPEG decoders)


def link_images(d):
    """A folder with the published (train2014 / Visual7W) names, symlinked to coco-mini images."""
    os.makedirs(d, exist_ok=True)
    for name, target in json.load(open(os.path.join(DATA, "name_map.json"))).items():
        p = os.path.join(d, name)
        if not os.path.lexists(p):
            os.symlink(os.path.join(VAL, target), p)
    return d


def write_job(d, name, fmt, path, images, extra=""):
    job = os.path.join(d, f"{name}.ini")
    with open(job, "w") as f:
        f.write(f"""[model]
path = {TINY_MODEL}
tokenizer = {BPE}
[dataset]
format = {fmt}
path = {path}
images = {images}
{extra}
[variants]
file = {os.path.join(REPO, "jobs", "variants", "caption-only.ini")}
[output]
path = {os.path.join(d, name + ".h5")}
[run]
backend = cpu
threads = 1
image_shard = 2
image_batch = 2
text_shard = 8
text_batch = 3
""")
    return job


def run_job(d, name, fmt, path, images, np_=2, extra="", reduce=True, **env_extra):
    require_binaries()
    job = write_job(d, name, fmt, path, images, extra)
    env = env_for(d, **env_extra)
    p = run_eval(np_, job, [], env)
    out = os.path.join(d, name + ".h5")
    if p.returncode == 0 and reduce:
        r = subprocess.run([BIN, "reduce", out, "--bootstrap", "0"], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    return p, out


def items_of(path):
    with h5py.File(path, "r") as f:
        g = f["items"]
        d = {k: g[k][()] for k in ("sim", "answer", "n_candidates", "type", "status", "crop")}
        d["type_names"] = list(g["type_names"].asstr()[()])
        d["attrs"] = dict(g.attrs)
        if "stats" in f and "items" in f["stats"]:
            s = f["stats/items"]
            d["stats"] = {k: s[k][()] for k in s}
            d["stats"]["labels"] = s.attrs["labels"]
    return d


# ---- the independent reference ------------------------------------------------------------------------
class Ref:
    """open_clip embeddings of the tiny model; each distinct text / image / crop encoded once."""

    def __init__(self):
        self.torch, self.open_clip, self.model, self.pre = tiny_open_clip()
        from PIL import Image
        self.Image = Image
        self.texts, self.imgs = {}, {}

    def _unit(self, x):
        x = x.double()
        return (x / x.norm(dim=-1, keepdim=True)).numpy()

    def text(self, t):
        if t not in self.texts:
            with self.torch.no_grad():
                self.texts[t] = self._unit(self.model.encode_text(self.open_clip.tokenize([t])))[0]
        return self.texts[t]

    def image(self, path, box=None):
        key = (path, None if box is None else tuple(box))
        if key not in self.imgs:
            im = self.Image.open(path).convert("RGB")
            if box is not None:  # upstream NegRefCOCOg: image.crop((x, y, x + w, y + h)), PIL rounds
                x, y, w, h = box
                im = im.crop((x, y, x + w, y + h))
            with self.torch.no_grad():
                self.imgs[key] = self._unit(self.model.encode_image(self.pre(im).unsqueeze(0)))[0]
        return self.imgs[key]


@pytest.fixture(scope="module")
def ref():
    return Ref()


def first_max_ok(s, answer):
    return int(np.argmax(s)) == answer  # numpy's argmax: the first maximum, as torch's in mcq.py


def check_decisions(d, ref_sims, answers, rule):
    """clipneg's /items/sim decisions == the reference's, item by item: [(correct, tied)] (a missing
    image: status 2, NaN, not valid). Every real decision (not a tie) must have a gap between the
    answer and each rival larger than twice the largest |clipneg - reference| similarity difference
    seen, so agreement cannot be rounding luck."""
    res, delta, gaps = [], 0.0, []
    for i, (rs, a) in enumerate(zip(ref_sims, answers)):
        if rs is None:
            assert d["status"][i] == 2 and np.isnan(d["sim"][i]).all(), i
            res.append((False, False))
            continue
        cs = d["sim"][i, :len(rs)].astype(np.float64)
        delta = max(delta, float(np.abs(cs - rs).max()))
        decide = (lambda s: first_max_ok(s, a)) if rule == "first_max" else \
            (lambda s: all(s[a] > s[k] for k in range(len(s)) if k != a))
        tied = lambda s: len(s) > 1 and max(s[k] for k in range(len(s)) if k != a) == s[a]
        assert decide(rs) == decide(cs), (i, cs, rs, a)
        assert tied(rs) == tied(cs), (i, cs, rs)
        gaps += [abs(rs[a] - rs[k]) for k in range(len(rs)) if k != a and rs[k] != rs[a]]
        res.append((decide(rs), tied(rs)))
    print(f"max |clipneg - open_clip| similarity {delta:.2e}; smallest decided gap {min(gaps):.2e}")
    assert delta < BAND and min(gaps) > 2 * delta
    return res


def expected_rows(type_names, types, oks, ties, valid):
    rows = {}
    for t, ok, tie, v in zip(types, oks, ties, valid):
        for key in (type_names[t], "all"):
            r = rows.setdefault(key, [0, 0, 0, 0])
            r[0] += 1
            r[1] += v
            r[2] += ok and v
            r[3] += tie and v
    return rows


def check_stats(d, rows):
    labels = d["stats"]["labels"].split(",")
    for r, name in enumerate(labels):
        n, nv, nc, nt = rows[name]
        got = (int(d["stats"]["n"][r]), int(d["stats"]["n_valid"][r]), int(d["stats"]["n_correct"][r]),
               int(d["stats"]["n_ties"][r]))
        assert got == (n, nv, nc, nt), (name, got, (n, nv, nc, nt))
        if nv:
            assert d["stats"]["accuracy"][r] == pytest.approx(nc / nv, rel=0, abs=1e-15)


# ---- per format -----------------------------------------------------------------------------------------
def test_negbench_mcq(tmp_path, ref):
    import pandas as pd

    p, out = run_job(str(tmp_path), "mcq", "negbench-mcq", MCQ, VAL)
    assert p.returncode == 0, p.stderr
    d = items_of(out)
    assert d["attrs"]["tie_rule"] == "first_max" and d["attrs"]["format"] == "negbench-mcq"
    df = pd.read_csv(MCQ)  # upstream reads the CSV with pandas
    assert len(df) == len(d["answer"])
    sims, answers, types = [], [], []
    for _, row in df.iterrows():
        img = os.path.join(VAL, os.path.basename(row["image_path"]))
        answers.append(int(row["correct_answer"]))
        types.append(row["correct_answer_template"])
        if not os.path.exists(img):
            sims.append(None)
            continue
        v = ref.image(img)
        sims.append(np.array([ref.text(str(row[f"caption_{k}"])) @ v for k in range(4)]))
    assert list(d["answer"]) == answers and [d["type_names"][t] for t in d["type"]] == types
    oks, ties = zip(*check_decisions(d, sims, answers, "first_max"))
    check_stats(d, expected_rows(d["type_names"], d["type"], oks, ties, [s is not None for s in sims]))
    assert ties[4] and oks[4] and ties[5] and not oks[5]  # the constructed ties: first maximum decides
    # the analysis module's own numpy count under the file's tie rule agrees with /stats/items
    import sys
    sys.path.insert(0, os.path.join(REPO, "analysis"))
    from clipneg_analysis import items as ia
    rows = ia.compute(d["sim"], d["n_candidates"], d["answer"], d["type"], d["type_names"], first_max=True)
    assert [r["n_correct"] for r in rows] == [int(x) for x in d["stats"]["n_correct"]]


def test_negbench_retrieval(tmp_path, ref):
    import pandas as pd

    p, out = run_job(str(tmp_path), "ret", "negbench-retrieval", RET, VAL)
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(RET)
    texts, owner = [], []
    for i, row in df.iterrows():
        caps = ast.literal_eval(row["captions"])  # upstream: eval(); literal_eval is the safe equivalent
        texts += caps
        owner += [i] * len(caps)
    imgs = np.stack([ref.image(os.path.join(VAL, os.path.basename(pth))) for pth in df["filepath"]])
    sim = np.stack([ref.text(t) for t in texts]) @ imgs.T
    ranks = np.array([(sim[j] > sim[j, owner[j]]).sum() for j in range(len(texts))])
    with h5py.File(out, "r") as f:
        caps = list(f["captions/text"].asstr()[()]) if "captions" in f and "text" in f["captions"] else None
        g = f["stats/retrieval"]
        got = {k: float(np.ravel(g[f"t2i_r{k}"][()])[0]) for k in (1, 5, 10)}
        assert int(np.ravel(g["t2i_n"][()])[0]) == len(texts)
        csim = f["embeddings/text"][()].astype(np.float64) @ f["embeddings/image"][()].astype(np.float64).T
    if caps is not None:
        assert caps == texts
    for k in (1, 5, 10):
        assert got[k] == pytest.approx(float((ranks < k).mean()), abs=1e-12), (k, got, ranks)
    # stronger than equal R@k: every text's rank of its own image is the same in both implementations
    # (clipneg's similarities from its stored embeddings), so no rival crossed over by rounding
    delta = float(np.abs(csim - sim).max())
    cranks = np.array([(csim[j] > csim[j, owner[j]]).sum() for j in range(len(texts))])
    gap = min(abs(sim[j, i] - sim[j, owner[j]]) for j in range(len(texts)) for i in range(len(imgs)) if i != owner[j])
    print(f"retrieval: ranks {list(ranks)}, max |clipneg - open_clip| {delta:.2e}, smallest own-vs-rival gap {gap:.2e}")
    assert delta < BAND and list(cranks) == list(ranks)


def test_negrefcocog(tmp_path, ref):
    images = link_images(str(tmp_path / "images"))
    p, out = run_job(str(tmp_path), "negref", "negrefcocog", NEGREF, images)
    assert p.returncode == 0, p.stderr
    d = items_of(out)
    assert d["attrs"]["tie_rule"] == "first_max" and int(d["attrs"]["crop_pil_round"]) == 1
    items = json.load(open(NEGREF))
    sims, answers = [], []
    for i, it in enumerate(items):
        path = os.path.join(images, it["image"])
        t = ref.text(it["phrase"])
        sims.append(np.array([ref.image(path, b) @ t for b in it["bbox_list"]]))
        answers.append(next(k for k, b in enumerate(it["bbox_list"]) if b == it["ref_bbox"]))
        for k, (x, y, w, h) in enumerate(it["bbox_list"]):  # PIL's own rounding of the crop box
            assert list(d["crop"][i, k]) == [round(x), round(y), round(x + w), round(y + h)], (i, k)
    res = check_decisions(d, sims, answers, "first_max")
    # upstream's own criterion: the chosen box equals ref_bbox
    for i, it in enumerate(items):
        chosen = it["bbox_list"][int(np.argmax(sims[i]))]
        assert (chosen == it["ref_bbox"]) == res[i][0]
    oks, ties = zip(*res)
    check_stats(d, expected_rows(d["type_names"], d["type"], oks, ties, [True] * len(items)))
    assert ties[5] and oks[5]


def test_valse_existence(tmp_path, ref):
    images = link_images(str(tmp_path / "images"))
    p, out = run_job(str(tmp_path), "valse", "valse-existence", VALSE, images)
    assert p.returncode == 0, p.stderr
    d = items_of(out)
    assert d["attrs"]["tie_rule"] == "strict"
    items = [v for v in json.load(open(VALSE)).values() if v["mturk"]["caption"] >= 2]  # upstream's filter
    assert len(items) == len(d["answer"]) == 4
    sims = []
    for it in items:
        v = ref.image(os.path.join(images, it["image_file"]))
        sims.append(np.array([ref.text(it["caption"]) @ v, ref.text(it["foil"]) @ v]))
    oks, ties = zip(*check_decisions(d, sims, [0] * len(items), "strict"))
    check_stats(d, expected_rows(d["type_names"], d["type"], oks, ties, [True] * len(items)))
    assert ties[3] and not oks[3]  # caption == foil: strict rule, wrong


def test_sugarcrepe(tmp_path, ref):
    p, out = run_job(str(tmp_path), "sugar", "sugarcrepe", SUGAR, VAL)
    assert p.returncode == 0, p.stderr
    d = items_of(out)
    splits = ["add_att", "add_obj", "replace_att", "replace_obj", "replace_rel", "swap_att", "swap_obj"]
    assert d["type_names"] == splits and d["attrs"]["tie_rule"] == "strict"
    sims, types = [], []
    for s in splits:
        for it in json.load(open(os.path.join(SUGAR, s + ".json"))).values():
            v = ref.image(os.path.join(VAL, it["filename"]))
            sims.append(np.array([ref.text(it["caption"]) @ v, ref.text(it["negative_caption"]) @ v]))
            types.append(s)
    assert [d["type_names"][t] for t in d["type"]] == types
    oks, ties = zip(*check_decisions(d, sims, [0] * len(sims), "strict"))
    check_stats(d, expected_rows(d["type_names"], d["type"], oks, ties, [True] * len(sims)))
    assert ties[types.index("swap_att")]


def test_ccneg(tmp_path, ref):
    images = link_images(str(tmp_path / "images"))
    last_n = 9  # the fixture has 12 entries: the first 3 must not count
    extra = f"image_prefix = {CCNEG_PREFIX}\nlast_n = {last_n}"
    p1, one = run_job(str(tmp_path), "one", "ccneg", CCNEG, images, np_=1, extra=extra)
    p3, out = run_job(str(tmp_path), "ccneg", "ccneg", CCNEG, images, np_=3, extra=extra)
    assert p1.returncode == 0 and p3.returncode == 0, p1.stderr + p3.stderr
    d = items_of(out)
    assert d["attrs"]["tie_rule"] == "first_max" and d["attrs"]["format"] == "ccneg"
    data = ref.torch.load(CCNEG)  # upstream: torch.load, then [-split_size:]
    paths, anns = data["image_paths"][-last_n:], data["annotations"][-last_n:]
    assert len(data["image_paths"]) > last_n and len(d["answer"]) == last_n
    sims = []
    for pth, a in zip(paths, anns):
        img = os.path.join(images, os.path.basename(pth.replace(CCNEG_PREFIX, "")))
        if not os.path.exists(img):
            sims.append(None)
            continue
        v = ref.image(img)
        neg = a["sop_data"]["negative-prompt"].replace(",", "")  # CCNegEvalDataset.__getitem__
        sims.append(np.array([ref.text(a["json"]["caption"]) @ v, ref.text(neg) @ v]))
    assert list(d["answer"]) == [0] * last_n and d["type_names"] == ["ccneg"]
    oks, ties = zip(*check_decisions(d, sims, [0] * last_n, "first_max"))
    check_stats(d, expected_rows(d["type_names"], d["type"], oks, ties, [s is not None for s in sims]))
    assert ties[3] and oks[3]  # caption == negation without its commas: a tie, correct (first maximum)
    assert sims[-1] is None  # the missing image: recorded, not counted
    a = items_of(one)
    for k in ("sim", "status", "answer", "type"):
        assert np.array_equal(a[k], d[k], equal_nan=True), k
    for k in ("n", "n_valid", "n_correct", "n_ties", "accuracy"):
        assert np.array_equal(a["stats"][k], d["stats"][k], equal_nan=True), k


def test_ccneg_job_runs(tmp_path):
    """jobs/ccneg.ini as shipped runs on the committed fixture (9 items, 1 missing image)."""
    require_binaries()
    env = env_for(str(tmp_path), CLIPNEG_OUT=str(tmp_path))
    p = run_eval(2, os.path.join(REPO, "jobs", "ccneg.ini"), [], env)
    assert p.returncode == 0, p.stderr
    d = items_of(os.path.join(tmp_path, "ccneg.h5"))
    assert len(d["answer"]) == 9 and list(d["status"]).count(2) == 1


# ---- the machinery: ranks, resume, refusals ---------------------------------------------------------------
def test_ranks_and_resume_identical(tmp_path):
    images = link_images(str(tmp_path / "images"))
    d = str(tmp_path)
    p1, one = run_job(d, "one", "negrefcocog", NEGREF, images, np_=1)
    p3, three = run_job(d, "three", "negrefcocog", NEGREF, images, np_=3)
    assert p1.returncode == 0 and p3.returncode == 0, p1.stderr + p3.stderr
    a, b = items_of(one), items_of(three)
    for k in ("sim", "crop", "status", "answer", "type"):
        assert np.array_equal(a[k], b[k], equal_nan=True), k
    for k in ("n", "n_valid", "n_correct", "n_ties", "accuracy"):
        assert np.array_equal(a["stats"][k], b["stats"][k], equal_nan=True), k
    # 6 items in shards of 2 over 2 ranks: 2 item rounds. Killed after the data of the last round,
    # before its flags; the re-run redoes that round and must write the same file.
    pk, killed = run_job(d, "killed", "negrefcocog", NEGREF, images, np_=2, reduce=False,
                         CLIPNEG_TEST_KILL_AFTER_ROUNDS=KILL_ROUNDS)
    assert pk.returncode != 0
    with h5py.File(killed, "r") as f:
        flags = list(f["progress/item_shards"][()])
    assert 0 < sum(flags) < len(flags), flags
    pr, killed = run_job(d, "killed", "negrefcocog", NEGREF, images, np_=2)
    assert pr.returncode == 0, pr.stderr
    c = items_of(killed)
    for k in ("sim", "crop", "status"):
        assert np.array_equal(a[k], c[k], equal_nan=True), k
    for k in ("n_correct", "n_ties"):
        assert np.array_equal(a["stats"][k], c["stats"][k]), k


# texts 1 round, images 2 (3 image shards of 2 over 2 ranks), similarity 2, items 2
KILL_ROUNDS = 6

BAD_MCQ_HEADER = "image_path,correct_answer,caption_0,caption_1,caption_2,caption_3,correct_answer_template\n"


@pytest.mark.parametrize("fmt,name,content,fragment", [
    ("negbench-mcq", "mcq.csv", BAD_MCQ_HEADER + "a.jpg,0,x,y,z,w,positive\n\"b.jpg\",1,x,\"y, z\",w\n",
     "mcq.csv:3: caption_3: missing"),
    ("negbench-retrieval", "ret.csv", "filepath,captions\na.jpg,\"['fine']\"\nb.jpg,\"['a' 'b', c]\"\n",
     "ret.csv:3: captions: not a Python list of strings"),
    ("negrefcocog", "NegRefCOCOg.json",
     '[{"image": "COCO_train2014_000000374391.jpg", "phrase": "p", "ref_bbox": [600, 10, 100, 50],'
     ' "bbox_list": [[600, 10, 100, 50], [0, 0, 10, 10]]}]',
     "NegRefCOCOg.json: item 0: bbox_list[0]: [600, 10, 100, 50] is not inside"),
    ("valse-existence", "existence.json", '[{"image_file": "a.jpg"}]', "existence.json: expected a JSON object"),
    ("sugarcrepe", "add_obj.json", '{"0": ["000000000139.jpg", "c", "n"]}', 'add_obj.json: item "0": expected an object'),
    ("ccneg", "ccneg_preprocessed.pt", "not a torch file", "ccneg_preprocessed.pt: not a torch.save zip file"),
])
def test_bad_files_refused(tmp_path, fmt, name, content, fragment):
    images = link_images(str(tmp_path / "images"))
    path = os.path.join(tmp_path, name)
    with open(path, "w") as f:
        f.write(content)
    p, out = run_job(str(tmp_path), "bad", fmt, path, images, np_=0, reduce=False)
    assert p.returncode == 5, p.stderr
    assert fragment in p.stderr, p.stderr
    assert not os.path.exists(out)
