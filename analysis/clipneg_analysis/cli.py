"""`clipneg-analysis` command line: table, tsne, prompts, hist, report, pairs, items (docs/analysis.md)."""
import argparse
import sys

from .run import Run, RunError


def _runs(paths):
    return [Run(p) for p in paths]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="clipneg-analysis", description="Tables and figures from clipneg evaluation files.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("table", help="one row per model: benchmarks side by side, and Table 1 of COCO variant runs")
    p.add_argument("files", nargs="+")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--csv", action="store_true", help="raw numbers as CSV")
    g.add_argument("--latex", action="store_true", help="a booktabs tabular")
    p.add_argument("--long", action="store_true", help="Table 1 only, one row per file and variant, every statistic")
    p.add_argument("--suite", action="store_true",
                   help="the benchmark table even for plain COCO runs (automatic when other benchmarks are given)")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")

    p = sub.add_parser("tsne", help="Figure 2: t-SNE of /tsne/X (run clipneg export-tsne first)")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--perplexity", type=float, default=30.0)
    p.add_argument("--iterations", type=int, default=500, help="optimisation iterations after early exaggeration")

    p = sub.add_parser("prompts", help="Figures 3/4: every variant's similarity for one image's captions")
    p.add_argument("file")
    p.add_argument("--image-id", type=int, help="COCO image id (default: the first image with captions)")
    p.add_argument("--caption", type=int, help="only this caption of the image (0-based)")
    p.add_argument("--images-dir", help="folder of the image files (to show the image)")
    p.add_argument("-o", "--output", required=True)

    p = sub.add_parser("hist", help="similarity distributions per variant vs the base")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True)

    p = sub.add_parser("report", help="one self-contained HTML page with all of the above")
    p.add_argument("files", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--image-id", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-tsne", action="store_true", help="skip the t-SNE (the slow part)")
    p.add_argument("--tsne-iterations", type=int, default=500)

    p = sub.add_parser("pairs", help="every caption x variant pair as CSV (clipneg_analysis.load's DataFrame)")
    p.add_argument("file")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--status", help="only rows with this status (e.g. ok)")

    # items hook (docs/items.md): per-type accuracy of item benchmarks
    p = sub.add_parser("items", help="item benchmarks (CC-Neg, multiple choice, regions): accuracy per type")
    p.add_argument("files", nargs="+")
    p.add_argument("-o", "--output", help="also draw the accuracy chart of the first file into this PNG")

    a = ap.parse_args(argv)
    try:
        if a.cmd == "table":
            from . import table

            from . import suite

            fmt = "csv" if a.csv else "latex" if a.latex else "markdown"
            runs = _runs(a.files)  # every file checked first (missing, not a clipneg file: a clear error)
            if not a.long and (a.suite or suite.is_suite(a.files)):
                # benchmarks side by side (docs/analysis.md), then the seed's Table 1 of the COCO runs
                text = suite.render(a.files, fmt)
                coco = suite.table1_paths(a.files)
                if coco and fmt != "csv":
                    head = "% Table 1\n" if fmt == "latex" else "\nTable 1 (COCO caption-variant runs):\n\n"
                    text += head + table.render([r for r in runs if r.path in coco], fmt)
            else:
                text = table.render(runs, fmt, a.long)
            if a.output:
                with open(a.output, "w", encoding="utf-8") as f:
                    f.write(text)
            else:
                sys.stdout.write(text)
        elif a.cmd == "tsne":
            from . import tsne

            _, counts = tsne.plot(Run(a.file), a.output, seed=a.seed, perplexity=a.perplexity,
                                  n_iter=a.iterations)
            from .style import KIND_LABELS

            print(f"wrote {a.output}: " + ", ".join(f"{n} {KIND_LABELS[k]}" for k, n in sorted(counts.items())),
                  file=sys.stderr)
        elif a.cmd == "prompts":
            from . import prompts

            run = Run(a.file)
            iid = a.image_id if a.image_id is not None else run.default_image_id()
            prompts.plot(run, iid, a.output, caption=a.caption, images_dir=a.images_dir)
            print(f"wrote {a.output} (image {iid})", file=sys.stderr)
        elif a.cmd == "hist":
            from . import hist

            hist.plot(Run(a.file), a.output)
            print(f"wrote {a.output}", file=sys.stderr)
        elif a.cmd == "report":
            from . import report

            report.write(_runs(a.files), a.output, image_id=a.image_id, seed=a.seed, with_tsne=not a.no_tsne,
                         tsne_iterations=a.tsne_iterations)
            print(f"wrote {a.output}", file=sys.stderr)
        elif a.cmd == "pairs":
            from .load import pairs_frame

            df = pairs_frame(a.file)
            if a.status:
                df = df[df["status"] == a.status]
            text = df.to_csv(index=False)
            if a.output:
                with open(a.output, "w", encoding="utf-8") as f:
                    f.write(text)
                print(f"wrote {a.output}: {len(df)} rows", file=sys.stderr)
            else:
                sys.stdout.write(text)
        elif a.cmd == "items":
            from . import items

            text = items.markdown(a.files)
            if not text:
                raise ValueError("no /items in these files (they were not written by a [dataset] format = items job)")
            sys.stdout.write(text)
            if a.output:
                items.plot(a.files[0], a.output)
                print(f"wrote {a.output}", file=sys.stderr)
    except (RunError, ValueError, OSError) as e:
        print(f"clipneg-analysis: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
