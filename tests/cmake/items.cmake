# items.cmake — the item benchmarks (docs/items.md): tests/test_items.c is a plain unit test
# (registered by the default glob); tests/python/test_items.py launches `clipneg eval` under mpirun
# (1 and 2 ranks, and a killed run that resumes), so it gets the launcher and the "mpi" label.
clipneg_py_test(${CMAKE_CURRENT_SOURCE_DIR}/python/test_items.py LABELS python mpi TIMEOUT 600)
set_property(TEST py_items APPEND PROPERTY ENVIRONMENT "CLIPNEG_MPIEXEC=${MPIEXEC_EXECUTABLE}")
# tests/test_items_stream.c (default glob) reads a generated manifest back in windows;
# tests/python/test_items_stream.py checks a streamed run's /items against Python's json (1 vs 3 ranks).
clipneg_py_test(${CMAKE_CURRENT_SOURCE_DIR}/python/test_items_stream.py LABELS python mpi TIMEOUT 600)
set_property(TEST py_items_stream APPEND PROPERTY ENVIRONMENT "CLIPNEG_MPIEXEC=${MPIEXEC_EXECUTABLE}")
