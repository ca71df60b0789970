# bench.cmake — the published benchmark files (docs/benchmarks.md): tests/test_bench.c is a plain unit
# test (default glob); tests/python/test_bench.py launches `clipneg eval` under mpirun (1, 2, 3 ranks,
# a killed run that resumes), so it gets the launcher and the "mpi" label.
clipneg_py_test(${CMAKE_CURRENT_SOURCE_DIR}/python/test_bench.py LABELS python mpi TIMEOUT 600)
set_property(TEST py_bench APPEND PROPERTY ENVIRONMENT "CLIPNEG_MPIEXEC=${MPIEXEC_EXECUTABLE}")
