"""Zero-shot classification (docs/classification.md): the numbers of /stats/classify, or, when
`clipneg reduce` has not run, the same computed here from the per-image results in /classify
(top-1: the first of /classify/topk is the label; top-5: the label is among them; ties: images
whose top cosine is shared by several classes; negated top-1: the negated classifier's answer is
the label). h5py/numpy only.
"""
import h5py
import numpy as np

FIELDS = ("n", "n_valid", "n_classes", "top1", "top5", "ties", "negated_top1", "accuracy_top1", "accuracy_top5",
          "accuracy_negated_top1", "chance")


def has_classify(path):
    with h5py.File(path, "r") as f:
        return "classify" in f and "topk" in f["classify"]


def compute(label, status, topk, n_max, negated_top1, n_classes):
    ok = np.asarray(status) == 1
    label = np.asarray(label)
    v = int(ok.sum())
    top1 = int((ok & (topk[:, 0] == label)).sum())
    top5 = int((ok & (topk == label[:, None]).any(axis=1)).sum())
    neg = int((ok & (negated_top1 == label)).sum())
    nan = float("nan")
    return {"n": len(label), "n_valid": v, "n_classes": int(n_classes), "top1": top1, "top5": top5,
            "ties": int((ok & (np.asarray(n_max) > 1)).sum()), "negated_top1": neg,
            "accuracy_top1": top1 / v if v else nan, "accuracy_top5": top5 / v if v else nan,
            "accuracy_negated_top1": neg / v if v else nan, "chance": 1.0 / n_classes if n_classes else nan}


def stats(path):
    with h5py.File(path, "r") as f:
        if "stats" in f and "classify" in f["stats"]:
            g = f["stats/classify"]
            return {k: np.asarray(g[k][()]).reshape(-1)[0].item() for k in FIELDS}  # scalars ([1] before 2026-12)
        g = f["classify"]
        return compute(g["label"][()], g["status"][()], g["topk"][()], g["n_max"][()], g["negated_top1"][()],
                       len(g["classnames"]))
