# Checkpoint loader tests (owner: model area).
#  * model_load / safetensors: plain unit tests on the committed tiny fixtures (auto-registered).
#  * model_load_fullsize (label fullsize, CLIPNEG_FULLSIZE=1 scripts/test.sh): for every OpenAI seed
#    shape, tests/reference/make_fixtures.py --full writes a seeded random full-size open_clip
#    checkpoint (float16, 0.3-0.9 GB each, one at a time in a temp folder), and test_model_load --full
#    checks the inferred architecture and seed name against what open_clip's config says.
clipneg_c_test(model_load)
add_test(NAME model_load_fullsize
         COMMAND bash -c "set -e; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT
                          for n in ViT-B-32 ViT-B-16 ViT-L-14 ViT-L-14-336 RN50x16; do
                            '${CLIPNEG_PYTHON}' tests/reference/make_fixtures.py --full $n --out \"$d/$n\" --dtype f16
                            '$<TARGET_FILE:test_model_load>' --full \"$d/$n\"
                            rm -rf \"$d/$n\"
                          done"
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(model_load_fullsize PROPERTIES LABELS "fullsize" TIMEOUT 1800
                     ENVIRONMENT "${CLIPNEG_TEST_ENV}")
