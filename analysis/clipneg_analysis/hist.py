"""`clipneg-analysis hist RUN.h5 -o fig.png`: similarity distributions, one panel per variant
against the positive base (400-bin histograms of /stats, shown as densities on 100 bins)."""
import math

import numpy as np

from .run import POLARITY
from .style import POLARITY_COLORS, plt, save, title


def rebin(h, factor=4):
    h = np.asarray(h, dtype=np.float64)
    return h.reshape(-1, factor).sum(axis=1)


def plot(run, out=None, bins_factor=4):
    s = run.stats
    H = np.asarray(s["variants/hist"])
    base = run.base
    others = [v for v in range(run.V) if v != base]
    if base < 0:
        others = list(range(run.V))
    n = max(len(others), 1)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.2 * rows + 0.9), squeeze=False, sharex=True)
    nb = H.shape[1] // bins_factor
    edges = np.linspace(-1, 1, nb + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    # show the populated range only (cosines of CLIP embeddings rarely leave [-0.2, 0.5])
    used = np.nonzero(H.sum(axis=0))[0]
    if used.size:
        lo = -1 + 2 * used[0] / H.shape[1] - 0.02
        hi = -1 + 2 * (used[-1] + 1) / H.shape[1] + 0.02
    else:
        lo, hi = -1, 1
    width = edges[1] - edges[0]

    def density(v):
        h = rebin(H[v], bins_factor)
        return h / max(h.sum(), 1) / width

    panels = 0
    for i, v in enumerate(others):
        ax = axes[i // cols][i % cols]
        if base >= 0:
            ax.fill_between(centres, density(base), step="mid", color=POLARITY_COLORS[0], alpha=0.35,
                            label=f"{run.names[base]} (base)")
            ax.axvline(s["variants/mean"][base], color=POLARITY_COLORS[0], linewidth=1)
        col = POLARITY_COLORS[int(run.polarity[v])]
        ax.step(centres, density(v), where="mid", color=col, linewidth=1.4,
                label=f"{run.names[v]} ({POLARITY[int(run.polarity[v])]})")
        ax.axvline(s["variants/mean"][v], color=col, linewidth=1, linestyle="--")
        sub = f"n={int(s['variants/count'][v])}, mean {s['variants/mean'][v]:.3f}"
        if s["contrast/n_pairs"][v] >= 0:
            sub += f"; flips {int(s['contrast/n_flips'][v])}/{int(s['contrast/n_pairs'][v])}"
        ax.set_title(sub, fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
        ax.set_xlim(lo, hi)
        panels += 1
    for i in range(len(others), rows * cols):
        axes[i // cols][i % cols].set_axis_off()
    for ax in axes[-1]:
        ax.set_xlabel("cosine similarity (image, text)")
    top = title(fig, run, "Similarity distributions: each variant vs the positive base")
    fig.tight_layout(rect=(0, 0, 1, 1 - top))
    return save(fig, out), panels
