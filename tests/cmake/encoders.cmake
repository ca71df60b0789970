# encoders.cmake — registrations for the CPU encoder tests (owner: enc).
#   ops, encoders       plain unit tests (auto-registered from tests/test_*.c)
#   encoders_e2e        JPEG -> image_decode.c/image_resize.c preprocess -> CPU tower vs open_clip
#   encoders_fullsize   seeded random full-size ViT-B/32 + RN50x16 vs open_clip (label fullsize:
#                       minutes and GBs, excluded from the default suite; CLIPNEG_FULLSIZE=1 scripts/test.sh)
clipneg_c_test(encoders)
add_test(NAME encoders_fullsize
         COMMAND ${CLIPNEG_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/check_fullsize.py
                 --bin $<TARGET_FILE:test_encoders>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(encoders_fullsize PROPERTIES LABELS "fullsize" TIMEOUT 3600 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${CLIPNEG_TEST_ENV}")
