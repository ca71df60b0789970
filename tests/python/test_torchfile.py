"""Hostile and broken PyTorch files against the real `clipneg inspect-model` (the data-only pickle
reader, src/torchfile*.c), and `clipneg convert-model` checked with safetensors + open_clip.

Every file is made here, at test time, by torch.save / zipfile / hand-written pickle bytes; each must
be refused with exit code 4 and a message naming the file and what is wrong, and nothing in it may
run: the malicious pickles would create a marker file, which must never appear (torch.load of the
same file does create it: that proves the file really is malicious).
"""
import os
import pickle
import struct
import subprocess
import zipfile

import pytest

torch = pytest.importorskip("torch")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("CLIPNEG_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("CLIPNEG_BIN") or os.path.join(REPO, "build", "clipneg")
FIX = os.path.join(REPO, "tests", "fixtures", "torch")
HEADS = ["--vision-heads", "2", "--text-heads", "2"]  # the micro fixtures are 16 wide, 2 heads


def inspect(path, *extra):
    if not os.path.exists(BIN):
        pytest.skip(f"clipneg is not built ({BIN})")
    return subprocess.run([BIN, "inspect-model", str(path), *HEADS, *extra], capture_output=True, text=True,
                          timeout=60)


def refused(path, needle, *extra):
    r = inspect(path, *extra)
    assert r.returncode == 4, (r.returncode, r.stdout, r.stderr)
    assert str(path) in r.stderr and needle in r.stderr, r.stderr
    return r.stderr


def state_dict():
    from safetensors.torch import load_file
    return load_file(os.path.join(FIX, "ref_f32.safetensors"))


def entries(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}


def write_zip(path, files, deflate=()):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name), data,
                       compress_type=zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED)


def pickle_zip(path, payload):
    write_zip(path, {"archive/data.pkl": payload, "archive/version": b"3\n"})


class Evil:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def test_os_system_next_to_real_weights_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    sd = state_dict()
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": sd, "hook": Evil(f"touch {marker}")}, path)
    assert b"system" in entries(path)["evil/data.pkl"]
    r = inspect(path)
    assert r.returncode == 0, r.stderr  # the weights load; the payload is an inert placeholder
    assert "container: torch.save, key 'state_dict'" in r.stdout
    assert not marker.exists()
    torch.load(path)  # what a plain torch.load does with the same file
    assert marker.exists()


def test_global_eval_reduce_refused(tmp_path):
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w')".encode()
    payload = (b"\x80\x02cbuiltins\neval\nX" + struct.pack("<I", len(code)) + code + b"\x85R.")
    path = tmp_path / "eval.pt"
    pickle_zip(path, payload)
    refused(path, "no tensors found")
    assert not marker.exists()
    pickle.loads(payload)  # the same bytes in Python's pickle do run
    assert marker.exists()


def test_deep_nesting_refused(tmp_path):
    p1 = tmp_path / "marks.pt"
    pickle_zip(p1, b"\x80\x02" + b"(" * 100000 + b".")
    refused(p1, "nested MARKs")
    p2 = tmp_path / "lists.pt"  # 200,000 lists each inside the one below: no recursion anywhere
    pickle_zip(p2, b"\x80\x02" + b"]" * 200000 + b"a" * 199999 + b".")
    refused(p2, "holds a list, not a dict")

    class M:
        pass
    top = m = M()
    for _ in range(100):
        m.child = M()
        m = m.child
    p3 = tmp_path / "modules.pt"
    global _Mod
    _Mod = M
    M.__qualname__ = "_Mod"
    pickle_zip(p3, pickle.dumps(top, protocol=2))
    refused(p3, "modules nested deeper than 64")


def rewrite(src, dst, change):
    files = entries(src)
    change(files)
    write_zip(dst, files)


def test_storage_outside_archive_and_short_entry(tmp_path):
    src = tmp_path / "ok.pt"
    torch.save(state_dict(), src)
    missing = tmp_path / "missing.pt"
    rewrite(src, missing, lambda f: f.pop("ok/data/0"))
    refused(missing, "storage '0' is not in the archive")
    short = tmp_path / "short.pt"
    rewrite(src, short, lambda f: f.update({"ok/data/0": f["ok/data/0"][:8]}))
    refused(short, "storage '0' claims")


def test_zip_bomb_sizes_and_compression(tmp_path):
    src = tmp_path / "ok.pt"
    torch.save(state_dict(), src)
    blob = bytearray(src.read_bytes())
    name = b"ok/data/0"
    cd = blob.find(b"PK\x01\x02")
    while blob[cd + 46:cd + 46 + len(name)] != name:
        cd = blob.find(b"PK\x01\x02", cd + 4)
    struct.pack_into("<II", blob, cd + 20, 0xFFFFFFF0, 0xFFFFFFF0)  # compressed and unpacked size
    bomb = tmp_path / "bomb.pt"
    bomb.write_bytes(bytes(blob))
    refused(bomb, "claims 4294967280 bytes")
    comp = tmp_path / "deflated.pt"
    files = entries(src)
    write_zip(comp, files, deflate={"ok/data.pkl"})
    refused(comp, "zip entry 'ok/data.pkl' is compressed")


