"""Many models, many benchmarks, one table (docs/analysis.md "Benchmark table"): one row per model,
one column group per benchmark — the shape of NegationCLIP's Table 2 (ImageNet top-1, COCO R@k,
VALSE existence, NegRefCOCOg) and of NegBench (MCQ, retrieval).

Every file is one run of one job. From the file alone:
  * model     the model's name from the provenance: the folder (or file) name of `model_path`
              (a random-weights model gets a †); two different checkpoints with one name are told
              apart by their weights' hash (`model_sha256`);
  * benchmark the job's `[dataset] format` (from the stored job text); two datasets of one format
              (two classification sets, say) are told apart by the dataset's file name;
  * numbers   whatever statistics the file holds, generically:
              /stats/classify -> top-1, top-5, ties, negated-prompt top-1 (docs/classification.md);
              /stats/items    -> accuracy of the row "all", of every item type (MCQ question types,
                                 SugarCrepe splits, ...) when there are several, and the ties;
              otherwise       -> text->image R@1/5/10 of the base variant and image->text R@1/5/10
                                 from /stats/retrieval (COCO-style retrieval runs).
Files without /stats get the item and classification numbers computed from their per-item data
(the same definitions); retrieval then shows "–" (run `clipneg reduce`).
"""
import csv
import io
import math
import os
import re

import h5py
import numpy as np

from . import classify, items
from .run import _str, job_section

# Benchmarks in the order the papers' tables put them; unknown formats follow in order of appearance.
ORDER = ["classification", "coco", "jsonl", "valse-existence", "negrefcocog", "negbench-mcq", "negbench-retrieval",
         "ccneg", "sugarcrepe", "items"]
DATASET_KEYS = ("path", "manifest", "captions")  # the [dataset] key naming the dataset, by preference


def job_dataset(job_text):
    """(format, dataset file name without extension) from a stored job text."""
    vals = job_section(job_text, "dataset")
    fmt = vals.get("format", "coco") or "coco"
    name = next((vals[k] for k in DATASET_KEYS if vals.get(k)), "")
    stem = os.path.basename(name.rstrip("/"))
    return fmt, os.path.splitext(stem)[0] if "." in stem else stem


def _model_name(model_path):
    base = os.path.basename(str(model_path).rstrip("/")) or "?"
    return base[: -len(".safetensors")] if base.endswith(".safetensors") else base


def _retrieval(f):
    """[(column, value)] of R@k from /stats/retrieval (t2i at the base variant, i2t), or "–" values."""
    base = int(f["stats"].attrs.get("base_index", 0)) if "stats" in f else 0
    g = f["stats/retrieval"] if "stats" in f and "retrieval" in f["stats"] else None
    cols = []
    for d in ("t2i", "i2t"):
        for k in (1, 5, 10):
            x = float("nan")
            if g is not None and f"{d}_r{k}" in g:
                v = g[f"{d}_r{k}"][()]
                x = float(v[base] if np.ndim(v) else v)
            cols.append((f"{d} R@{k}", x, "pct"))
    return cols


def summary(path):
    """One file: {"model", "model_key", "random", "format", "dataset", "metrics": [(name, value, kind)]}."""
    with h5py.File(path, "r") as f:
        a = {k: (_str(v) if isinstance(v, (bytes, str)) else v) for k, v in f.attrs.items()}
        fmt, dataset = job_dataset(a.get("job_text", ""))
        has_classify, has_items = "classify" in f, "items" in f and "sim" in f["items"]
        metrics = [] if has_classify or has_items else _retrieval(f)
    if has_classify:
        s = classify.stats(path)
        metrics = [("top-1", s["accuracy_top1"], "pct"), ("top-5", s["accuracy_top5"], "pct"),
                   ("ties", s["ties"], "int"), ("negated top-1", s["accuracy_negated_top1"], "pct")]
    elif has_items:
        rows, _ = items.stats(path)
        total = rows[-1]
        metrics = [("accuracy", total["accuracy"], "pct")]
        if len(rows) > 2:  # several types: each one's accuracy (the "all" row alone otherwise)
            metrics += [(r["type"], r["accuracy"], "pct") for r in rows[:-1]]
        metrics.append(("ties", total["n_ties"], "int"))
    name = _model_name(a.get("model_path", a.get("model_arch", "?")))
    return {"path": path, "model": name, "model_key": (name, a.get("model_sha256", "")),
            "random": int(a.get("random_weights", 0)) == 1, "format": fmt, "dataset": dataset, "metrics": metrics}


def _cell(x, kind):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.1f}" if kind == "pct" else str(int(x))


