"""The bad-input matrix: every case runs the real `clipneg eval` and checks the exact outcome.

Two kinds of outcome (docs/robustness.md has the table):
  * per-item problems (an image that cannot be decoded, an empty caption, ...) are recorded in the
    HDF5 status datasets (/images/status + /images/error, /texts/status, /texts/truncated), counted in
    the run's summary, and the run goes on to a complete file (exit 0);
  * configuration, data-file and model problems stop every rank before any work, with the exit code
    of include/clipneg/common.h and a message naming the culprit (file + field/tensor), and leave no
    output file (or an existing one untouched).
Plus what must never happen to the output: a full disk or a killed rank never leaves a file that
looks complete (`complete` absent or 0), and a re-run resumes it.

All inputs are built in tmp dirs from a few coco-mini images (symlinks or PIL-made variants) and the
tiny random test model; everything is checked with h5py/numpy, never with clipneg itself.
The per-item cases share ONE eval run (module fixture) to keep the file fast (< 90 s in total).
"""
import json
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import time
import zlib

import h5py
import numpy as np
import pytest
from PIL import Image

from eval_common import (BIN, BPE, COCO, DEMO, MPIEXEC, REPO, SMALL, TINY_MODEL, assert_same_results, env_for, info,
                         kill_group, require_binaries, run_eval, start_eval, wait_for_progress)

SEED7 = os.path.join(REPO, "jobs", "variants", "seed7.ini")
V = 7  # variants in seed7.ini
CAPS = json.load(open(os.path.join(COCO, "annotations", "captions_val2017.json")))
REAL = sorted(CAPS["images"], key=lambda im: im["id"])
# exit codes (include/clipneg/common.h)
E_CONFIG, E_MODEL, E_DATA, E_IO = 3, 4, 5, 6
# /images/status and /texts/status values (docs/hdf5-schema.md)
IMG_OK, IMG_MISSING, IMG_DECODE, IMG_REFUSED = 1, 2, 3, 4
TXT_OK, TXT_NO_SUBJECT, TXT_EMPTY = 0, 1, 2


def real_path(k):
    return os.path.join(COCO, "val2017", REAL[k]["file_name"])


def write_job(path, *, captions, images, model=TINY_MODEL, tokenizer=BPE, variants=SEED7, extra_run=""):
    lines = [f"[model]\npath = {model}"]
    if tokenizer:
        lines.append(f"tokenizer = {tokenizer}")
    lines.append(f"\n[dataset]\nformat = coco\ncaptions = {captions}\nimages = {images}\n")
    lines.append(f"[variants]\nfile = {variants}\n")
    lines.append("[output]\nfull_similarity = true\n")
    lines.append(f"[run]\nimage_shard = 4\nimage_batch = 3\ntext_shard = 32\ntext_batch = 16\nthreads = 1\n{extra_run}")
    path.write_text("\n".join(lines))
    return path


# ---- images made with PIL / by hand (independent of clipneg) ------------------------------------
def png_rgb16(path, rgb8):
    """A 16-bit-per-channel RGB PNG (PIL cannot write one): samples v * 257, big-endian, filter 0."""
    h, w, _ = rgb8.shape
    px = (rgb8.astype(">u2") * 257).reshape(h, w * 3)
    raw = b"".join(b"\0" + row.tobytes() for row in px)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def jpeg_with_size(src, w, h):
    """A real, complete JPEG whose frame header (SOF0/SOF2) is patched to claim w x h pixels."""
    b = bytearray(open(src, "rb").read())
    pos = 2
    while pos < len(b):
        assert b[pos] == 0xFF, "marker walk lost"
        m, seglen = b[pos + 1], struct.unpack(">H", b[pos + 2:pos + 4])[0]
        if m in (0xC0, 0xC1, 0xC2):
            struct.pack_into(">HH", b, pos + 5, h, w)
            return bytes(b)
        pos += 2 + seglen
    raise AssertionError("no SOF marker")


