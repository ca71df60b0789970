"""clipneg_analysis — tables and figures from clipneg evaluation files (docs/analysis.md).

    from clipneg_analysis import Run, table, tsne, prompts, hist, report
    run = Run("out/demo.h5")
"""
from .run import Run, RunError

__version__ = "0.1.0"
__all__ = ["Run", "RunError", "__version__"]
