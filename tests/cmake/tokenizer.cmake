# Tokenizer tests. `tokenizer` compares the C tokenizer with open_clip's golden ids
# (tests/fixtures/tokenizer/golden.jsonl.gz) for the vocabulary loaded both from open_clip's
# bpe_simple_vocab_16e6.txt.gz and from an HF-format vocab.json + merges.txt, which the fixture
# test `tokenizer_hf_vocab` writes into the build tree first (standard-library Python only).
set(_tok_hf_dir "${CMAKE_BINARY_DIR}/tokenizer_hf")
add_test(NAME tokenizer_hf_vocab
         COMMAND ${CLIPNEG_PYTHON} ${CMAKE_SOURCE_DIR}/tests/reference/make_hf_vocab.py
                 ${CLIPNEG_SHARED_ABS}/data/clip-bpe/bpe_simple_vocab_16e6.txt.gz ${_tok_hf_dir}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(tokenizer_hf_vocab PROPERTIES LABELS "unit" TIMEOUT 120 FIXTURES_SETUP tokenizer_hf
                     ENVIRONMENT "${CLIPNEG_TEST_ENV}")

clipneg_c_test(tokenizer ARGS ${_tok_hf_dir} TIMEOUT 600)
set_tests_properties(tokenizer PROPERTIES FIXTURES_REQUIRED tokenizer_hf)