# ---- the per-item dataset: one eval run, many cases ----------------------------------------------
# image id -> (file name, what it is, expected /images/status, message fragment)
IMAGES = {
    1: ("ok_a.jpg", "real JPEG", IMG_OK, None),
    2: ("zero.jpg", "zero-byte JPEG", IMG_DECODE, "empty file (0 bytes)"),
    3: ("truncated.jpg", "first half of a JPEG", IMG_DECODE, "truncated JPEG"),
    4: ("rgb16.png", "16-bit RGB PNG", IMG_OK, None),
    5: ("palette.png", "paletted PNG", IMG_OK, None),
    6: ("gray.jpg", "grayscale JPEG", IMG_OK, None),
    7: ("cmyk.jpg", "Adobe CMYK JPEG", IMG_OK, None),
    8: ("bomb.jpg", "30000x30000 header", IMG_REFUSED, "refusing 30000x30000 image"),
    9: ("missing.jpg", "missing file", IMG_MISSING, "missing image file"),
    10: ("nocaption.jpg", "image without captions", IMG_OK, None),
    11: ("ok_b.jpg", "holds the odd captions", IMG_OK, None),
    # 8-bit RGB twins of 4 and 5 (the pixels PIL gives), without captions: the 16-bit and paletted
    # files must decode to exactly these pixels, hence the same embeddings
    12: ("rgb8_twin.png", "8-bit twin of rgb16.png", IMG_OK, None),
    13: ("palette_twin.png", "RGB twin of palette.png", IMG_OK, None),
}
LONG = " ".join(["a small brown dog runs across the green field"] * 34)  # 306 words, far over 77 tokens
# annotation id -> caption bytes: the odd captions, all on image 11
ODD = {201: b"", 202: b"   \t ", 203: b"A caf\xe9 with a dog \xff\xfe on the table.", 204: LONG.encode(),
       205: b"A man riding a horse."}


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    require_binaries()
    root = tmp_path_factory.mktemp("items")
    img = root / "images"
    img.mkdir()
    os.symlink(real_path(0), img / "ok_a.jpg")
    os.symlink(real_path(1), img / "ok_b.jpg")
    os.symlink(real_path(2), img / "nocaption.jpg")
    (img / "zero.jpg").write_bytes(b"")
    data = open(real_path(3), "rb").read()
    (img / "truncated.jpg").write_bytes(data[:len(data) // 2])
    pil = Image.open(real_path(4)).convert("RGB").resize((64, 48))
    png_rgb16(img / "rgb16.png", np.asarray(pil))
    pil.save(img / "rgb8_twin.png")
    pal = pil.convert("P", palette=Image.ADAPTIVE, colors=32)
    pal.save(img / "palette.png")
    pal.convert("RGB").save(img / "palette_twin.png")
    pil.convert("L").save(img / "gray.jpg", quality=90)
    pil.convert("CMYK").save(img / "cmyk.jpg", quality=90)  # PIL writes the Adobe APP14 marker
    (img / "bomb.jpg").write_bytes(jpeg_with_size(real_path(5), 30000, 30000))
    # (missing.jpg is not created)

    images = [{"id": i, "file_name": name} for i, (name, _, _, _) in IMAGES.items()]
    images.append({"id": 11, "file_name": "duplicate-of-11.jpg"})  # duplicate image id: dropped
    anns = [{"id": 100 + i, "image_id": i, "caption": "A cat sitting on a sofa."} for i in range(1, 10)]
    anns += [{"id": k, "image_id": 11, "caption": f"@@{k}@@"} for k in ODD]
    anns.append({"id": 205, "image_id": 11, "caption": "a duplicate caption id: dropped"})
    anns.append({"id": 206, "image_id": 999, "caption": "an image id that does not exist: dropped"})
    text = json.dumps({"images": images, "annotations": anns}).encode()
    for k, cap in ODD.items():  # raw bytes (invalid UTF-8 included) straight into the JSON text
        text = text.replace(f"@@{k}@@".encode(), cap.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\t", b"\\t"))
    (root / "captions.json").write_bytes(text)
    job = write_job(root / "job.ini", captions=root / "captions.json", images=img)
    out = root / "out.h5"
    p = run_eval(2, str(job), ["--output", str(out)], env_for(root))
    assert p.returncode == 0, p.stderr[-4000:]
    f = h5py.File(out, "r")
    yield {"p": p, "out": out, "f": f, "root": root, "job": job,
           "img_row": {int(i): r for r, i in enumerate(f["images/id"][()])},
           "cap_row": {int(i): r for r, i in enumerate(f["captions/id"][()])}}
    f.close()


def image_case(items, image_id):
    f, r = items["f"], items["img_row"][image_id]
    name, what, want, fragment = IMAGES[image_id]
    status = int(f["images/status"][r])
    err = f["images/error"].asstr()[r]
    assert status == want, f"{what} ({name}): status {status}, expected {want}; error {err!r}"
    emb = f["embeddings/image"][r]
    caps = f["captions/image_index"][()] == r
    paired = f["similarity/paired"][()][caps]
    full = f["similarity/full"][r]
    if want == IMG_OK:
        assert err == "" and np.isfinite(emb).all() and abs(np.linalg.norm(emb) - 1) < 1e-5
        # the texts of this image's caption that were rendered have a finite paired cosine
        tstat = f["texts/status"][()].reshape(-1, V)[caps]
        assert np.isfinite(paired[tstat == TXT_OK]).all()
        assert np.isfinite(full[f["texts/status"][()] == TXT_OK]).all()
    else:
        assert name in err and fragment in err, f"{what}: error {err!r} lacks {name!r} / {fragment!r}"
        assert np.isnan(emb).all() and np.isnan(paired).all() and np.isnan(full).all()
    return r


def test_run_completes_with_per_item_failures(items):
    assert int(items["f"].attrs["complete"]) == 1
    assert items["f"]["images/status"].shape == (13,)  # duplicate image id dropped


def test_zero_byte_jpeg(items):
    image_case(items, 2)


def test_truncated_jpeg(items):
    image_case(items, 3)


def same_embedding(items, a, b):
    """Images a and b hold the same pixels: their embeddings agree (same pixels, same encoder; 1e-5
    allows the batch position to change BLAS's summation order; quantising to 32 colours alone moves
    the tiny model's embedding by 6.5e-3)."""
    emb = items["f"]["embeddings/image"]
    ea, eb = emb[items["img_row"][a]], emb[items["img_row"][b]]
    assert np.abs(ea - eb).max() < 1e-5, f"{IMAGES[a][1]} vs {IMAGES[b][1]}: {np.abs(ea - eb).max():.3g}"


def test_png_16bit(items):
    image_case(items, 4)
    image_case(items, 12)
    same_embedding(items, 4, 12)


def test_png_paletted(items):
    image_case(items, 5)
    image_case(items, 13)
    same_embedding(items, 5, 13)


def test_grayscale_jpeg(items):
    image_case(items, 6)


def test_cmyk_jpeg(items):
    image_case(items, 7)


def test_decompression_bomb_header(items):
    image_case(items, 8)


def test_bomb_refused_before_allocating(tmp_path):
    """The 30000x30000 header (2.7 GB of RGB) is refused under a 1 GiB address-space limit, so the
    check happens before stb allocates: with a late check the decoder would fail "out of memory"
    instead. ASan reserves terabytes of shadow memory, so the limit is only applied to plain builds."""
    require_binaries()
    if b"__asan_init" in open(BIN, "rb").read():
        pytest.skip("sanitizer build: RLIMIT_AS cannot be applied (ASan shadow memory)")
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(jpeg_with_size(real_path(5), 30000, 30000))

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    p = subprocess.run([BIN, "preprocess", "--size", "32", "--threads", "1", "-o", str(tmp_path / "x.f32"), str(bomb)],
                       capture_output=True, text=True, preexec_fn=limit, env=env_for(tmp_path), timeout=60)
    assert p.returncode != 0 and "refusing 30000x30000 image" in p.stderr, (p.returncode, p.stderr[-2000:])
    assert "memory" not in p.stderr.lower()


def test_missing_image_file(items):
    image_case(items, 9)


def test_image_without_captions(items):
    r = image_case(items, 10)
    f = items["f"]
    assert int(f["images/n_captions"][r]) == 0
    assert "3 without captions, kept" in items["p"].stderr  # and the two twins


def test_duplicate_ids(items):
    f = items["f"]
    ids = list(f["images/id"][()])
    assert ids == sorted(set(ids)) and ids.count(11) == 1
    assert f["images/file_name"].asstr()[items["img_row"][11]] == "ok_b.jpg"  # the first one is kept
    assert f["captions/text"].asstr()[items["cap_row"][205]] == "A man riding a horse."
    assert list(f["captions/id"][()]).count(205) == 1
    assert "2 duplicate ids" in items["p"].stderr  # one image id + one caption id


def test_caption_of_unknown_image_dropped(items):
    assert 206 not in items["cap_row"]
    assert "1 captions without image" in items["p"].stderr


def text_rows(items, ann_id):
    c = items["cap_row"][ann_id]
    return np.arange(c * V, (c + 1) * V)


def test_empty_caption(items):
    f = items["f"]
    for ann in (201, 202):  # "" and all-blank
        rows = text_rows(items, ann)
        assert (f["texts/status"][()][rows] == TXT_EMPTY).all()
        assert all(t == "" for t in f["texts/text"].asstr()[()][rows])
        assert (f["texts/n_tokens"][()][rows] == 0).all()
        assert np.isnan(f["embeddings/text"][()][rows]).all()
        assert np.isnan(f["similarity/paired"][items["cap_row"][ann]]).all()
        assert np.isnan(f["similarity/full"][()][:, rows]).all()
    assert "2 empty captions" in items["p"].stderr


def test_invalid_utf8_caption(items):
    f = items["f"]
    c = items["cap_row"][203]
    want = ODD[203].decode("utf-8", errors="replace")  # Python's rule: one U+FFFD per maximal subpart
    assert f["captions/text"].asstr()[c] == want
    rows = text_rows(items, 203)
    st = f["texts/status"][()][rows]
    assert (st[st != TXT_NO_SUBJECT] == TXT_OK).all()
    assert "\ufffd" in f["texts/text"].asstr()[rows[0]]
    assert np.isfinite(f["embeddings/text"][()][rows[st == TXT_OK]]).all()
    # counted (Dataset.n_invalid_utf8) and reported, like the other dataset repairs
    assert re.search(r"\b1 (caption\(s\) with )?invalid UTF-8", items["p"].stderr), \
        "the run summary does not count the caption repaired from invalid UTF-8:\n" + summary_lines(items["p"].stderr)


def test_long_caption_truncated(items):
    f = items["f"]
    rows = text_rows(items, 204)
    st = f["texts/status"][()][rows]
    ok = rows[st == TXT_OK]
    assert len(ok) >= 5  # every variant but the two {swap}/{a_other} ones (no instances file)
    assert (f["texts/truncated"][()][ok] == 1).all()
    assert (f["texts/n_tokens"][()][ok] == 77).all()
    assert np.isfinite(f["embeddings/text"][()][ok]).all()
    # no other text of the run is flagged
    assert int(f["texts/truncated"][()].sum()) == len(ok)


def summary_lines(stderr):
    return "\n".join(l for l in stderr.splitlines() if "##" not in l)[-3000:]


def test_summary_counts_per_item_failures(items):
    """The end of the run says what failed, in numbers: a user must not have to open the file to
    learn that 4 of 11 images were lost. Same wording as `clipneg info`."""
    err = items["p"].stderr
    tail = err[err.rfind("similarity"):] if "similarity" in err else err
    assert re.search(r"1 missing file, 2 decode error, 1 refused", tail), \
        "no per-item failure counts at the end of the run:\n" + summary_lines(err)
    assert re.search(r"14 empty caption", tail) and re.search(r"\b5 truncated", tail)


def test_info_reports_failures_and_provenance(items):
    r = info(str(items["out"]))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert ": COMPLETE" in out
    assert "shards done: texts 4/4" in out and "images 4/4" in out and "similarity 4/4" in out
    assert "images: 9 ok, 1 missing file, 2 decode error, 1 refused, 0 pending" in out
    # 14 captions x 7 variants: 2 empty captions; {swap} and {a_other} have no instances file
    assert "texts: 60 ok, 24 no subject, 14 empty caption, 0 no negative, 0 pending; 5 truncated" in out
    for i in (2, 3, 8, 9):
        assert IMAGES[i][0] in out  # each failed image is named with its message
    for attr in ("job_sha256", "model_sha256", "git_commit", "clipneg_version", "model_arch", "start_time",
                 "end_time", "ranks", "backend", "random_weights"):
        assert re.search(rf"^\s+{attr}\s+\S", out, re.M), f"info does not print {attr}"
    assert "RANDOM TEST WEIGHTS" in out


def test_complete_file_is_consistent(items):
    """complete = 1 implies every shard flag set and nothing pending."""
    f = items["f"]
    for k in ("text_shards", "image_shards", "sim_shards"):
        assert f["progress"][k][()].all()
    assert (f["images/status"][()] != 0).all() and (f["texts/status"][()] != -1).all()
    assert f.attrs["end_time"] != ""


# ---- errors that stop the run before any work ----------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two real images, 10 captions: a valid job that the stop cases then break one thing in."""
    require_binaries()
    root = tmp_path_factory.mktemp("small")
    img = root / "images"
    img.mkdir()
    images = REAL[:2]
    for im in images:
        os.symlink(os.path.join(COCO, "val2017", im["file_name"]), img / im["file_name"])
    ids = {im["id"] for im in images}
    caps = {"images": images, "annotations": [a for a in CAPS["annotations"] if a["image_id"] in ids]}
    (root / "captions.json").write_text(json.dumps(caps))
    return root, img, caps


def assert_stopped(p, code, fragments, out):
    msg = p.stderr
    assert p.returncode == code, f"exit {p.returncode}, expected {code}:\n{summary_lines(msg)}"
    for frag in fragments:
        assert frag in msg, f"message lacks {frag!r}:\n{summary_lines(msg)}"
    assert msg.count("error:") == 1, f"expected one error message (from one rank):\n{msg[-3000:]}"
    assert "output:" not in msg  # the output stage was never reached
    leftovers = [n for n in os.listdir(os.path.dirname(out)) if n.startswith(os.path.basename(out))]
    assert leftovers == [], f"left behind: {leftovers}"


def stop_case(root, name, captions, images, code, fragments, env_extra=None, **job_kw):
    case = root / name
    case.mkdir()
    job = write_job(case / "job.ini", captions=captions, images=images, **job_kw)
    out = case / "out.h5"
    env = env_for(case)
    if job_kw.get("tokenizer") is None:
        env.pop("CLIPNEG_BPE", None)
    env.update(env_extra or {})
    p = run_eval(2, str(job), ["--output", str(out)], env)
    assert_stopped(p, code, fragments, str(out))


def test_bad_variants_file(small):
    root, img, _ = small
    v = root / "typo-variants.ini"
    v.write_text("[caption]\ntemplate = {caption}\npolarity = positive\n\n[neg]\ntemplate = Not {capton}\n"
                 "polarity = negative\n")
    stop_case(root, "variants", root / "captions.json", img, E_CONFIG,
              ["typo-variants.ini:6", "[neg] template", "{capton}"], variants=v)


def test_jsonl_wrong_types(small):
    root, img, _ = small
    path = root / "manifest.jsonl"
    path.write_text(json.dumps({"image": REAL[0]["file_name"], "caption": "A cat."}) + "\n" +
                    json.dumps({"image": REAL[1]["file_name"], "caption": ["not", "a", "string"]}) + "\n")
    case = root / "types-jsonl"
    case.mkdir()
    job = case / "job.ini"
    job.write_text(write_job(case / "tmp.ini", captions=root / "captions.json", images=img).read_text()
                   .replace("format = coco", "format = jsonl").replace(f"captions = {root}/captions.json",
                                                                        f"manifest = {path}"))
    out = case / "out.h5"
    p = run_eval(2, str(job), ["--output", str(out)], env_for(case))
    assert_stopped(p, E_DATA, ["manifest.jsonl:2", "caption", "expected a string"], str(out))


@pytest.mark.parametrize("where,value,field", [
    ("annotations", 42, "annotations[3].caption"),
    ("images", "abc", "images[1].id"),
])
def test_json_wrong_types(small, where, value, field):
    root, img, caps = small
    bad = json.loads(json.dumps(caps))
    if where == "annotations":
        bad["annotations"][3]["caption"] = value
    else:
        bad["images"][1]["id"] = value
    path = root / f"captions-{where}.json"
    path.write_text(json.dumps(bad))
    stop_case(root, f"types-{where}", path, img, E_DATA, [f"captions-{where}.json", field, "expected"])


# ---- broken checkpoints: a raw safetensors reader/writer (json + struct, not clipneg) --------------
def st_read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]


def st_write(path, header, data):
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + data)


def broken_model(root, name, edit):
    """A copy of the tiny model folder whose weights header is changed by edit(header, data)."""
    d = root / name
    shutil.copytree(TINY_MODEL, d)
    w = d / "open_clip_model.safetensors"
    header, data = st_read(w)
    header, data = edit(header, data)
    st_write(w, header, data)
    return d


def test_safetensors_offset_out_of_bounds(small):
    root, img, _ = small

    def edit(h, data):
        h["ln_final.weight"]["data_offsets"][1] = len(data) + 64
        return h, data
    m = broken_model(root, "m-oob", edit)
    stop_case(root, "oob", root / "captions.json", img, E_MODEL,
              ["open_clip_model.safetensors", "ln_final.weight", "outside the data section"], model=m)


def test_safetensors_wrong_dtype(small):
    root, img, _ = small

    def edit(h, data):
        h["ln_final.weight"]["dtype"] = "I32"  # same item size: the header stays consistent
        return h, data
    m = broken_model(root, "m-dtype", edit)
    stop_case(root, "dtype", root / "captions.json", img, E_MODEL,
              ["open_clip_model.safetensors", "ln_final.weight", "I32"], model=m)


def test_safetensors_missing_tensor(small):
    root, img, _ = small

    def edit(h, data):  # drop the tensor and its bytes, shift the later offsets
        b0, b1 = h.pop("ln_final.weight")["data_offsets"]
        for k, t in h.items():
            if k != "__metadata__" and t["data_offsets"][0] >= b1:
                t["data_offsets"] = [t["data_offsets"][0] - (b1 - b0), t["data_offsets"][1] - (b1 - b0)]
        return h, data[:b0] + data[b1:]
    m = broken_model(root, "m-missing", edit)
    stop_case(root, "missing", root / "captions.json", img, E_MODEL,
              ["open_clip_model.safetensors", "missing tensor 'ln_final.weight'"], model=m)


def test_model_without_tokenizer_files(small):
    """No [model] tokenizer, no vocabulary beside the model, $CLIPNEG_BPE naming a missing file: the
    model error names every place looked at. (With $CLIPNEG_BPE unset, the vocabulary that
    scripts/install-deps.sh put in models/ of the build tree would be found.)"""
    root, img, _ = small
    m = root / "m-notok"
    shutil.copytree(TINY_MODEL, m)
    missing = root / "no-such-vocab.txt.gz"
    stop_case(root, "notok", root / "captions.json", img, E_MODEL,
              ["tokenizer vocabulary not found", str(m), "CLIPNEG_BPE", str(missing)], model=m, tokenizer=None,
              env_extra={"CLIPNEG_BPE": str(missing)})


def test_unwritable_output(small, tmp_path):
    root, img, _ = small
    job = write_job(tmp_path / "job.ini", captions=root / "captions.json", images=img)
    (tmp_path / "file").write_text("x")
    for target, reason in [(str(tmp_path / "file" / "out.h5"), "Not a directory"),
                           ("/proc/clipneg-out.h5", "cannot create output /proc/clipneg-out.h5")]:
        p = run_eval(2, str(job), ["--output", target], env_for(tmp_path))
        assert p.returncode == E_IO, (target, p.returncode, summary_lines(p.stderr))
        assert target in p.stderr and reason in p.stderr and "model:" not in p.stderr


def test_model_error_leaves_existing_output_untouched(small, tmp_path):
    """An existing (here: complete) output and a job whose model is broken: refused before the output
    is opened, the file keeps its bytes and its mtime."""
    root, img, _ = small
    job = write_job(tmp_path / "job.ini", captions=root / "captions.json", images=img)
    out = tmp_path / "out.h5"
    p = run_eval(1, str(job), ["--output", str(out)], env_for(tmp_path))
    assert p.returncode == 0, summary_lines(p.stderr)
    before, mtime = out.read_bytes(), out.stat().st_mtime_ns

    def edit(h, data):
        h["ln_final.weight"]["dtype"] = "I32"
        return h, data
    m = broken_model(tmp_path, "m", edit)
    bad = write_job(tmp_path / "bad.ini", captions=root / "captions.json", images=img, model=m)
    p = run_eval(2, str(bad), ["--output", str(out), "--fresh"], env_for(tmp_path))
    assert p.returncode == E_MODEL and "ln_final.weight" in p.stderr, summary_lines(p.stderr)
    assert out.read_bytes() == before and out.stat().st_mtime_ns == mtime
    assert sorted(os.listdir(tmp_path)) == sorted(["job.ini", "bad.ini", "m", "out.h5"])


# ---- the output is never left looking complete when it is not ------------------------------------
def complete_flag(path):
    """1, 0, or None when the attribute is absent or the file is not readable HDF5."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return int(f.attrs["complete"]) if "complete" in f.attrs else None
    except OSError:
        return None


def fsize_limited(limit):
    def pre():
        # Ignored SIGXFSZ survives exec: a write past the limit then fails with EFBIG instead of
        # killing the process, like a full disk (ENOSPC) would.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


@pytest.fixture(scope="module")
def disk_job(small, tmp_path_factory):
    root, img, _ = small
    d = tmp_path_factory.mktemp("disk")
    job = write_job(d / "job.ini", captions=root / "captions.json", images=img)
    ref = d / "ref.h5"
    p = run_eval(0, str(job), ["--output", str(ref)], env_for(d))
    assert p.returncode == 0, summary_lines(p.stderr)
    return d, job, ref.stat().st_size


# RLIMIT_FSIZE below the finished file's size. Every dataset is allocated when the file is created
# (sparse: the big ones are never filled), so a limit under ~95% of the size is hit while creating
# it, and a limit just under the size by the last growth: the finishing attributes. (Writes into the
# allocated space do not grow the file: the tmpfs case below covers running out of blocks mid-run.)
# The singleton (no mpirun) with PMIx's hash store: Open MPI's shared-memory session files would
# otherwise hit the limit first.
@pytest.mark.parametrize("short", [0.7, 0.1, 1])
def test_full_disk_is_a_clear_io_error(disk_job, short):
    d, job, size = disk_job
    limit = size - max(1, int(size * short)) if short < 1 else size - 1
    out = d / f"full-{limit}.h5"
    env = env_for(d, PMIX_MCA_gds="hash")
    p = subprocess.run([BIN, "eval", str(job), "--output", str(out)], env=env, capture_output=True, text=True,
                       timeout=120, preexec_fn=fsize_limited(limit))
    assert p.returncode == E_IO, f"limit {limit} of {size} bytes: exit {p.returncode}\n" + summary_lines(p.stderr)
    assert "File too large" in p.stderr and str(out) in p.stderr, summary_lines(p.stderr)
    assert complete_flag(out) in (None, 0)
    assert not os.path.exists(f"{out}.creating"), "a half-created file was left behind"


def test_full_disk_tmpfs(disk_job, tmp_path):
    """A real ENOSPC: a 40 KiB tmpfs (only where mounting is allowed: root with CAP_SYS_ADMIN)."""
    d, job, size = disk_job
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = mnt / "out.h5"
        p = run_eval(0, str(job), ["--output", str(out)], env_for(d))
        assert p.returncode == E_IO, f"exit {p.returncode}\n" + summary_lines(p.stderr)
        # the cause must be named: "unknown error" does not tell a user that the disk is full
        assert re.search(r"No space left on device|disk (is )?full", p.stderr, re.I) and str(out) in p.stderr, \
            summary_lines(p.stderr)
        assert complete_flag(out) in (None, 0)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_complete_is_written_last(disk_job):
    """Sample the file while a slowed run writes it: whenever `complete` reads 1, every shard flag is
    set and end_time is written (the finish writes the attributes, flushes, then sets complete)."""
    d, job, _ = disk_job
    out = d / "watched.h5"
    proc = start_eval(0, str(job), ["--output", str(out)], env_for(d, CLIPNEG_TEST_ROUND_DELAY_MS=100))
    seen = set()
    try:
        while proc.poll() is None:
            try:
                with h5py.File(out, "r", locking=False) as f:
                    c = int(f.attrs.get("complete", -1))
                    flags = all(f["progress"][k][()].all() for k in ("text_shards", "image_shards", "sim_shards"))
                    seen.add(c)
                    if c == 1:
                        assert flags and f.attrs["end_time"] != "", "complete = 1 before the work was done"
            except (OSError, KeyError):
                pass  # not created yet, or caught mid-write: sample again
            time.sleep(0.02)
        proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == 0 and 0 in seen, (proc.returncode, seen)
    assert complete_flag(out) == 1


def test_info_never_calls_a_file_without_complete_complete(items, tmp_path):
    for name, mutate in [("no-attr", lambda f: f.attrs.__delitem__("complete")),
                         ("zero", lambda f: f.attrs.__setitem__("complete", 0))]:
        path = tmp_path / f"{name}.h5"
        shutil.copy(items["out"], path)
        with h5py.File(path, "r+") as f:
            mutate(f)
        r = info(str(path))
        assert r.returncode != 0 and ": COMPLETE" not in r.stdout, (name, r.returncode, r.stdout[:500])
    for name, data in [("empty", b""), ("garbage", b"\x89HDF\r\n\x1a\n" + b"\xff" * 500)]:
        path = tmp_path / f"{name}.h5"
        path.write_bytes(data)
        r = info(str(path))
        assert r.returncode == E_IO and str(path) in r.stderr, (name, r.returncode, r.stderr[-500:])


# ---- a rank killed from outside --------------------------------------------------------------------
def rank_pid(launcher_pid, rank, timeout=20):
    """The pid of MPI rank `rank` among the launcher's descendants (read from /proc)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
                if f"OMPI_COMM_WORLD_RANK={rank}".encode() not in env:
                    continue
                p = int(pid)
                for _ in range(6):  # is it ours?
                    p = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
                    if p == launcher_pid:
                        return int(pid)
            except (OSError, ValueError, IndexError):
                continue
        time.sleep(0.1)
    return None


def test_rank_killed_mid_run_then_resume(tmp_path):
    require_binaries()
    ref = tmp_path / "ref"
    ref.mkdir()
    p = run_eval(2, DEMO, SMALL, env_for(ref))
    assert p.returncode == 0, summary_lines(p.stderr)
    path = str(tmp_path / "demo.h5")
    proc = start_eval(2, DEMO, SMALL, env_for(tmp_path, CLIPNEG_TEST_ROUND_DELAY_MS=200))
    try:
        assert wait_for_progress(path, "text_shards", 2), "no progress recorded in time"
        pid = rank_pid(proc.pid, 1)
        assert pid, "rank 1 not found"
        os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=90)
    finally:
        kill_group(proc)
    assert proc.returncode != 0, "the job did not fail when a rank died"
    assert complete_flag(path) == 0, "the killed run's file is not a readable, incomplete file"
    r = info(path)
    assert r.returncode == 1 and "INCOMPLETE" in r.stdout, (r.returncode, r.stdout[:300], r.stderr[-500:])
    p = run_eval(2, DEMO, SMALL, env_for(tmp_path))
    assert p.returncode == 0 and "resuming" in p.stderr, summary_lines(p.stderr)
    assert complete_flag(path) == 1
    assert_same_results(str(ref / "demo.h5"), path)
