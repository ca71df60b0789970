# reduce.cmake — tests of `clipneg reduce`, `clipneg export-tsne` and the analysis package (owner: reduce).
#  * reduce_stats     (C, label unit)  moments/quantiles/bootstrap/top-k/PCA pieces vs direct computations
#  * py_reduce        /stats vs numpy on synthetic files and the real demo output; 1 vs 3 ranks bit-identical
#  * py_tsne_export   /tsne PCA vs scikit-learn; sampling; 1 vs 3 ranks bit-identical
#  * py_analysis      tables and figures (PNG checked for content), the HTML report
# The first two run `mpirun -np 3` (label mpi). py_reduce / py_tsne_export / py_analysis share one real
# `clipneg eval jobs/demo.ini` output made once per build folder (build/test-data/demo-eval.h5).
clipneg_c_test(reduce_stats TIMEOUT 120)
clipneg_py_test(${CMAKE_CURRENT_SOURCE_DIR}/python/test_reduce.py LABELS "python;mpi" TIMEOUT 900)
clipneg_py_test(${CMAKE_CURRENT_SOURCE_DIR}/python/test_tsne_export.py LABELS "python;mpi" TIMEOUT 900)
clipneg_py_test(${CMAKE_CURRENT_SOURCE_DIR}/python/test_analysis.py LABELS "python" TIMEOUT 900)
