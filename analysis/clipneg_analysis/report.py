"""`clipneg-analysis report RUN.h5... -o report.html`: one self-contained HTML page (figures embedded
as base64 PNG): Table 1 across the files, then per file its provenance, per-variant statistics,
the caption x variant pairs by status (clipneg_analysis.load), histograms, t-SNE and the prompt chart of one image. A file with random_weights = 1 gets a loud
banner at the top of the page and of its section."""
import base64
import datetime
import html
import os

from . import hist, items, prompts, suite, table, tsne
from .load import pairs_frame, status_rows
from .run import RunError
from .style import RANDOM_BANNER

CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.banner { background: #c00000; color: white; font-size: 1.4em; font-weight: bold; padding: 0.8em 1em;
          margin: 1em 0; border: 4px solid #700000; }
.note { color: #666; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
"""


def _table_html(header, rows):
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(c[0])}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _img(png, alt):
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def build(runs, image_id=None, seed=0, with_tsne=True, tsne_iterations=500):
    """The HTML text for a list of Run objects."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8"><title>clipneg report</title>',
             f"<style>{CSS}</style></head><body>", "<h1>clipneg report</h1>",
             f'<p class="note">{len(runs)} file(s); generated {datetime.datetime.now().isoformat(timespec="seconds")}'
             " by clipneg-analysis.</p>"]
    random = [r for r in runs if r.random_weights]
    if random:
        parts.append(f'<div class="banner">⚠ {RANDOM_BANNER}: {", ".join(html.escape(r.path) for r in random)} '
                     "ran a randomly initialised test model (attribute random_weights = 1).</div>")
    table1 = runs
    paths = [r.path for r in runs]
    if suite.is_suite(paths):  # several benchmarks: side by side per model (docs/analysis.md)
        parts.append("<h2>Benchmarks per model</h2>")
        parts.append(suite.html(*suite.build(paths)))
        parts.append(f'<p class="note">{html.escape(suite.NOTE)}</p>')
        coco = set(suite.table1_paths(paths))
        table1 = [r for r in runs if r.path in coco]
    if table1:
        parts.append("<h2>Table 1 — mean similarity, flips and negation accuracy per model</h2>")
        parts.append(_table_html(*table.wide_rows(table1)))
        parts.append('<p class="note">flips: captions whose negated variant is more similar to the image than the '
                     "base caption (n/N, share); accuracy: share where the base is more similar (ties count for "
                     "neither). Definitions: docs/reduce.md.</p>")
    for r in runs:
        parts.append(f"<h2>{html.escape(r.label)} — {html.escape(os.path.basename(r.path))}</h2>")
        if r.random_weights:
            parts.append(f'<div class="banner">⚠ {RANDOM_BANNER} (random_weights = 1)</div>')
        if not r.complete:
            parts.append('<p class="banner">The evaluation is incomplete (complete != 1).</p>')
        prov = r.provenance()
        parts.append(_table_html(["provenance", "value"], [[(k, None), (str(v), None)] for k, v in prov.items()]))
        parts.append("<h3>Statistics per variant</h3>")
        parts.append(_table_html(*table.long_rows([r])))
        if r.stats_source == "computed":
            parts.append('<p class="note">No /stats in this file: basic statistics computed from '
                         "/similarity/paired (run <code>clipneg reduce</code> for CIs and retrieval).</p>")
        elif r.stats.get("retrieval/i2t_r1") is not None:
            parts.append(f'<p class="note">image→text R@1/5/10 (base): '
                         + " / ".join(f"{100 * float(r.stats[f'retrieval/i2t_r{k}']):.1f}" for k in (1, 5, 10))
                         + f" % over {int(r.stats['retrieval/i2t_n'])} images; bootstrap {r.stats['bootstrap']} "
                         f"resamples; retrieval from {html.escape(r.stats['retrieval_source'])}.</p>")
        parts.append("<h3>Pairs by status</h3>")
        parts.append(_table_html(*status_rows(pairs_frame(r.path))))
        parts.append('<p class="note">caption x variant pairs (clipneg_analysis.load): "ok" have a similarity; '
                     "the others say why not.</p>")
        parts.append("<h3>Similarity distributions</h3>")
        parts.append(_img(hist.plot(r)[0], "histograms"))
        parts.append("<h3>t-SNE of image and caption embeddings</h3>")
        if r.tsne is None:
            parts.append(f'<p class="note">No /tsne in this file: run <code>clipneg export-tsne '
                         f"{html.escape(r.path)}</code> to add it.</p>")
        elif not with_tsne:
            parts.append('<p class="note">t-SNE skipped (--no-tsne).</p>')
        else:
            parts.append(_img(tsne.plot(r, seed=seed, n_iter=tsne_iterations)[0], "t-SNE"))
        parts.append("<h3>Every variant of one image's captions</h3>")
        try:
            iid = image_id if image_id is not None and (r.image_id == image_id).any() else r.default_image_id()
            parts.append(_img(prompts.plot(r, iid)[0], f"prompts of image {iid}"))
        except RunError as e:
            parts.append(f'<p class="note">{html.escape(str(e))}</p>')
    # items hook (docs/items.md): files written by a `[dataset] format = items` job
    with_items = [r.path for r in runs if items.has_items(r.path)]
    if with_items:
        parts.append("<h2>Item benchmarks — CC-Neg pairs, multiple choice, regions</h2>")
        parts.append(_table_html(*items.html_rows(with_items)))
        parts.append('<p class="note">accuracy: the correct candidate scores strictly highest (ties count as '
                     "wrong) over valid items; chance: mean 1/candidates. Definitions: docs/items.md.</p>")
        for p in with_items:
            parts.append(_img(items.plot(p)[0], f"item accuracy of {p}"))
    parts.append("</body></html>")
    return "\n".join(parts)


def write(runs, out, image_id=None, seed=0, with_tsne=True, tsne_iterations=500):
    text = build(runs, image_id, seed, with_tsne, tsne_iterations)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    return out
