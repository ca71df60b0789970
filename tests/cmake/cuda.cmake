# cuda.cmake — tests of the CUDA backend (label `cuda`; owner: cuda area). Registered and built only
# in CUDA builds (CLIPNEG_HAVE_CUDA); each test exits 77 (ctest: skipped) printing
# "SKIPPED: no CUDA GPU visible" when clipneg_cuda_device_count() == 0, as on the CI machine.
#  * cuda_ops            every CUDA op vs its CPU twin (ops.h), fp32/tf32/fp16/bf16, random inputs
#  * cuda_encoders       the towers end to end vs the CPU backend (tests/fixtures/models/*, and a seeded
#                        random full-size ViT-B/32 when tests/reference/make_fixtures.py can write one)
#  * cuda_similarity     text table + all-gather + similarity tiles, 1 rank and 2 ranks (mpiexec)
#  * cuda_backend        chunk sizing by GEMM rows, the staging upload of Backend.similarity
#  * cuda_demo           jobs/demo.ini on the GPU vs the CPU backend, fp32/tf32/fp16/bf16 (tests/cuda_demo.py)
#  * cuda_ops_memcheck, cuda_ops_racecheck, cuda_encoders_memcheck: the same binaries (--quick shapes)
#    under compute-sanitizer; skipped as well when compute-sanitizer was not found at configure time.
#  * cuda_ops_emulated, cuda_similarity_emulated (labels unit;cuda-emu): the same tests on the CPU
#    emulator of src/cuda/emu/, so the kernels' logic is exercised without a GPU (end of this file).
# On a GPU machine: ctest -L cuda --output-on-failure (docs/cuda.md).
if(NOT CLIPNEG_HAVE_CUDA)
  return()
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

# The CUDA runtime needs ASan's shadow gap left unprotected (ASAN_OPTIONS protect_shadow_gap=0),
# otherwise cuInit fails under the sanitizer build and every GPU test would skip on a GPU machine.
set(CLIPNEG_CUDA_TEST_ENV ${CLIPNEG_TEST_ENV})
list(FILTER CLIPNEG_CUDA_TEST_ENV EXCLUDE REGEX "^ASAN_OPTIONS=")
list(APPEND CLIPNEG_CUDA_TEST_ENV "ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:protect_shadow_gap=0")

