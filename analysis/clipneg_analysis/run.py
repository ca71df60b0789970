"""Run: everything the figures need from one clipneg evaluation file (docs/hdf5-schema.md).

Small arrays are loaded eagerly; embeddings are never loaded (the t-SNE uses /tsne/X, written by
`clipneg export-tsne`). Statistics come from /stats (written by `clipneg reduce`); a file without
/stats gets the basic ones computed here from /similarity/paired with the same definitions
(docs/reduce.md) and `stats_source == "computed"` (no bootstrap CI, no retrieval).
"""
import os
import re

import h5py
import numpy as np

POLARITY = {0: "positive", 1: "negative", 2: "other"}
HIST_BINS = 400


class RunError(Exception):
    """The file is not a usable clipneg evaluation file (message names the file and the reason)."""


def _str(x):
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)


def _strings(dset):
    return [_str(s) for s in dset[()]]


def job_section(job_text, section):
    """{key: value} of one [section] of a stored job file (values without comments, stripped)."""
    current, vals = None, {}
    for line in job_text.splitlines():
        s = line.strip()
        m = re.match(r"\[(.*)\]", s)
        if m:
            current = m.group(1).strip()
            continue
        m = re.match(r"([A-Za-z_]+)\s*=\s*([^;#]*)", s)
        if current == section and m:
            vals[m.group(1)] = m.group(2).strip()
    return vals


def base_from_job_text(job_text):
    """`[variants] base_variant = NAME` from a stored job file, else None (as clipneg reduce does)."""
    return job_section(job_text, "variants").get("base_variant") or None


