"""`clipneg-analysis prompts RUN.h5 --image-id ID -o fig.png`: Figures 3/4, the similarity of every
variant of one image's captions (horizontal bars labelled with the rendered texts), beside the image
itself when its file can be found."""
import os
import re
import textwrap

import numpy as np

from .run import POLARITY
from .style import POLARITY_COLORS, plt, save, title

TEXT_STATUS = {1: "no subject found", 2: "empty caption", 3: "no negative", -1: "pending"}


def find_image(run, row, images_dir=None):
    """Path of image `row` when it exists: --images-dir, the job's [dataset] images (absolute or
    relative to the current folder, ${VAR:-default} expanded), or $CLIPNEG_SHARED/data/coco-mini/val2017."""
    if run.image_file is None:
        return None
    dirs = [images_dir] if images_dir else []
    m = re.search(r"^\s*images\s*=\s*([^;#\n]*)", run.attrs.get("job_text", ""), re.M)
    if m:
        value = re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda g: os.environ.get(g.group(1), g.group(2) or ""),
                       m.group(1).strip())
        dirs.append(value)
    if os.environ.get("CLIPNEG_SHARED"):
        dirs.append(os.path.join(os.environ["CLIPNEG_SHARED"], "data", "coco-mini", "val2017"))
    for d in dirs:
        p = os.path.join(d, run.image_file[row])
        if d and os.path.isfile(p):
            return p
    return None


def collect(run, image_id, caption=None):
    """Rows of the chart: dicts with caption (index in /captions), variant, text, sim, status."""
    row = run.image_row(image_id)
    caps = run.captions_of(row)
    if caption is not None:
        if not 0 <= caption < len(caps):
            raise ValueError(f"image {image_id} has {len(caps)} captions; --caption must be in [0, {len(caps)})")
        caps = [caps[caption]]
    V = run.V
    trows = [c * V + v for c in caps for v in range(V)]
    texts = run.texts(trows)
    out = []
    for i, t in enumerate(trows):
        c, v = divmod(t, V)
        st = int(run.text_status[t]) if run.text_status is not None else 0
        out.append({"caption": c, "variant": v, "name": run.names[v], "polarity": int(run.polarity[v]),
                    "text": texts[i], "sim": float(run.paired[c, v]), "status": st})
    return row, out


def plot(run, image_id, out=None, caption=None, images_dir=None, wrap=70):
    row, items = collect(run, image_id, caption)
    path = find_image(run, row, images_dir)
    n = len(items)
    top_in, bottom_in = (1.5 if run.random_weights else 1.1), 0.7   # title (+ banner), x label
    height = 0.34 * n + top_in + bottom_in
    fig = plt.figure(figsize=(14, max(height, 4.5)))
    H = fig.get_figheight()
    bottom, axh = bottom_in / H, 1 - (top_in + bottom_in) / H
    if path:
        from PIL import Image

        side = min(axh, 3.2 / H)
        axi = fig.add_axes([0.01, bottom + axh - side, 0.22, side])
        with Image.open(path) as im:
            axi.imshow(im.convert("RGB"))
        axi.set_axis_off()
        axi.set_title(os.path.basename(path), fontsize=8)
    ax = fig.add_axes([0.52, bottom, 0.45, axh] if path else [0.4, bottom, 0.57, axh])
    y, labels, ys, gap = 0.0, [], [], 0.6
    last_c = None
    for it in items:
        if last_c is not None and it["caption"] != last_c:
            y += gap
        last_c = it["caption"]
        ys.append(y)
        if it["status"] != 0 or np.isnan(it["sim"]):
            label = f"[{it['name']}: not rendered — {TEXT_STATUS.get(it['status'], 'failed')}]"
        else:
            label = textwrap.shorten(it["text"], width=wrap * 2, placeholder=" …")
            label = "\n".join(textwrap.wrap(label, wrap)[:2])
        labels.append(label)
        y += 1
    ys = np.array(ys)
    sims = np.array([it["sim"] for it in items])
    colors = [POLARITY_COLORS[it["polarity"]] for it in items]
    ok = ~np.isnan(sims)
    ax.barh(ys[ok], sims[ok], color=np.array(colors, dtype=object)[ok], height=0.8)
    for yy, s, it in zip(ys, sims, items):
        if not np.isnan(s):
            ax.text(s, yy, f" {s:.3f}" if s >= 0 else f"{s:.3f} ", va="center", ha="left" if s >= 0 else "right",
                    fontsize=7)
        if it["variant"] == run.base:
            ax.axhspan(yy - 0.45, yy + 0.45, color="#f0f0f0", zorder=0)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=7.5)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.6)
    lo, hi = np.nanmin(np.append(sims, 0)), np.nanmax(np.append(sims, 0))
    pad = 0.15 * max(hi - lo, 1e-3)
    ax.set_xlim(lo - pad if lo < 0 else 0, hi + pad)
    ax.set_xlabel("cosine similarity with the image")
    handles = [plt.Rectangle((0, 0), 1, 1, color=POLARITY_COLORS[p]) for p in (0, 1, 2)]
    ax.legend(handles, [POLARITY[p] for p in (0, 1, 2)], loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3,
              fontsize=8, frameon=False)
    title(fig, run, f"Image {image_id}: every variant of its captions (base: {run.names[run.base]}, shaded)")
    return save(fig, out), items
