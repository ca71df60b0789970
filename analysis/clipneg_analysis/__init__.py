"""clipneg_analysis — tables and figures from clipneg evaluation files (docs/analysis.md).

    from clipneg_analysis import Run, load, table, tsne, prompts, hist, report
    run = Run("out/demo.h5")
    pairs, ds = load("out/demo.h5")   # pandas.DataFrame (caption x variant rows), xarray.Dataset
"""
from .load import Results, load
from .run import Run, RunError

__version__ = "0.1.0"
__all__ = ["Run", "RunError", "Results", "load", "__version__"]
