# robust.cmake — the robustness area (docs/robustness.md).
#  * replay_<target>: every fuzz target's LLVMFuzzerTestOneInput (tests/fuzz/fuzz_<target>.c) run by
#    a plain main (tests/fuzz/replay_main.c) over its seed corpus and the hostile inputs of
#    tests/data/bad/<target>/ (fuzz-found reproducers go there too). Built by every configuration
#    (gcc Release, ASan+UBSan), so they are regression tests even where clang/libFuzzer is absent.
#    LeakSanitizer on: no MPI here, so any leak is ours.
#  * py_bad_inputs: the bad-input matrix against the real `clipneg eval` (mpirun; label mpi).
# The libFuzzer campaigns themselves are tests/fuzz/CMakeLists.txt (label fuzz, -DCLIPNEG_FUZZ=ON).
set(_fuzz_dir ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
foreach(name safetensors coco_json jsonl job_ini tokenizer image classify_csv torchfile items)
  add_executable(replay_${name} ${_fuzz_dir}/fuzz_${name}.c ${_fuzz_dir}/replay_main.c)
  target_link_libraries(replay_${name} PRIVATE clipneg_core)
  if(CLIPNEG_HAVE_CUDA)
    target_link_libraries(replay_${name} PRIVATE clipneg_cuda)
  endif()
  set(_dirs ${_fuzz_dir}/corpus/${name})
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/data/bad/${name})
    list(APPEND _dirs ${CMAKE_CURRENT_SOURCE_DIR}/data/bad/${name})
  endif()
  add_test(NAME replay_${name} COMMAND replay_${name} ${_dirs} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(replay_${name} PROPERTIES LABELS "unit;robust" TIMEOUT 300
                       ENVIRONMENT "${CLIPNEG_TEST_ENV};ASAN_OPTIONS=detect_leaks=1:abort_on_error=0")
endforeach()

clipneg_py_test(${CMAKE_CURRENT_SOURCE_DIR}/python/test_bad_inputs.py LABELS python mpi robust TIMEOUT 600)
set_property(TEST py_bad_inputs APPEND PROPERTY ENVIRONMENT "CLIPNEG_MPIEXEC=${MPIEXEC_EXECUTABLE}")
