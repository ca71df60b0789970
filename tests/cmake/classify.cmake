# classify.cmake — zero-shot classification (docs/classification.md): tests/python/test_classify.py
# launches `clipneg eval` under mpirun (1-3 ranks, a killed and a preempted run that resume) and
# checks against open_clip's zero-shot classifier; tests/python/test_table.py builds the
# many-models table from real small runs.
clipneg_py_test(${CMAKE_CURRENT_SOURCE_DIR}/python/test_classify.py LABELS python mpi TIMEOUT 600)
set_property(TEST py_classify APPEND PROPERTY ENVIRONMENT "CLIPNEG_MPIEXEC=${MPIEXEC_EXECUTABLE}")
clipneg_py_test(${CMAKE_CURRENT_SOURCE_DIR}/python/test_table.py LABELS python mpi TIMEOUT 600)
set_property(TEST py_table APPEND PROPERTY ENVIRONMENT "CLIPNEG_MPIEXEC=${MPIEXEC_EXECUTABLE}")
