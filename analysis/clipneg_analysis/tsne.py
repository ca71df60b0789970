"""`clipneg-analysis tsne RUN.h5 -o fig.png`: Figure 2, openTSNE on /tsne/X (the PCA coordinates that
`clipneg export-tsne` wrote), images / positive captions / negative captions in three colours."""
import numpy as np

from .run import RunError
from .style import KIND_COLORS, KIND_LABELS, plt, save, title


def embed(run, seed=0, perplexity=30.0, n_jobs=1, n_iter=500):
    """2-D openTSNE embedding of /tsne/X (deterministic for a seed). Returns (Y [N, 2], kind [N])."""
    if run.tsne is None:
        raise RunError(f"{run.path}: no /tsne: run `clipneg export-tsne {run.path}` first")
    from openTSNE import TSNE

    X = np.asarray(run.tsne["X"], dtype=np.float64)
    kind = np.asarray(run.tsne["kind"], dtype=int)
    if len(X) < 4:
        raise RunError(f"{run.path}: /tsne has {len(X)} points: too few for a t-SNE")
    perplexity = float(min(perplexity, (len(X) - 1) / 3.0))  # openTSNE needs 3 * perplexity < N
    # Barnes-Hut is the faster gradient below ~10k points; FFT interpolation scales better above.
    method = "bh" if len(X) < 10000 else "fft"
    Y = TSNE(n_components=2, perplexity=perplexity, random_state=seed, n_jobs=n_jobs, negative_gradient_method=method,
             n_iter=n_iter, early_exaggeration_iter=min(250, max(n_iter // 2, 1)), verbose=False).fit(X)
    return np.asarray(Y), kind


def plot(run, out=None, seed=0, perplexity=30.0, Y=None, n_iter=500):
    """Draw the figure (to `out`, or return PNG bytes). Returns (result, counts per kind)."""
    if Y is None:
        Y, kind = embed(run, seed, perplexity, n_iter=n_iter)
    else:
        kind = np.asarray(run.tsne["kind"], dtype=int)
    fig, ax = plt.subplots(figsize=(7.5, 7))
    counts = {}
    for k in (1, 2, 3, 0):  # images last: on top, the fewest points
        sel = kind == k
        if not sel.any():
            continue
        counts[k] = int(sel.sum())
        ax.scatter(Y[sel, 0], Y[sel, 1], s=9 if k else 16, c=KIND_COLORS[k], marker="o" if k else "s",
                   linewidths=0, label=f"{KIND_LABELS[k]} ({counts[k]})")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", markerscale=2, framealpha=0.9)
    k = run.tsne["X"].shape[1]
    ax.set_xlabel(f"t-SNE of PCA-{k} coordinates (openTSNE, seed {seed}); variants: "
                  f"{getattr(run, 'tsne_attrs', {}).get('variants', '?')}", fontsize=8)
    top = title(fig, run, "Image and caption embeddings")
    fig.tight_layout(rect=(0, 0, 1, 1 - top))
    return save(fig, out), counts
