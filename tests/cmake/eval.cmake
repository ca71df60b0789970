# eval.cmake — registrations of the evaluator's tests (the `eval` area: plan, HDF5 writer, driver).
#  * test_h5out.c calls MPI_Init itself: registered once as a singleton (h5out) and under mpirun
#    with 2 and 3 ranks, where every write must really be collective (CLIPNEG_H5_CHECK_COLLECTIVE=1).
#  * tests/python/test_eval_*.py launch `clipneg eval` under mpirun (np 1..4 on the 2-core CI
#    machine, oversubscribed); they get the launcher as CLIPNEG_MPIEXEC. Label "mpi" on all of them.

clipneg_c_test(h5out LABELS unit mpi TIMEOUT 120)
foreach(np 2 3)
  add_test(NAME h5out_np${np}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} $<TARGET_FILE:test_h5out>
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(h5out_np${np} PROPERTIES LABELS "unit;mpi" TIMEOUT 120
                       ENVIRONMENT "${CLIPNEG_TEST_ENV}")
endforeach()

file(GLOB _eval_pytests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/python/test_eval_*.py)
foreach(f ${_eval_pytests})
  clipneg_py_test(${f} LABELS python mpi TIMEOUT 600)
  get_filename_component(_stem ${f} NAME_WE)
  string(REGEX REPLACE "^test_" "" _stem ${_stem})
  set_property(TEST py_${_stem} APPEND PROPERTY ENVIRONMENT "CLIPNEG_MPIEXEC=${MPIEXEC_EXECUTABLE}")
endforeach()
