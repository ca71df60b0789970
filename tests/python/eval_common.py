"""Shared helpers of the evaluator tests (tests/python/test_eval_*.py): run `clipneg eval` under
mpirun (or alone), read a whole output file with h5py, compare two files dataset by dataset.

Everything is read with h5py/numpy — never with clipneg — so the tests check the file a user gets.
"""
import os
import re
import shutil
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("CLIPNEG_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("CLIPNEG_SHARED") or os.path.normpath(os.path.join(REPO, "..", "shared"))
BIN = os.environ.get("CLIPNEG_BIN") or os.path.join(REPO, "build", "clipneg")
MPIEXEC = os.environ.get("CLIPNEG_MPIEXEC") or shutil.which("mpirun") or shutil.which("mpiexec")
DEMO = os.path.join(REPO, "jobs", "demo.ini")
COCO = os.path.join(SHARED, "data", "coco-mini")
BPE = os.path.join(SHARED, "data", "clip-bpe", "bpe_simple_vocab_16e6.txt.gz")
TINY_MODEL = os.path.join(REPO, "tests", "fixtures", "models", "vit-tiny-openclip")

# The demo job, made small and cut into many shards so that every rank count has several rounds,
# partial shards and ranks without a shard in the last round: 12 images (60 captions, 420 texts)
# -> 14 text shards of 32 (the last has 4 rows), 4 image shards of 3, batches smaller than shards
# with a short last batch (7 texts, 2 images), 7 similarity tiles of 64 texts (the last has 36).
# run.threads = 1: OpenBLAS's sgemm rounds differently for different thread counts (its threads
# split the matrix into different edge tiles), so bitwise equality across rank counts is a promise
# for the same number of threads per rank (docs/eval.md); the auto default gives cores / ranks.
SMALL = ["--set", "dataset.max_images=12", "--set", "run.text_shard=32", "--set", "run.image_shard=3",
         "--set", "run.image_batch=2", "--set", "run.text_batch=7", "--set", "run.tile_texts=64",
         "--set", "run.threads=1"]

# Root attributes that describe the run rather than the results.
RUN_ATTRS = {"start_time", "end_time", "ranks", "threads"}


def require_binaries():
    if not os.path.exists(BIN):
        pytest.skip(f"clipneg is not built ({BIN})")
    if not MPIEXEC:
        pytest.skip("no mpirun/mpiexec on PATH")
    if not os.path.isdir(COCO) or not os.path.exists(BPE):
        pytest.skip(f"shared data missing under {SHARED}")


def env_for(out_dir, **extra):
    env = dict(os.environ)
    env.update({
        "CLIPNEG_OUT": str(out_dir), "CLIPNEG_DATA": COCO, "CLIPNEG_BPE": BPE, "CLIPNEG_MODEL": TINY_MODEL,
        "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
        # every HDF5 transfer must really be collective (a silent fallback would fail the run)
        "CLIPNEG_H5_CHECK_COLLECTIVE": "1",
    })
    for k in ("CLIPNEG_TEST_KILL_AFTER_ROUNDS", "CLIPNEG_TEST_SIGNAL_AFTER_ROUNDS", "CLIPNEG_TEST_ROUND_DELAY_MS",
              "OMP_NUM_THREADS"):
        env.pop(k, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def eval_cmd(np_, job, *args):
    """np_ = 0: the singleton (no launcher), else mpirun -n np_."""
    base = [BIN, "eval", job, *args]
    return base if np_ == 0 else [MPIEXEC, "-n", str(np_), *base]


def run_eval(np_, job, args, env, timeout=180):
    t0 = time.time()
    p = subprocess.run(eval_cmd(np_, job, *args), env=env, capture_output=True, text=True, timeout=timeout)
    p.wall = time.time() - t0
    return p


def start_eval(np_, job, args, env):
    return subprocess.Popen(eval_cmd(np_, job, *args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def run_command(command, args, ranks=1, check=True, timeout=300):
    """`clipneg COMMAND ARGS...` (reduce, export-tsne, ...), alone or under mpirun -n ranks, one thread
    per rank; check=True asserts exit code 0 and shows both streams when it is not."""
    cmd = [BIN, command] + [str(a) for a in args]
    if ranks > 1:
        cmd = [MPIEXEC, "-n", str(ranks)] + cmd
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"{cmd} -> {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
    return p


def wait_for_progress(path, phase="text_shards", min_done=1, timeout=60):
    """Poll the file until /progress/<phase> has min_done flags set (a copy is read: the writer has it open)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            with h5py.File(path, "r", locking=False) as f:
                if int(f["progress"][phase][()].sum()) >= min_done:
                    return True
        except (OSError, KeyError):
            pass
        time.sleep(0.1)
    return False


def read_file(path):
    """Every dataset (strings decoded) and every root attribute of an output file."""
    data = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                if obj.dtype.kind == "O":  # (2-D string tables such as /items/text: the shape, then row-major)
                    v = obj.asstr()[()]
                    data[name] = list(v) if v.ndim == 1 else [v.shape] + list(v.ravel())
                else:
                    data[name] = obj[()]
        f.visititems(visit)
        attrs = {k: f.attrs[k] for k in f.attrs}
    return data, attrs


def assert_same_datasets(path_a, path_b, skip=()):
    """Bitwise equality of every dataset (those whose name starts with a prefix in `skip` are left
    out); returns both files' root attributes."""
    a, aa = read_file(path_a)
    b, ba = read_file(path_b)
    names = sorted(n for n in a if not n.startswith(tuple(skip)))
    assert names == sorted(n for n in b if not n.startswith(tuple(skip))), \
        f"dataset lists differ: {sorted(set(a) ^ set(b))}"
    for name in names:
        x, y = a[name], b[name]
        if isinstance(x, list):
            assert x == y, f"{name}: strings differ"
        else:
            assert x.dtype == y.dtype and x.shape == y.shape, f"{name}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
            if x.tobytes() != y.tobytes():
                diff = np.nanmax(np.abs(x.astype(np.float64) - y.astype(np.float64)))
                raise AssertionError(f"{name}: values differ (max |diff| {diff:.3g})")
    return aa, ba


def assert_same_results(path_a, path_b):
    """Bitwise equality of every dataset and of every root attribute except the run's own."""
    aa, ba = assert_same_datasets(path_a, path_b)
    for k in set(aa) | set(ba):
        if k in RUN_ATTRS:
            continue
        assert str(aa.get(k)) == str(ba.get(k)), f"attribute {k}: {aa.get(k)!r} vs {ba.get(k)!r}"


def info(path):
    return subprocess.run([BIN, "info", path], capture_output=True, text=True, timeout=60)


def kill_group(p):
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)


def tiny_open_clip():
    """The committed tiny ViT fixture as open_clip's own model (the independent reference), with its
    eval preprocessing: (torch, open_clip, model, preprocess). Skips when torch/open_clip are missing."""
    torch = pytest.importorskip("torch", reason="torch is not installed (scripts/install-deps.sh)")
    open_clip = pytest.importorskip("open_clip", reason="open_clip is not installed (scripts/install-deps.sh)")
    from open_clip.transform import image_transform
    from safetensors.torch import load_file
    import json
    cfg = json.load(open(os.path.join(TINY_MODEL, "open_clip_config.json")))["model_cfg"]
    model = open_clip.model.CLIP(**cfg)
    model.load_state_dict(load_file(os.path.join(TINY_MODEL, "open_clip_model.safetensors")))
    model.eval()
    return torch, open_clip, model, image_transform(cfg["vision_cfg"]["image_size"], is_train=False)


def reference_run(tmp_path_factory, np_):
    """An uninterrupted run of the small demo job on np_ ranks: the file interrupted runs must equal."""
    require_binaries()
    out = tmp_path_factory.mktemp("reference")
    p = run_eval(np_, DEMO, SMALL, env_for(out))
    assert p.returncode == 0, p.stderr[-3000:]
    return str(out / "demo.h5")


# ---- self-describing files (docs/hdf5-schema.md): xarray's view and h5dump's -----------------------------
def xr_open(path, group):
    """A group as xarray's h5netcdf engine opens it (an independent reader: named dims come from
    HDF5 dimension scales). Skips when xarray/h5netcdf are missing."""
    xr = pytest.importorskip("xarray", reason="xarray is not installed (scripts/install-deps.sh: python3-xarray)")
    pytest.importorskip("h5netcdf", reason="h5netcdf is not installed (scripts/install-deps.sh: python3-h5netcdf)")
    return xr.open_dataset(path, group=group, engine="h5netcdf")


def h5_strings(f, name):
    return list(f[name].asstr()[()])


def h5dump_datasets(path):
    """{dataset path: attribute names} parsed from `h5dump -A` by indentation (3 spaces a level; the
    attributes' own text may hold braces). A dataset reached again through another hard link is
    printed as HARDLINK "<first path>": it gets that object's attributes."""
    if not shutil.which("h5dump"):
        pytest.skip("h5dump is not installed (hdf5-tools)")
    text = subprocess.run(["h5dump", "-A", path], capture_output=True, text=True, check=True).stdout
    out, links, level, last = {}, {}, {}, None
    for line in text.splitlines():
        m = re.match(r'^( *)(GROUP|DATASET|ATTRIBUTE) "([^"]*)" \{', line)
        if not m:
            h = re.match(r'^ *HARDLINK "([^"]*)"', line)
            if h and last:
                links[last] = h.group(1)
            continue
        indent, kind, name = len(m.group(1)), m.group(2), m.group(3)
        owner = level.get(indent - 3)
        if kind == "ATTRIBUTE":
            if owner and owner[0] == "DATASET":
                out[owner[1]].add(name)
            continue
        full = "/" if name == "/" else owner[1].rstrip("/") + "/" + name
        level[indent] = (kind, full)
        last = full if kind == "DATASET" else None
        if kind == "DATASET":
            out[full] = set()
    for alias, target in links.items():
        out[alias] = out[target]
    return out


def assert_every_dataset_described(path):
    """Every dataset (h5py's walk) has a non-empty `description` and a `units` attribute, and h5dump
    -A lists it with both. Returns the dataset paths."""
    dumped = h5dump_datasets(path)
    with h5py.File(path, "r") as f:
        datasets = []
        f.visititems(lambda n, o: datasets.append("/" + n) if isinstance(o, h5py.Dataset) else None)
        for name in datasets:
            d = f[name]
            assert str(d.attrs.get("description", "")).strip(), f"{name}: no description"
            assert "units" in d.attrs, f"{name}: no units"
    for name in datasets:  # every dataset, as h5dump shows it
        assert name in dumped, f"h5dump does not list {name}"
        assert {"description", "units"} <= dumped[name], f"h5dump -A: {name} has {sorted(dumped[name])}"
    return datasets
