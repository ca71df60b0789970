"""The streamed item manifest end to end (docs/items.md, "Memory"): a generated manifest of 600
items over coco-mini (choice items of 2..5 candidates, caption/negated pairs, explicit-box and
ann_id region items; blank and blank-only lines, CRLF line ends, ill-formed UTF-8, a text longer
than the context) spans several read-back windows (256 items) and /items creation blocks (256).
Golden values come from Python itself, not from clipneg:
  * every per-item dataset of /items (text, box, ann_id, answer, n_candidates, kind, line,
    image_index, type) equals the manifest as Python's json module reads it (each line decoded
    with bytes.decode("utf-8", errors="replace"), the repair clipneg promises), ann_id boxes taken
    from the instances JSON here;
  * /captions/text (the induced dataset, read back from the manifest) is each item's correct text;
  * 1 rank and 3 ranks write the same file, every dataset bit for bit.
"""
import json
import math
import os

import h5py
import numpy as np

from eval_common import COCO, assert_same_datasets, env_for, require_binaries, run_eval
from test_items import INSTANCES, write_job

N_ITEMS = 600
LONG = " ".join(["a very long caption that goes on"] * 20)  # > 77 tokens: cut, flagged in /items/truncated


def instances_pairs():
    """(file_name, ann_id, [ann ids of its category in its image, by id], boxes) for annotations
    whose image has 2..6 non-crowd instances of their category."""
    inst = json.load(open(INSTANCES))
    files = {im["id"]: im["file_name"] for im in inst["images"]}
    groups = {}
    for a in sorted(inst["annotations"], key=lambda a: a["id"]):
        if not a.get("iscrowd", 0):
            groups.setdefault((a["image_id"], a["category_id"]), []).append(a)
    out = []
    for (img, _), anns in sorted(groups.items()):
        if 2 <= len(anns) <= 6 and all(a["bbox"][2] > 0 and a["bbox"][3] > 0 for a in anns):
            out.append((files[img], anns[len(out) % len(anns)]["id"], [a["id"] for a in anns], [a["bbox"] for a in anns]))
    return out


