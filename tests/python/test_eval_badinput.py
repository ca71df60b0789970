"""Bad input: a missing image file, a corrupt image and a decompression-bomb header are recorded
(/images/status 2, 3, 4 with a message in /images/error, NaN embedding and similarities) and the run
completes; an unwritable output path or a broken job stops before any work with a clear message and
creates nothing.
"""
import json
import os
import struct
import zlib

import h5py
import numpy as np
import pytest

from eval_common import BPE, COCO, TINY_MODEL, env_for, info, require_binaries, run_eval

CAPS = json.load(open(os.path.join(COCO, "annotations", "captions_val2017.json")))


def bomb_png():
    """A valid PNG whose header claims 20000 x 20000 pixels (over IMAGE_MAX_PIXELS = 1e8)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """7 images: 4 real (symlinked), one missing, one corrupt JPEG, one bomb PNG; 5 captions each."""
    require_binaries()
    root = tmp_path_factory.mktemp("bad")
    imgdir = root / "images"
    imgdir.mkdir()
    images = sorted(CAPS["images"], key=lambda im: im["id"])[:7]
    kinds = ["ok", "missing", "ok", "corrupt", "ok", "bomb", "ok"]
    for im, kind in zip(images, kinds):
        src = os.path.join(COCO, "val2017", im["file_name"])
        dst = imgdir / im["file_name"]
        if kind == "ok":
            os.symlink(src, dst)
        elif kind == "corrupt":  # a real JPEG cut after its first 600 bytes, then garbage
            dst.write_bytes(open(src, "rb").read()[:600] + b"\x00garbage" * 50)
        elif kind == "bomb":
            im["file_name"] = im["file_name"].replace(".jpg", ".png")
            (imgdir / im["file_name"]).write_bytes(bomb_png())
    ids = {im["id"] for im in images}
    caps = {"images": images, "annotations": [a for a in CAPS["annotations"] if a["image_id"] in ids]}
    (root / "captions.json").write_text(json.dumps(caps))
    (root / "variants.ini").write_text("[caption]\ntemplate = {caption}\npolarity = positive\n\n"
                                       "[this_is_not]\ntemplate = This is not {caption_lc}\npolarity = negative\n")
    job = root / "job.ini"
    job.write_text(f"[model]\npath = {TINY_MODEL}\ntokenizer = {BPE}\n\n"
                   f"[dataset]\nformat = coco\ncaptions = {root}/captions.json\nimages = {imgdir}\n\n"
                   f"[variants]\nfile = {root}/variants.ini\n\n"
                   f"[output]\nfull_similarity = true\n\n"
                   f"[run]\nimage_shard = 3\nimage_batch = 2\ntext_shard = 16\nthreads = 1\n")
    return root, job, kinds


def test_failed_images_are_recorded_and_the_run_completes(dataset):
    root, job, kinds = dataset
    out = root / "out.h5"
    p = run_eval(2, str(job), ["--output", str(out)], env_for(root))
    assert p.returncode == 0, p.stderr[-3000:]
    want = {"ok": 1, "missing": 2, "corrupt": 3, "bomb": 4}
    with h5py.File(out, "r") as f:
        status = f["images/status"][()]
        errors = f["images/error"].asstr()[()]
        names = f["images/file_name"].asstr()[()]
        emb = f["embeddings/image"][()]
        paired = f["similarity/paired"][()]
        full = f["similarity/full"][()]
        cap_img = f["captions/image_index"][()]
        assert int(f.attrs["complete"]) == 1
    assert list(status) == [want[k] for k in kinds]
    for i, k in enumerate(kinds):
        if k == "ok":
            assert errors[i] == "" and not np.isnan(emb[i]).any()
            assert not np.isnan(paired[cap_img == i]).any() and not np.isnan(full[i]).any()
        else:
            assert names[i] in errors[i], f"error of image {i} does not name its file: {errors[i]!r}"
            assert np.isnan(emb[i]).all() and np.isnan(paired[cap_img == i]).all() and np.isnan(full[i]).all()
    assert "missing image file" in errors[1] and "refusing" in errors[5]
    r = info(str(out))
    assert r.returncode == 0 and "4 ok, 1 missing file, 1 decode error, 1 refused" in r.stdout, r.stdout


def test_unwritable_output_fails_before_any_work(dataset, tmp_path):
    root, job, _ = dataset
    for target, reason in [("/etc/hostname/out.h5", "Not a directory"), (str(tmp_path), "is a folder"),
                           (str(tmp_path / "no" / "such" / "dir" / "out.h5"), "No such file or directory")]:
        p = run_eval(2, str(job), ["--output", target], env_for(root))
        assert p.returncode == 6, (target, p.returncode, p.stderr[-2000:])
        assert f"{target}" in p.stderr and reason in p.stderr, p.stderr[-2000:]
        assert "model:" not in p.stderr  # stopped before the model was loaded or the summary printed
    assert os.listdir(tmp_path) == []


def test_broken_job_stops_all_ranks_and_creates_nothing(dataset, tmp_path):
    root, job, _ = dataset
    bad = tmp_path / "bad.ini"
    bad.write_text(job.read_text().replace("image_batch = 2", "image_batch = 0"))
    out = tmp_path / "out.h5"
    p = run_eval(3, str(bad), ["--output", str(out)], env_for(root))
    assert p.returncode == 3, p.stderr[-2000:]
    assert "image_batch" in p.stderr and str(bad) in p.stderr
    # one message, from one rank (not three copies)
    assert p.stderr.count("error:") == 1, p.stderr
    assert not out.exists()
