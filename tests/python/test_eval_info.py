"""What a finished file and the debug commands tell a user without reading the run's log:
  * the dataset reader's counts (duplicate ids, captions without image, repaired UTF-8, empty
    captions, images without captions, captions beyond max_images) are root attributes, equal to
    Python's own count over the JSON, and `clipneg info` shows them;
  * `clipneg tokenize` finds the vocabulary scripts/install-deps.sh put in models/ from any folder,
    with ids equal to open_clip's tokenizer; an error message is one whole line (ends with '\\n').
"""
import json
import os
import subprocess

import h5py
import pytest

from eval_common import BIN, COCO, DEMO, REPO, env_for, require_binaries, run_eval


def test_dataset_counts_stored_and_shown(tmp_path):
    require_binaries()
    caps = json.load(open(os.path.join(COCO, "annotations", "captions_val2017.json")))
    images = sorted(caps["images"], key=lambda im: im["id"])[:4]
    keep = {im["id"] for im in images}
    anns = [a for a in caps["annotations"] if a["image_id"] in keep]
    extra = [dict(anns[0], caption="a repeated id: dropped"),                     # duplicate id
             {"id": 1, "image_id": 999999999, "caption": "no such image"},         # orphan
             {"id": 2, "image_id": images[0]["id"], "caption": "   "},              # empty (blank)
             {"id": 3, "image_id": images[1]["id"], "caption": "BAD_UTF8"}]        # repaired below
    doc = {"images": images + [{"id": 5, "file_name": "no_captions.jpg"}], "annotations": anns + extra}
    text = json.dumps(doc).encode().replace(b"BAD_UTF8", b"caf\xe9 ok")
    path = tmp_path / "captions.json"
    path.write_bytes(text)
    # Python's own count over the same bytes (the reader's rules: docs/datasets.md)
    raw = json.loads(text.decode("utf-8", errors="replace"))
    ids = [a["id"] for a in raw["annotations"]]
    image_ids = {im["id"] for im in raw["images"]}
    first = {}
    for a in raw["annotations"]:
        first.setdefault(a["id"], a)
    kept = [a for a in first.values() if a["image_id"] in image_ids]
    want = {"dataset_duplicate_ids": len(ids) - len(set(ids)),
            "dataset_captions_without_image": sum(a["image_id"] not in image_ids for a in first.values()),
            "dataset_invalid_utf8": sum("\ufffd" in a["caption"] for a in raw["annotations"]),
            "dataset_empty_captions": sum(not a["caption"].strip() for a in kept),
            "dataset_images_without_captions": sum(all(a["image_id"] != i for a in kept) for i in image_ids),
            "dataset_dropped_by_max_images": 0}
    assert want == {"dataset_duplicate_ids": 1, "dataset_captions_without_image": 1, "dataset_invalid_utf8": 1,
                    "dataset_empty_captions": 1, "dataset_images_without_captions": 1,
                    "dataset_dropped_by_max_images": 0}
    out = tmp_path / "counts.h5"
    p = run_eval(0, DEMO, ["--output", str(out), "--set", f"dataset.captions={path}", "--set", "run.threads=1"],
                 env_for(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    with h5py.File(out, "r") as f:
        got = {k: int(f.attrs[k]) for k in want}
    assert got == want
    r = subprocess.run([BIN, "info", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for k, v in want.items():
        assert any(line.split() == [k, str(v)] for line in r.stdout.splitlines()), (k, r.stdout[-1500:])


def test_tokenize_finds_installed_vocabulary(tmp_path):
    if not os.path.exists(BIN):
        pytest.skip(f"clipneg is not built ({BIN})")
    if not os.path.exists(os.path.join(REPO, "models", "bpe_simple_vocab_16e6.txt.gz")):
        pytest.skip("models/bpe_simple_vocab_16e6.txt.gz missing (scripts/install-deps.sh puts it there)")
    open_clip = pytest.importorskip("open_clip", reason="open_clip is not installed (scripts/install-deps.sh)")
    env = {k: v for k, v in os.environ.items() if k != "CLIPNEG_BPE"}
    text = "A dog, not a cat."
    r = subprocess.run([BIN, "tokenize", text], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    want = open_clip.tokenizer.SimpleTokenizer().encode(text)
    assert [int(x) for x in r.stdout.split()] == [49406] + want + [49407]
    # an error is one whole line: the message ends with its newline
    r = subprocess.run([BIN, "tokenize", "--vocab", str(tmp_path / "nope"), text], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 4 and r.stderr.endswith("\n") and r.stderr.count("\n") == 1, repr(r.stderr)
    assert "tokenizer vocabulary not found" in r.stderr
