"""`clipneg-analysis table RUN.h5...`: the seed report's Table 1 across backbones.

Wide form (default): one row per file (model architecture from the provenance), columns = mean
similarity of every variant, then flips n/N (share) and negation accuracy of every negative variant.
Long form (--long): one row per file and variant with every statistic of /stats.
Formats: markdown (default), --csv (raw numbers), --latex (booktabs tabular).
"""
import csv
import io
import math

from .run import POLARITY


def _fmt(x, spec):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _pct(x):
    return "–" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def variant_union(runs):
    """Variant names in order of first appearance, with their polarity."""
    names, pol = [], {}
    for r in runs:
        for v, n in enumerate(r.names):
            if n not in pol:
                names.append(n)
                pol[n] = int(r.polarity[v])
    return names, pol


def wide_rows(runs):
    """Header and rows (lists of (display string, raw value)) of the wide table."""
    names, pol = variant_union(runs)
    negs = [n for n in names if pol[n] == 1]
    header = ["model", "captions"] + [f"sim {n}" for n in names]
    header += [f"flips {n}" for n in negs] + [f"acc {n}" for n in negs]
    rows = []
    for r in runs:
        s = r.stats
        label = r.label + (" †" if r.random_weights else "")
        row = [(label, r.model_arch), (str(len(r.caption_image)), len(r.caption_image))]
        idx = {n: v for v, n in enumerate(r.names)}
        for n in names:
            v = idx.get(n)
            x = float(s["variants/mean"][v]) if v is not None else float("nan")
            row.append((_fmt(x, ".4f"), x))
        for n in negs:
            v = idx.get(n)
            if v is None or s["contrast/n_pairs"][v] < 0:
                row.append(("–", None))
                continue
            f, p, sh = int(s["contrast/n_flips"][v]), int(s["contrast/n_pairs"][v]), float(s["contrast/flip_share"][v])
            row.append((f"{f}/{p} ({_pct(sh)})", (f, p, sh)))
        for n in negs:
            v = idx.get(n)
            x = float(s["contrast/neg_accuracy"][v]) if v is not None else float("nan")
            row.append((_pct(x), x))
        rows.append(row)
    return header, rows


def long_rows(runs):
    header = ["model", "variant", "polarity", "n", "mean ± std", "flips n/N (share)", "neg. accuracy",
              "mean diff [95% CI]", "d", "t2i R@1/5/10 (%)"]
    rows = []
    for r in runs:
        s = r.stats
        for v, name in enumerate(r.names):
            mean, std = float(s["variants/mean"][v]), float(s["variants/std"][v])
            np_ = int(s["contrast/n_pairs"][v])
            if np_ >= 0:
                flips = f"{int(s['contrast/n_flips'][v])}/{np_} ({_pct(float(s['contrast/flip_share'][v]))})"
                acc = _pct(float(s["contrast/neg_accuracy"][v]))
                md, lo, hi = (float(s[f"contrast/{k}"][v]) for k in ("mean_diff", "ci_low", "ci_high"))
                diff = f"{md:+.4f}" + ("" if math.isnan(lo) else f" [{lo:+.4f}, {hi:+.4f}]")
                d = _fmt(float(s["contrast/cohens_d"][v]), ".2f")
            else:
                flips = "(base)" if v == r.base else "–"
                acc = diff = d = "–"
            r1 = s.get("retrieval/t2i_r1")
            ret = "–"
            if r1 is not None and not math.isnan(float(r1[v])):
                ret = " / ".join(f"{100 * float(s[f'retrieval/t2i_r{k}'][v]):.1f}" for k in (1, 5, 10))
            label = r.label + (" †" if r.random_weights else "")
            rows.append([(label, r.model_arch), (name, name), (POLARITY[int(r.polarity[v])], None),
                         (str(int(s["variants/count"][v])), int(s["variants/count"][v])),
                         (f"{_fmt(mean, '.4f')} ± {_fmt(std, '.4f')}", mean), (flips, None), (acc, None),
                         (diff, None), (d, None), (ret, None)])
    return header, rows


def markdown(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(c[0] for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def latex(header, rows):
    esc = lambda s: (s.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%")
                     .replace("&", r"\&").replace("#", r"\#").replace("±", r"$\pm$").replace("†", r"$^\dagger$")
                     .replace("–", "--"))
    out = [r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
           " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
    out += [" & ".join(esc(c[0]) for c in row) + r" \\" for row in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def csv_text(runs, long=False):
    """Raw numbers, one row per file (wide) or per file and variant (long)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if long:
        keys = ["count", "mean", "std", "min", "max", "q05", "q25", "median", "q75", "q95"]
        ckeys = ["n_pairs", "n_flips", "n_wins", "n_ties", "flip_share", "neg_accuracy", "mean_diff", "std_diff",
                 "cohens_d", "ci_low", "ci_high"]
        rkeys = ["t2i_r1", "t2i_r5", "t2i_r10"]
        w.writerow(["file", "model", "random_weights", "variant", "polarity"] + keys + ckeys + rkeys)
        for r in runs:
            s = r.stats
            for v, name in enumerate(r.names):
                vals = [s.get(f"variants/{k}", [float("nan")] * r.V)[v] for k in keys]
                cvals = [s[f"contrast/{k}"][v] for k in ckeys]
                rvals = [s.get(f"retrieval/{k}", [float("nan")] * r.V)[v] for k in rkeys]
                w.writerow([r.path, r.model_arch, int(r.random_weights), name, POLARITY[int(r.polarity[v])]]
                           + [_raw(x) for x in vals + cvals + rvals])
        return buf.getvalue()
    names, pol = variant_union(runs)
    negs = [n for n in names if pol[n] == 1]
    w.writerow(["file", "model", "random_weights", "captions"] + [f"mean_{n}" for n in names]
               + [f"{k}_{n}" for n in negs for k in ("n_flips", "n_pairs", "flip_share", "neg_accuracy")])
    for r in runs:
        s = r.stats
        idx = {n: v for v, n in enumerate(r.names)}
        row = [r.path, r.model_arch, int(r.random_weights), len(r.caption_image)]
        row += [_raw(s["variants/mean"][idx[n]]) if n in idx else "" for n in names]
        for n in negs:
            v = idx.get(n)
            row += ["" if v is None else _raw(s[f"contrast/{k}"][v]) for k in ("n_flips", "n_pairs", "flip_share", "neg_accuracy")]
        w.writerow(row)
    return buf.getvalue()


def _raw(x):
    x = x.item() if hasattr(x, "item") else x
    if isinstance(x, float) and math.isnan(x):
        return ""
    return repr(x) if isinstance(x, float) else str(x)


def render(runs, fmt="markdown", long=False):
    if fmt == "csv":
        return csv_text(runs, long)
    header, rows = long_rows(runs) if long else wide_rows(runs)
    text = latex(header, rows) if fmt == "latex" else markdown(header, rows)
    notes = []
    if any(r.random_weights for r in runs):
        notes.append("† random weights: these numbers mean nothing.")
    if any(r.stats_source == "computed" for r in runs):
        notes.append("Files without /stats: basic statistics computed from /similarity/paired "
                     "(run `clipneg reduce` for CIs and retrieval).")
    if fmt == "markdown" and notes:
        text += "\n" + "\n".join(notes) + "\n"
    elif fmt == "latex" and notes:
        text += "".join(f"% {n}\n" for n in notes)
    return text