def test_truncated_central_directory(tmp_path):
    src = tmp_path / "ok.pt"
    torch.save(state_dict(), src)
    blob = src.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(blob[:-40])  # end record gone
    refused(cut, "no zip end-of-central-directory record")
    eocd = blob.rfind(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack_from("<II", blob, eocd + 12)
    mid = tmp_path / "mid.pt"  # the directory cut in half, the end record kept
    mid.write_bytes(blob[:cd_off + cd_size // 2] + blob[eocd:])
    refused(mid, "truncated")


def test_legacy_byteorder_ambiguous(tmp_path):
    sd = state_dict()
    legacy = tmp_path / "legacy.pt"
    torch.save(sd, legacy, _use_new_zipfile_serialization=False)
    refused(legacy, "legacy PyTorch format")
    src = tmp_path / "ok.pt"
    torch.save(sd, src)
    big = tmp_path / "big.pt"
    rewrite(src, big, lambda f: f.update({"ok/byteorder": b"big"}))
    refused(big, "byteorder 'big'")
    two = tmp_path / "two.pt"
    torch.save({"ema": sd, "weights": sd}, two)
    err = refused(two, "cannot tell which entry holds the weights")
    assert "'ema' (dict, 38 tensors)" in err and "'weights' (dict, 38 tensors)" in err
    r = inspect(two, "--state-key", "ema")
    assert r.returncode == 0 and "container: torch.save, key 'ema' (state_key)" in r.stdout


def test_folder_and_activation(tmp_path):
    import shutil
    shutil.copy(os.path.join(FIX, "conclip.pt"), tmp_path / "conclip_vit_b32.pt")
    r = inspect(tmp_path)
    assert r.returncode == 0, r.stderr
    assert "activation: QuickGELU (PyTorch file with no config beside it" in r.stdout
    r = inspect(tmp_path, "--gelu")
    assert "activation: GELU (forced" in r.stdout
    assert "QuickGELU" in inspect(tmp_path, "--quick-gelu").stdout


def test_convert_model(tmp_path):
    """convert-model's output, read back by safetensors + open_clip (strict load), gives open_clip's
    embeddings; the tensors are the stored ones, unchanged."""
    from safetensors.torch import load_file
    import json
    from open_clip.model import CLIP
    out = tmp_path / "conv"
    out.mkdir()
    r = subprocess.run([BIN, "convert-model", os.path.join(FIX, "openclip_train.pt"),
                        str(out / "open_clip_model.safetensors"), *HEADS], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = load_file(out / "open_clip_model.safetensors")
    ref = load_file(os.path.join(FIX, "ref_f32.safetensors"))
    assert set(got) == set(ref)
    for k in ref:
        assert torch.equal(got[k], ref[k]), k
    cfg = json.loads((out / "open_clip_config.json").read_text())["model_cfg"]
    model = CLIP(**cfg).eval()
    model.load_state_dict(got, strict=True)
    exp = load_file(os.path.join(FIX, "expected.safetensors"))
    with torch.no_grad():
        assert torch.allclose(model.encode_text(exp["tokens"]), exp["text_embeds"], atol=1e-6)
        assert torch.allclose(model.encode_image(exp["pixels"]), exp["image_embeds"], atol=1e-6)
    r = inspect(out)  # and clipneg reads it back with the config's heads and activation
    assert r.returncode == 0 and "activation: QuickGELU (from the config file)" in r.stdout


@pytest.mark.parametrize("name,weights,config,layout", [
    ("vit-tiny-openclip", "open_clip_pytorch_model.bin", "open_clip_config.json", "open_clip"),
    ("vit-tiny-hf", "pytorch_model.bin", "config.json", "hf"),
])
def test_pytorch_bin_with_config_beside(tmp_path, name, weights, config, layout):
    """A hub folder's PyTorch copy (torch.save of the same tensors) reads like its safetensors copy,
    config included: vit-tiny uses exact GELU, so the config must win over the QuickGELU default."""
    import shutil
    from safetensors.torch import load_file
    src = os.path.join(REPO, "tests", "fixtures", "models", name)
    st_name = "open_clip_model.safetensors" if layout == "open_clip" else "model.safetensors"
    torch.save(load_file(os.path.join(src, st_name)), tmp_path / weights)
    shutil.copy(os.path.join(src, config), tmp_path / config)
    got = subprocess.run([BIN, "inspect-model", str(tmp_path)], capture_output=True, text=True, timeout=60)
    ref = subprocess.run([BIN, "inspect-model", src], capture_output=True, text=True, timeout=60)
    assert got.returncode == 0 and ref.returncode == 0, got.stderr + ref.stderr
    keep = lambda out: [l for l in out.splitlines()  # noqa: E731
                        if l.split(":")[0] not in ("weights", "config", "container", "load_seconds")]
    assert keep(got.stdout) == keep(ref.stdout)
    assert f"layout: {layout}" in got.stdout and "quick_gelu: 0" in got.stdout
    assert "activation: GELU (from the config file)" in got.stdout
