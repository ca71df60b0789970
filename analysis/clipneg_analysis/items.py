"""Item benchmarks (docs/items.md): per-type accuracy of multiple-choice items, CC-Neg pairs and
region items from a file written by an `[dataset] format = items` job.

`stats(path)` returns one dict per item type plus "all": from /stats/items when `clipneg reduce`
ran, else computed here from /items/sim with the same definitions (valid = every candidate
similarity is a number; correct = the answer scores strictly highest, ties count as wrong; or, for
files whose /items attribute tie_rule is "first_max" (NegBench MCQ, NegRefCOCOg; docs/benchmarks.md),
the answer is argmax's first maximum).
`markdown(paths)` and `html_rows(paths)` give the table, `plot(path)` a bar chart of accuracy
against chance per type. Everything reads with h5py/numpy only.
"""
import h5py
import numpy as np

from .style import RANDOM_BANNER, plt, save

FIELDS = ("n", "n_valid", "n_correct", "n_ties", "accuracy", "mean_margin", "chance", "pair_n", "pair_accuracy")


def has_items(path):
    with h5py.File(path, "r") as f:
        return "items" in f and "sim" in f["items"]


def compute(sim, n_cand, answer, type_index, type_names, first_max=False):
    """Per-type statistics from the stored similarities (numpy; the reference for the tests too).
    first_max: the tie rule "first_max" (correct when np.argmax, the first maximum, is the answer)."""
    sim = np.asarray(sim, dtype=np.float32)
    N, K = sim.shape
    cols = np.arange(K)[None, :]
    in_item = cols < np.asarray(n_cand)[:, None]
    valid = np.where(in_item, np.isfinite(sim), True).all(axis=1)
    ans = sim[np.arange(N), answer]
    others = np.where(in_item & (cols != np.asarray(answer)[:, None]), sim, -np.inf)
    best_other = others.max(axis=1)
    correct = valid & (ans > best_other)
    if first_max:
        correct = valid & (np.where(in_item, sim, -np.inf).argmax(axis=1) == np.asarray(answer))
    ties = valid & (ans == best_other)
    margin = np.where(valid, ans.astype(np.float64) - best_other.astype(np.float64), 0.0)
    pair = valid & (np.asarray(n_cand) == 2)
    rows = []
    labels = list(type_names) + ["all"]
    for t, name in enumerate(labels):
        sel = np.ones(N, bool) if name == "all" and t == len(type_names) else (np.asarray(type_index) == t)
        v = int((sel & valid).sum())
        pn = int((sel & pair).sum())
        rows.append({
            "type": name, "n": int(sel.sum()), "n_valid": v, "n_correct": int((sel & correct).sum()),
            "n_ties": int((sel & ties).sum()),
            "accuracy": (sel & correct).sum() / v if v else float("nan"),
            "mean_margin": margin[sel & valid].sum() / v if v else float("nan"),
            "chance": (1.0 / np.asarray(n_cand)[sel & valid]).sum() / v if v else float("nan"),
            "pair_n": pn, "pair_accuracy": (sel & pair & correct).sum() / pn if pn else float("nan"),
        })
    return rows


def stats(path):
    """(rows, source): source "stats" (/stats/items) or "computed" (from /items/sim)."""
    with h5py.File(path, "r") as f:
        names = [s.decode() if isinstance(s, bytes) else s for s in f["items/type_names"][()]]
        if "stats" in f and "items" in f["stats"]:
            g = f["stats/items"]
            labels = str(g.attrs["labels"]).split(",")
            rows = []
            for i, name in enumerate(labels):
                rows.append({k: (g[k][i].item() if k in g else float("nan")) for k in FIELDS})
                rows[-1]["type"] = name
            return rows, "stats"
        it = f["items"]
        first_max = str(it.attrs.get("tie_rule", "strict")) == "first_max"
        return compute(it["sim"][()], it["n_candidates"][()], it["answer"][()], it["type"][()], names,
                       first_max), "computed"


def _pct(x):
    return "-" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


def table_rows(paths):
    header = ["file", "item type", "items", "valid", "accuracy", "ties", "mean margin", "chance",
              "2-candidate items (CC-Neg: original > negation)"]
    rows = []
    for p in paths:
        if not has_items(p):
            continue
        with h5py.File(p, "r") as f:
            random = int(f.attrs.get("random_weights", 0)) == 1
        for r in stats(p)[0]:
            pair = f"{_pct(r['pair_accuracy'])} of {int(r['pair_n'])}" if r["pair_n"] else "-"
            mm = "-" if not np.isfinite(r["mean_margin"]) else f"{r['mean_margin']:+.4f}"
            rows.append([p + (" †" if random else ""), r["type"], str(int(r["n"])), str(int(r["n_valid"])),
                         _pct(r["accuracy"]), str(int(r["n_ties"])), mm, _pct(r["chance"]), pair])
    return header, rows


def markdown(paths):
    header, rows = table_rows(paths)
    if not rows:
        return ""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    if any(r[0].endswith(" †") for r in rows):
        out.append(f"\n† {RANDOM_BANNER}.")
    return "\n".join(out) + "\n"


def html_rows(paths):
    """(header, rows) in the (text, None) cell format of report._table_html."""
    header, rows = table_rows(paths)
    return header, [[(c, None) for c in r] for r in rows]


def plot(path, out=None):
    rows, _ = stats(path)
    with h5py.File(path, "r") as f:
        random = int(f.attrs.get("random_weights", 0)) == 1
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2.5, 3.6))
    x = np.arange(len(rows))
    acc = [r["accuracy"] if np.isfinite(r["accuracy"]) else 0 for r in rows]
    ax.bar(x, acc, color="#1f77b4", label="accuracy")
    ax.scatter(x, [r["chance"] for r in rows], color="#d62728", marker="_", s=600, linewidths=2, label="chance", zorder=3)
    ax.set_xticks(x, [f"{r['type']}\n(n={int(r['n_valid'])})" for r in rows], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("correct candidate scores highest")
    ax.legend(fontsize=8)
    ax.set_title("item accuracy per type" + (f" — {RANDOM_BANNER}" if random else ""), fontsize=9,
                 color="#c00000" if random else "black")
    fig.tight_layout()
    return save(fig, out), rows
