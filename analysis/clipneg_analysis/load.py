"""`clipneg_analysis.load(path)`: a clipneg evaluation file as pandas and xarray objects.

    from clipneg_analysis import load
    res = load("out/demo.h5")
    res.pairs      # pandas.DataFrame, one row per caption x variant
    res.dataset    # xarray.Dataset: similarity[caption, variant] with named, labelled axes

`pairs` columns: caption_id, caption_index, image_id, image_index, image_file, caption, variant,
polarity ("positive"/"negative"/"other"), text (the rendered variant), similarity (cosine, NaN when
a side failed), status ("ok", or why the similarity is missing: "no subject found", "empty
caption", "no negative", "pending", "image missing file", "image decode error", "image refused",
"image pending"), text_status and image_status (the codes of /texts/status and /images/status).

`dataset` is opened with xarray's h5netcdf engine from the file's own dimension scales (format
version 2, docs/hdf5-schema.md): /similarity's `paired` as `similarity` (and `full` [image, text]
when stored, read lazily), plus per-caption and per-variant coordinates. Nothing is renamed but
`paired` -> `similarity` and /captions' `text` -> `caption_text`.
"""
from typing import NamedTuple

import h5py
import numpy as np

from .run import POLARITY, RunError

TEXT_STATUS = {0: "ok", 1: "no subject found", 2: "empty caption", 3: "no negative", -1: "pending"}
IMAGE_STATUS = {0: "image pending", 1: "ok", 2: "image missing file", 3: "image decode error", 4: "image refused"}


class Results(NamedTuple):
    pairs: "pandas.DataFrame"  # noqa: F821 (pandas is imported lazily)
    dataset: "xarray.Dataset"  # noqa: F821


def _strings(dset):
    return np.array(dset.asstr()[()], dtype=object)


def pairs_frame(path):
    """The DataFrame of `load` (h5py only: works for format versions 1 and 2)."""
    import pandas as pd

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") not in ("clipneg-eval", b"clipneg-eval"):
            raise RunError(f"{path}: not a clipneg evaluation file (root attribute format != clipneg-eval)")
        names = _strings(f["variants/name"])
        polarity = f["variants/polarity"][()].astype(int)
        cap_id = f["captions/id"][()]
        cap_img = f["captions/image_index"][()].astype(np.int64)
        cap_text = _strings(f["captions/text"])
        img_id = f["images/id"][()]
        img_file = _strings(f["images/file_name"])
        img_status = f["images/status"][()].astype(int)
        paired = f["similarity/paired"][()]
        text = _strings(f["texts/text"])
        text_status = f["texts/status"][()].astype(int)
    n_cap, V = paired.shape
    if paired.shape != (len(cap_id), len(names)) or len(text) != n_cap * V:
        raise RunError(f"{path}: /similarity/paired {paired.shape} does not match /captions and /variants")
    c = np.repeat(np.arange(n_cap), V)  # caption-major: row t = c * V + v, as /texts
    v = np.tile(np.arange(V), n_cap)
    i = cap_img[c]
    ist = img_status[i]
    status = np.where(text_status == 0, np.where(ist == 1, "ok", [IMAGE_STATUS.get(s, "?") for s in ist]),
                      [TEXT_STATUS.get(s, "?") for s in text_status])
    return pd.DataFrame({
        "caption_id": cap_id[c], "caption_index": c, "image_id": img_id[i], "image_index": i,
        "image_file": img_file[i], "caption": cap_text[c], "variant": names[v],
        "polarity": pd.Categorical([POLARITY[p] for p in polarity[v]], categories=list(POLARITY.values())),
        "text": text, "similarity": paired.reshape(-1), "status": status,
        "text_status": text_status.astype(np.int8), "image_status": ist.astype(np.int8),
    })


def dataset_view(path):
    """The xarray.Dataset of `load`: needs the dimension scales of format version 2."""
    import xarray as xr

    with h5py.File(path, "r") as f:
        version = int(f.attrs.get("format_version", 0))
    if version < 2:
        raise RunError(f"{path}: format_version {version} has no named axes (written by an older clipneg); "
                       "use pairs_frame(path), or re-run the job")
    opened = [xr.open_dataset(path, group=g, engine="h5netcdf") for g in ("similarity", "captions", "variants",
                                                                         "images")]
    sim, caps, variants, images = opened
    ds = sim.rename({"paired": "similarity"})
    ds = ds.assign_coords(
        caption_text=caps["text"].load(), caption_image_index=caps["image_index"].load(),
        image_id=("caption", images["id"].values[caps["image_index"].values]),
        polarity=variants["polarity"].load(), template=variants["template"].load())
    ds.attrs.update({k: (v.decode() if isinstance(v, bytes) else v) for k, v in _root_attrs(path).items()})
    for o in opened[1:]:
        o.close()
    return ds


def _root_attrs(path):
    keep = ("format_version", "model_arch", "model_path", "random_weights", "base_variant", "backend", "precision",
            "complete", "clipneg_version", "git_commit")
    with h5py.File(path, "r") as f:
        return {k: f.attrs[k] for k in keep if k in f.attrs}


def status_rows(pairs):
    """Header and rows ((display, raw) cells, as table.wide_rows) of the pairs per variant and status:
    how many similarities each variant has, and why the others are missing."""
    import pandas as pd

    counts = pd.crosstab(pairs["variant"], pairs["status"]).reindex(pd.unique(pairs["variant"]))
    cols = ["ok"] + sorted(c for c in counts.columns if c != "ok") if "ok" in counts.columns else list(counts.columns)
    header = ["variant"] + cols
    rows = [[(str(v), v)] + [(str(int(counts.at[v, c])), int(counts.at[v, c])) for c in cols] for v in counts.index]
    return header, rows


def load(path):
    """Results(pairs: pandas.DataFrame, dataset: xarray.Dataset) of one evaluation file."""
    return Results(pairs_frame(path), dataset_view(path))
