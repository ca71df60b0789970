"""Colours and figure helpers shared by the plots (matplotlib with the Agg backend: no display)."""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# one colour per kind of point / polarity (tests look for these exact RGB values in the PNGs)
KIND_COLORS = {0: "#1f77b4", 1: "#2ca02c", 2: "#d62728", 3: "#7f7f7f"}   # image, positive, negative, other
KIND_LABELS = {0: "images", 1: "positive captions", 2: "negative captions", 3: "other texts"}
POLARITY_COLORS = {0: KIND_COLORS[1], 1: KIND_COLORS[2], 2: KIND_COLORS[3]}
RANDOM_BANNER = "RANDOM WEIGHTS — these numbers mean nothing"


def title(fig, run, what):
    """Figure title: what it shows, the model; a red line when the weights are random. Returns the
    height (figure fraction) the title takes at the top, for layouts."""
    text = f"{what} — {run.label}"
    h = fig.get_figheight()
    if run.random_weights:
        fig.text(0.5, 1 - 0.05 / h, RANDOM_BANNER, ha="center", va="top", color="white", fontsize=11, weight="bold",
                 bbox=dict(facecolor="#c00000", edgecolor="none", pad=4))
        fig.suptitle(text, y=1 - 0.42 / h, va="top")
        return 0.8 / h
    fig.suptitle(text, y=1 - 0.08 / h, va="top")
    return 0.45 / h


def save(fig, out=None, dpi=110):
    """Write the figure to `out` (a path) or return the PNG bytes when out is None."""
    if out is None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        return buf.getvalue()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
