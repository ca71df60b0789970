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

# `clipneg inspect-model`: prints the inferred architecture (stdout) and exits 4 on a refused checkpoint.
add_test(NAME inspect_model
         COMMAND bash -c "set -e; out=$('$<TARGET_FILE:clipneg>' inspect-model tests/fixtures/models/rn-tiny-openclip)
                          echo \"$out\"
                          grep -qx 'resnet_layers: 1,1,1,1' <<< \"$out\"
                          grep -qx 'vision_heads: 8' <<< \"$out\"
                          grep -qx 'tensors: 134' <<< \"$out\"
                          out=$('$<TARGET_FILE:clipneg>' inspect-model tests/fixtures/models/vit-tiny-hf --quick-gelu 1)
                          grep -qx 'layout: hf' <<< \"$out\"
                          grep -qx 'quick_gelu: 1' <<< \"$out\"
                          rc=0; '$<TARGET_FILE:clipneg>' inspect-model tests/fixtures/models/vit-tiny-hf/expected.safetensors || rc=$?
                          test $rc -eq 4"
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(inspect_model PROPERTIES LABELS "unit" TIMEOUT 60 ENVIRONMENT "${CLIPNEG_TEST_ENV}")

# PyTorch checkpoints (src/torchfile*.c): test_torchfile (auto-registered) loads the committed
# fixtures of tests/reference/make_torch_fixtures.py; py_torchfile makes hostile files at test time
# (os.system / eval payloads, zip bombs, truncation, deep nesting) and checks convert-model.
clipneg_py_test(${CMAKE_CURRENT_SOURCE_DIR}/python/test_torchfile.py TIMEOUT 300)