def write_manifest(path):
    """The manifest's bytes, and what each item must read as: dicts of kind, n, answer, texts,
    boxes, ann_ids, image, type, line."""
    images = sorted(os.listdir(os.path.join(COCO, "val2017")))[:12]
    anns = instances_pairs()[:12]
    lines, line = [], 0
    for i in range(N_ITEMS):
        if i % 41 == 3:
            lines.append(b"")  # an empty line: skipped, counted
        if i % 59 == 9:
            lines.append(b" \t ")  # blanks only
        bad = b" \xff" if i % 13 == 0 else b" \xe2\x82 x" if i % 13 == 7 else b""
        shape = i % 6
        if shape <= 2:
            n = 2 + i % 4
            cands = [f"item {i} candidate {k}".encode() + (bad if k == 1 else b"") for k in range(n)]
            if i == 100:
                cands[2] = LONG.encode()
            body = b'"candidates": [' + b", ".join(b'"' + c + b'"' for c in cands) + b'], "answer": ' + str(i % n).encode()
            if i % 5 == 0:
                body += b', "type": "hybrid"'
        elif shape == 3:
            body = b'"caption": "caption ' + str(i).encode() + b'", "negated": "no caption ' + str(i).encode() + bad + b'"'
        elif shape == 4 or not anns:
            n = 2 + i % 3
            boxes = [[10.5 + k, 20.25 + i % 7, 30 + 5 * k, 40.0 + k] for k in range(n)]
            body = (b'"text": "region ' + str(i).encode() + bad + b'", "boxes": ' + json.dumps(boxes).encode() +
                    b', "answer": ' + str(i % n).encode())
        else:
            file, ann, _, _ = anns[i % len(anns)]
            lines.append(json.dumps({"image": file, "text": f"the {i}th referent", "ann_id": ann, "type": "ref"}).encode())
            continue
        img = images[(i // 4) % len(images)]
        lines.append(b'{"image": "' + img.encode() + b'", ' + body + b"}")
    with open(path, "wb") as f:
        for k, raw in enumerate(lines):
            f.write(raw + (b"\r\n" if k % 3 == 1 else b"\n"))
    return lines


def expected_items(lines):
    by_ann = {a: (ids, boxes) for _, a, ids, boxes in instances_pairs()}
    items, images, types = [], [], []
    for lineno, raw in enumerate(lines, 1):
        text = raw.decode("utf-8", errors="replace")
        if not text.strip(" \t"):
            continue
        o = json.loads(text)
        if o["image"] not in images:
            images.append(o["image"])
        it = {"line": lineno, "image": images.index(o["image"]), "boxes": [], "ann_ids": []}
        if "candidates" in o:
            it.update(kind=0, texts=o["candidates"], answer=o["answer"], deftype="mcq")
        elif "caption" in o:
            it.update(kind=0, texts=[o["caption"], o["negated"]], answer=0, deftype="ccneg")
        elif "boxes" in o:
            it.update(kind=1, texts=[o["text"]], answer=o["answer"], boxes=o["boxes"], ann_ids=[-1] * len(o["boxes"]),
                      deftype="region")
        else:
            ids, boxes = by_ann[o["ann_id"]]
            it.update(kind=1, texts=[o["text"]], answer=ids.index(o["ann_id"]), boxes=boxes, ann_ids=ids, deftype="region")
        it["n"] = len(it["texts"]) if it["kind"] == 0 else len(it["boxes"])
        t = o.get("type", it["deftype"])
        if t not in types:
            types.append(t)
        it["type"] = types.index(t)
        items.append(it)
    return items, images, types


def test_streamed_items_match_the_manifest_and_ranks(tmp_path):
    require_binaries()
    manifest = os.path.join(tmp_path, "many.jsonl")
    items, images, types = expected_items(write_manifest(manifest))
    env = env_for(tmp_path)
    extra = "tile_texts = 64\n"
    outs = []
    for ranks, name in ((0, "one"), (3, "three")):
        job = write_job(str(tmp_path), manifest, name=name, extra=extra)
        with open(job) as f:  # bigger shards than test_items.py's 2: 600 items
            text = f.read().replace("image_shard = 2", "image_shard = 96").replace("text_batch = 5", "text_batch = 64")
        with open(job, "w") as f:
            f.write(text.replace("image_batch = 2", "image_batch = 16").replace("text_shard = 32", "text_shard = 512"))
        p = run_eval(ranks, job, ["--set", "output.embeddings=false"], env, timeout=600)
        assert p.returncode == 0, p.stderr
        outs.append(os.path.join(tmp_path, name + ".h5"))
    assert_same_datasets(outs[0], outs[1])  # (root attributes name the output path)

    with h5py.File(outs[0], "r") as f:
        g = f["items"]
        N, KT = g["text"].shape
        KI = g["box"].shape[1]
        assert N == len(items) == N_ITEMS
        assert KT == max(it["n"] for it in items if it["kind"] == 0)
        assert KI == max(it["n"] for it in items if it["kind"] == 1)
        assert list(g["type_names"].asstr()[()]) == types
        files = list(f["images/file_name"].asstr()[()])
        assert files == images
        text = g["text"].asstr()[()]
        box, ann, trunc = g["box"][()], g["ann_id"][()], g["truncated"][()]
        for i, it in enumerate(items):
            assert int(g["line"][i]) == it["line"] and int(g["kind"][i]) == it["kind"], i
            assert int(g["answer"][i]) == it["answer"] and int(g["n_candidates"][i]) == it["n"], i
            assert int(g["image_index"][i]) == it["image"] and int(g["type"][i]) == it["type"], i
            want = it["texts"] + [""] * (KT - len(it["texts"]))
            assert list(text[i]) == want, i
            assert list(trunc[i]) == [int(t == LONG) for t in it["texts"]] + [-1] * (KT - len(it["texts"])), i
            wb = np.full((KI, 4), np.nan)
            wa = np.full(KI, -1)
            for k, b in enumerate(it["boxes"]):
                wb[k], wa[k] = b, it["ann_ids"][k]
            assert np.array_equal(box[i], wb, equal_nan=True), i
            assert list(ann[i]) == list(wa), i
        assert sum("\ufffd" in t for it in items for t in it["texts"]) > 40  # the repairs were exercised
        assert sum(it["ann_ids"][0] >= 0 for it in items if it["kind"] == 1) > 0  # and ann_id items
        # the induced dataset: one caption per item (id = item index), its correct text
        cap_text = f["captions/text"].asstr()[()]
        cap_id = f["captions/id"][()]
        assert sorted(cap_id) == list(range(N_ITEMS))
        for t, i in zip(cap_text, cap_id):
            it = items[i]
            assert t == it["texts"][it["answer"] if it["kind"] == 0 else 0], i
        assert np.isfinite(g["sim"][()][:, :2]).sum() > 0 and not math.isnan(float(np.nanmax(g["sim"][()])))
