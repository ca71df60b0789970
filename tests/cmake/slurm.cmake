# Real SLURM daemons on localhost (label `slurm`; run separately by scripts/test.sh).
add_test(NAME slurm_submit_requeue
         COMMAND timeout -k 10 900 bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/test_slurm.sh
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(slurm_submit_requeue PROPERTIES LABELS "slurm" TIMEOUT 960 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${CLIPNEG_TEST_ENV}")