def build(paths):
    """(groups, rows): groups = [(benchmark label, [metric names])]; rows = [(model label, {(bench, metric):
    (display, raw)})], one per model, in order of first appearance."""
    sums = [summary(p) for p in paths]
    # benchmark keys: format, plus the dataset name when one format has several datasets
    per_fmt = {}
    for s in sums:
        per_fmt.setdefault(s["format"], [])
        if s["dataset"] not in per_fmt[s["format"]]:
            per_fmt[s["format"]].append(s["dataset"])
    for s in sums:
        s["bench"] = s["format"] if len(per_fmt[s["format"]]) == 1 else f"{s['format']}: {s['dataset']}"
    rank = {f: i for i, f in enumerate(ORDER)}
    benches = sorted(dict.fromkeys(s["bench"] for s in sums),
                     key=lambda b: (rank.get(b.split(":")[0], len(ORDER)), [s["bench"] for s in sums].index(b)))
    groups = []
    for b in benches:
        names = []
        for s in sums:
            if s["bench"] == b:
                names += [m[0] for m in s["metrics"] if m[0] not in names]
        groups.append((b, names))
    # model rows; a name shared by different weights gets a short hash
    keys = list(dict.fromkeys(s["model_key"] for s in sums))
    label = {}
    for k in keys:
        same = [q for q in keys if q[0] == k[0]]
        h = re.search(r"=([0-9a-f]{8})", k[1])
        label[k] = k[0] if len(same) == 1 or not h else f"{k[0]} ({h.group(1)})"
    rows = []
    for k in keys:
        cells, random = {}, False
        for s in sums:
            if s["model_key"] != k:
                continue
            random |= s["random"]
            for name, x, kind in s["metrics"]:
                cells[(s["bench"], name)] = (_cell(x, kind), x)
        rows.append((label[k] + (" †" if random else ""), cells))
    return groups, rows


def flat(groups, rows):
    """Header and rows in table.py's (display, raw) cell format: "benchmark: metric" columns."""
    header = ["model"] + [f"{b}: {m}" for b, ms in groups for m in ms]
    out = []
    for lab, cells in rows:
        out.append([(lab, lab)] + [cells.get((b, m), ("–", None)) for b, ms in groups for m in ms])
    return header, out


def html(groups, rows):
    """An HTML table with a grouped header (one cell per benchmark spanning its metrics)."""
    import html as h
    top = '<tr><th rowspan="2">model</th>' + "".join(f'<th colspan="{len(ms)}">{h.escape(b)}</th>' for b, ms in groups)
    sub = "<tr>" + "".join(f"<th>{h.escape(m)}</th>" for _, ms in groups for m in ms) + "</tr>"
    body = []
    for lab, cells in rows:
        body.append("<tr><td>" + h.escape(lab) + "</td>" + "".join(
            f"<td>{h.escape(cells.get((b, m), ('–', None))[0])}</td>" for b, ms in groups for m in ms) + "</tr>")
    return "<table>" + top + "</tr>" + sub + "".join(body) + "</table>"


def csv_text(groups, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model"] + [f"{b}: {m}" for b, ms in groups for m in ms])
    for lab, cells in rows:
        vals = []
        for b, ms in groups:
            for m in ms:
                x = cells.get((b, m), (None, None))[1]
                vals.append("" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))
                            if isinstance(x, float) else str(x))
        w.writerow([lab] + vals)
    return buf.getvalue()


NOTE = ("Percentages; one row per model (the model folder's name), one column group per benchmark (the job's "
        "[dataset] format). classification: zero-shot top-1/top-5, ties at the top (first maximum wins), and "
        "top-1 with negated prompts (\"a photo of no {c}.\"). Item benchmarks: accuracy overall and per item "
        "type, ties counted. Retrieval: R@k of the base variant. † random weights: these numbers mean nothing.")


def is_suite(paths):
    """True when the files are more than plain COCO/JSONL variant runs (then the benchmark table applies)."""
    for p in paths:
        s = summary(p)
        if s["format"] not in ("coco", "jsonl"):
            return True
    return False


def table1_paths(paths):
    """The files the seed's Table 1 applies to: COCO/JSONL runs of caption variants."""
    return [p for p in paths if summary(p)["format"] in ("coco", "jsonl")]


def render(paths, fmt="markdown"):
    """The benchmark table as markdown (default), csv or latex."""
    from . import table
    groups, rows = build(paths)
    if fmt == "csv":
        return csv_text(groups, rows)
    header, cells = flat(groups, rows)
    if fmt == "latex":
        return table.latex(header, cells) + f"% {NOTE}\n"
    return table.markdown(header, cells) + "\n" + NOTE + "\n"