# clipneg_cuda_test(name [TIMEOUT s]) — tests/test_<name>.cu compiled by nvcc (warnings are errors), linked with the core and the CUDA backend; ctest `<name>`, label cuda.
function(clipneg_cuda_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "" ${ARGN})
  add_executable(test_${name} ${CMAKE_CURRENT_SOURCE_DIR}/test_${name}.cu)
  # The test sources hold no kernels (they call the library, built for sm_80 + sm_90): one target
  # architecture keeps their compile time down.
  set_target_properties(test_${name} PROPERTIES CUDA_ARCHITECTURES 80 CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON)
  target_compile_options(test_${name} PRIVATE "SHELL:-Werror all-warnings" "-Xcompiler=-Wall,-Wextra,-Werror")
  target_compile_definitions(test_${name} PRIVATE OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
  target_include_directories(test_${name} PRIVATE ${CMAKE_SOURCE_DIR}/src/cuda ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(test_${name} PRIVATE clipneg_core clipneg_cuda)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${name} COMMAND test_${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS cuda TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
                       ENVIRONMENT "${CLIPNEG_CUDA_TEST_ENV}")
endfunction()

clipneg_cuda_test(cuda_ops TIMEOUT 300)
clipneg_cuda_test(cuda_encoders TIMEOUT 900)
clipneg_cuda_test(cuda_similarity TIMEOUT 120)
clipneg_cuda_test(cuda_backend TIMEOUT 120)

# Two ranks: NCCL when the node has two GPUs, else (one GPU shared by both ranks, which NCCL refuses)
# the MPI fallback of the same call. The probe keeps a GPU-less machine at "skipped".
add_test(NAME cuda_similarity_np2
         COMMAND sh -c "\"$0\" --probe || { echo 'SKIPPED: no CUDA GPU visible'; exit 77; }; exec \"$1\" $2 2 \"$0\""
                 $<TARGET_FILE:test_cuda_similarity> ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cuda_similarity_np2 PROPERTIES LABELS "cuda;mpi" TIMEOUT 120 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${CLIPNEG_CUDA_TEST_ENV}")

# The demo job (coco-mini, tiny random ViT) on one GPU vs the CPU backend, all four precisions:
# paired similarities within the bounds stated in tests/cuda_demo.py (fp16: 2e-3).
add_test(NAME cuda_demo COMMAND ${CLIPNEG_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cuda_demo.py $<TARGET_FILE:test_cuda_ops>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cuda_demo PROPERTIES LABELS cuda TIMEOUT 300 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${CLIPNEG_CUDA_TEST_ENV}")

# compute-sanitizer variants: out-of-bounds / misaligned accesses (memcheck) and shared-memory
# races (racecheck, for the tiled attention kernels), on the --quick shapes. compute-sanitizer is
# looked up when the test runs (the configure-time path first, then PATH, then /usr/local/cuda), so
# a build configured on a machine without it still runs these on a GPU machine that has it.
find_program(CLIPNEG_COMPUTE_SANITIZER compute-sanitizer
             HINTS ${CUDAToolkit_BIN_DIR} ${CUDAToolkit_BIN_DIR}/../compute-sanitizer
             PATHS /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer)
set(_cs_configured "${CLIPNEG_COMPUTE_SANITIZER}")
if(NOT _cs_configured)
  set(_cs_configured "none")
endif()
foreach(_case "cuda_ops;memcheck" "cuda_ops;racecheck" "cuda_encoders;memcheck")
  list(GET _case 0 _bin)
  list(GET _case 1 _tool)
  add_test(NAME ${_bin}_${_tool}
           COMMAND sh -c "\"$0\" --probe || { echo 'SKIPPED: no CUDA GPU visible'; exit 77; }; for cs in \"$2\" \"$(command -v compute-sanitizer)\" /usr/local/cuda/bin/compute-sanitizer; do [ -x \"$cs\" ] && exec \"$cs\" --tool $1 --error-exitcode 1 \"$0\" --quick; done; echo 'SKIPPED: compute-sanitizer not found'; exit 77"
                   $<TARGET_FILE:test_${_bin}> ${_tool} ${_cs_configured}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${_bin}_${_tool} PROPERTIES LABELS cuda TIMEOUT 1200 SKIP_RETURN_CODE 77
                       ENVIRONMENT "${CLIPNEG_CUDA_TEST_ENV}")
endforeach()

# ---- the same tests on the CPU emulator (src/cuda/emu/): the kernels' logic in CI without a GPU ----
# The backend's sources and the GPU tests are rewritten (emu/transform.cmake: only the <<<>>> launch
# syntax and dynamic shared memory change) and compiled as C++ against fake CUDA/cuBLASLt headers;
# blocks run on fibers, GEMMs on a reference implementation that checks the layouts. Not in the
# sanitizer build (fiber stack switching and ASan do not mix), and not the encoder test (minutes).
#  * cuda_ops_emulated          test_cuda_ops --quick: every kernel vs its CPU twin, all precisions
#  * cuda_similarity_emulated   test_cuda_similarity (MPI path; no NCCL in the emulator)
#  * cuda_backend_emulated      test_cuda_backend (chunk sizing, similarity staging)
#  * cuda_demo_emulated         clipneg eval on the emulated backend vs the CPU (cuda_demo.py --quick)
if(NOT CLIPNEG_SANITIZE)
  enable_language(CXX)
  set(_emu ${CMAKE_SOURCE_DIR}/src/cuda/emu)
  set(_gen ${CMAKE_CURRENT_BINARY_DIR}/cuda-emu)
  file(GLOB _emu_inputs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cuda/*.cu ${CMAKE_SOURCE_DIR}/src/cuda/*.cuh)
  set(_emu_lib_srcs ${_emu}/emu.cpp)
  foreach(f ${_emu_inputs} ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_ops.cu ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_similarity.cu
          ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_backend.cu)
    get_filename_component(_name ${f} NAME)
    string(REGEX REPLACE "\\.cu$" ".cpp" _out ${_name})
    add_custom_command(OUTPUT ${_gen}/${_out}
                       COMMAND ${CMAKE_COMMAND} -D IN=${f} -D OUT=${_gen}/${_out} -P ${_emu}/transform.cmake
                       DEPENDS ${f} ${_emu}/transform.cmake VERBATIM)
    if(NOT _name MATCHES "^test_")
      list(APPEND _emu_lib_srcs ${_gen}/${_out})
    endif()
  endforeach()
  add_library(clipneg_cuda_emu STATIC ${_emu_lib_srcs})
  set_target_properties(clipneg_cuda_emu PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_include_directories(clipneg_cuda_emu BEFORE PUBLIC ${_emu}/shim ${_gen})
  target_include_directories(clipneg_cuda_emu PUBLIC ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(clipneg_cuda_emu PUBLIC -Wall -Wextra -Werror -Wno-unknown-pragmas)
  target_compile_definitions(clipneg_cuda_emu PUBLIC OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)
  target_link_libraries(clipneg_cuda_emu PUBLIC MPI::MPI_C)
  # Only the C files the tests need (not clipneg_core, which links the real CUDA library).
  foreach(t cuda_ops cuda_similarity cuda_backend)
    add_executable(test_${t}_emu ${_gen}/test_${t}.cpp ${CMAKE_SOURCE_DIR}/src/common.c ${CMAKE_SOURCE_DIR}/src/ops_cpu.c)
    set_target_properties(test_${t}_emu PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
    target_link_libraries(test_${t}_emu PRIVATE clipneg_cuda_emu PkgConfig::OPENBLAS OpenMP::OpenMP_C ${LIBM})
    target_include_directories(test_${t}_emu PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})  # cuda_test_gate.h
  endforeach()
  add_test(NAME cuda_ops_emulated COMMAND test_cuda_ops_emu --quick WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  add_test(NAME cuda_similarity_emulated COMMAND test_cuda_similarity_emu WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  add_test(NAME cuda_backend_emulated COMMAND test_cuda_backend_emu WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(cuda_ops_emulated cuda_similarity_emulated cuda_backend_emulated PROPERTIES LABELS "unit;cuda-emu" TIMEOUT 300
                       ENVIRONMENT "${CLIPNEG_TEST_ENV}")

  # The whole evaluator on the emulated backend: clipneg's own objects (main.c + the core, compiled
  # with CLIPNEG_HAVE_CUDA) linked against the emulator instead of the CUDA library, then
  # tests/cuda_demo.py --quick: the demo job (12 images) with backend = cuda in fp32, fp16 and auto vs
  # the CPU backend (paired and full similarities, the recorded precision).
  add_executable(clipneg_emu ${CMAKE_SOURCE_DIR}/src/main.c $<TARGET_OBJECTS:clipneg_core>)
  set_target_properties(clipneg_emu PROPERTIES LINKER_LANGUAGE CXX)
  target_compile_definitions(clipneg_emu PRIVATE CLIPNEG_HAVE_CUDA=1 CLIPNEG_GIT_COMMIT="${CLIPNEG_GIT_COMMIT}")
  target_include_directories(clipneg_emu PRIVATE ${CMAKE_SOURCE_DIR}/include)
  target_link_libraries(clipneg_emu PRIVATE clipneg_cuda_emu MPI::MPI_C ${HDF5_HL_LIBRARIES} ${HDF5_C_LIBRARIES} OpenMP::OpenMP_C
                        PkgConfig::OPENBLAS PkgConfig::CJSON PkgConfig::INIH PkgConfig::STB ZLIB::ZLIB ${LIBM})
  add_test(NAME cuda_demo_emulated
           COMMAND ${CLIPNEG_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cuda_demo.py $<TARGET_FILE:test_cuda_backend_emu> --quick
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(cuda_demo_emulated PROPERTIES LABELS "unit;cuda-emu" TIMEOUT 600
                       ENVIRONMENT "${CLIPNEG_TEST_ENV};CLIPNEG_BIN=$<TARGET_FILE:clipneg_emu>")
endif()