class Run:
    def __init__(self, path):
        self.path = path
        if not os.path.exists(path):
            raise RunError(f"{path}: no such file")
        try:
            f = h5py.File(path, "r")
        except OSError as e:
            raise RunError(f"{path}: not an HDF5 file ({e})") from None
        with f:
            if _str(f.attrs.get("format", "")) != "clipneg-eval":
                raise RunError(f"{path}: not a clipneg evaluation file (root attribute format != clipneg-eval)")
            for need in ("variants/name", "variants/polarity", "captions/image_index", "images/id",
                         "similarity/paired"):
                if need not in f:
                    raise RunError(f"{path}: missing /{need}")
            self.attrs = {k: (_str(v) if isinstance(v, (bytes, str)) else v) for k, v in f.attrs.items()}
            self.names = _strings(f["variants/name"])
            self.templates = _strings(f["variants/template"]) if "variants/template" in f else [""] * len(self.names)
            self.polarity = f["variants/polarity"][()].astype(int)
            self.image_id = f["images/id"][()]
            self.image_file = _strings(f["images/file_name"]) if "images/file_name" in f else None
            self.image_status = f["images/status"][()] if "images/status" in f else None
            self.first_caption = f["images/first_caption"][()] if "images/first_caption" in f else None
            self.n_captions = f["images/n_captions"][()] if "images/n_captions" in f else None
            self.caption_image = f["captions/image_index"][()]
            self.caption_text = _strings(f["captions/text"]) if "captions/text" in f else None
            self.paired = f["similarity/paired"][()].astype(np.float32)
            V = len(self.names)
            if self.paired.shape != (len(self.caption_image), V):
                raise RunError(f"{path}: /similarity/paired has shape {self.paired.shape}, expected "
                               f"({len(self.caption_image)}, {V})")
            self.text_status = f["texts/status"][()] if "texts/status" in f else None
            self._has_texts = "texts/text" in f
            self.stats = self._read_stats(f) if "stats" in f else None
            self.tsne = {k: f["tsne"][k][()] for k in f["tsne"]} if "tsne" in f else None
            if self.tsne is not None:
                self.tsne_attrs = {k: (_str(v) if isinstance(v, (bytes, str)) else v) for k, v in f["tsne"].attrs.items()}
        if self.stats is None:
            self.stats = self._compute_stats()
            self.stats_source = "computed"
        else:
            self.stats_source = "file"

    # ---- provenance ----------------------------------------------------------------------------
    @property
    def V(self):
        return len(self.names)

    @property
    def model_arch(self):
        return self.attrs.get("model_arch", "?")

    @property
    def random_weights(self):
        return int(self.attrs.get("random_weights", 0)) == 1

    @property
    def complete(self):
        return int(self.attrs.get("complete", 0)) == 1

    @property
    def label(self):
        """Short name for tables: the architecture's name (model_arch up to its first ':')."""
        return self.model_arch.split(":")[0].strip() or "?"

    @property
    def base(self):
        return int(self.stats["base_index"])

    def negatives(self):
        return [v for v in range(self.V) if self.polarity[v] == 1 and v != self.base]

    # ---- statistics ----------------------------------------------------------------------------
    def _read_stats(self, f):
        s = {}
        for grp in ("variants", "contrast", "retrieval"):
            if f"stats/{grp}" in f:
                for k, d in f[f"stats/{grp}"].items():
                    s[f"{grp}/{k}"] = d[()]
        a = f["stats"].attrs
        s["base_index"] = int(a.get("base_index", 0))
        s["base_variant"] = _str(a.get("base_variant", ""))
        s["bootstrap"] = int(a.get("bootstrap", 0))
        s["retrieval_source"] = _str(f["stats/retrieval"].attrs.get("source", "none")) if "stats/retrieval" in f else "none"
        return s

    def _default_base(self):
        name = base_from_job_text(self.attrs.get("job_text", ""))
        if name in self.names:
            return self.names.index(name)
        pos = [v for v in range(self.V) if self.polarity[v] == 0]
        return pos[0] if pos else -1

    def _compute_stats(self):
        """The basic /stats numbers from /similarity/paired (definitions of docs/reduce.md)."""
        P, V = self.paired, self.V
        base = self._default_base()
        s = {"base_index": base, "base_variant": self.names[base] if base >= 0 else "", "bootstrap": 0,
             "retrieval_source": "none"}
        nan = np.full(V, np.nan)
        keys_f = ["mean", "std", "min", "max", "median"]
        for k in keys_f:
            s[f"variants/{k}"] = nan.copy()
        s["variants/count"] = np.zeros(V, dtype=np.int64)
        s["variants/hist"] = np.zeros((V, HIST_BINS), dtype=np.int64)
        for k in ("n_pairs", "n_flips", "n_wins", "n_ties"):
            s[f"contrast/{k}"] = np.full(V, -1, dtype=np.int64)
        for k in ("flip_share", "neg_accuracy", "mean_diff", "std_diff", "cohens_d", "ci_low", "ci_high"):
            s[f"contrast/{k}"] = nan.copy()
        for k in ("t2i_r1", "t2i_r5", "t2i_r10"):
            s[f"retrieval/{k}"] = nan.copy()
        for v in range(V):
            x = P[:, v][~np.isnan(P[:, v])].astype(np.float64)
            s["variants/count"][v] = x.size
            if x.size:
                s["variants/mean"][v], s["variants/min"][v], s["variants/max"][v] = x.mean(), x.min(), x.max()
                s["variants/median"][v] = np.median(x)
                s["variants/std"][v] = x.std(ddof=1) if x.size > 1 else np.nan
                idx = np.clip(np.floor(((x + 1.0) * 0.5) * HIST_BINS), 0, HIST_BINS - 1).astype(int)
                s["variants/hist"][v] = np.bincount(idx, minlength=HIST_BINS)
            if base < 0 or v == base or self.polarity[v] != 1:
                continue
            ok = ~np.isnan(P[:, v]) & ~np.isnan(P[:, base])
            b, n = P[ok, base], P[ok, v]
            d = n.astype(np.float64) - b.astype(np.float64)
            s["contrast/n_pairs"][v] = ok.sum()
            s["contrast/n_flips"][v] = np.sum(n > b)
            s["contrast/n_wins"][v] = np.sum(b > n)
            s["contrast/n_ties"][v] = np.sum(n == b)
            if ok.sum():
                s["contrast/flip_share"][v] = np.mean(n > b)
                s["contrast/neg_accuracy"][v] = np.mean(b > n)
                s["contrast/mean_diff"][v] = d.mean()
            if ok.sum() > 1:
                s["contrast/std_diff"][v] = d.std(ddof=1)
                if s["contrast/std_diff"][v] > 0:
                    s["contrast/cohens_d"][v] = d.mean() / d.std(ddof=1)
        return s

    # ---- captions and texts of one image ---------------------------------------------------------
    def image_row(self, image_id):
        rows = np.nonzero(self.image_id == int(image_id))[0]
        if rows.size == 0:
            raise RunError(f"{self.path}: no image with id {image_id}")
        return int(rows[0])

    def captions_of(self, row):
        if self.first_caption is not None:
            first, n = int(self.first_caption[row]), int(self.n_captions[row])
            return list(range(first, first + n))
        return [int(c) for c in np.nonzero(self.caption_image == row)[0]]

    def texts(self, rows):
        """Rendered strings of text rows (t = c * V + v)."""
        if not self._has_texts:
            return [""] * len(rows)
        with h5py.File(self.path, "r") as f:
            d = f["texts/text"]
            return [_str(d[int(t)]) for t in rows]

    def default_image_id(self):
        """The first image with captions and a valid similarity for every variant (for reports)."""
        for row in range(len(self.image_id)):
            caps = self.captions_of(row)
            if caps and np.all(~np.isnan(self.paired[caps[0]])):
                return int(self.image_id[row])
        for row in range(len(self.image_id)):
            if self.captions_of(row):
                return int(self.image_id[row])
        raise RunError(f"{self.path}: no image has captions")

    def provenance(self):
        keys = ("model_arch", "model_path", "model_sha256", "backend", "precision", "ranks", "clipneg_version",
                "git_commit", "start_time", "end_time", "complete", "random_weights", "job_sha256")
        return {k: self.attrs[k] for k in keys if k in self.attrs}
