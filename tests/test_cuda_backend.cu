// test_cuda_backend.cu — host logic of the CUDA backend that needs no model: how batches are cut
// into pipeline chunks (cuda_image_chunk, cuda_text_chunks) and the staging upload that
// Backend.similarity uses (cuda_text_table_upload + cuda_similarity_tile). Runs on a GPU (label
// cuda) and on the CPU emulator (cuda_backend_emulated). The towers through those chunks are
// tests/test_cuda_encoders.cu (CLIPNEG_CUDA_CHUNK_ROWS makes its tiny models take many chunks).
// Expected values are closed forms; tolerance of the tile as in test_cuda_similarity.cu.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "clipneg/common.h"
#include "clipneg/cuda_backend.h"
#include "cuda_test_gate.h"

static int g_failures = 0;

static void expect(bool ok, const char *what) {
    if (!ok) g_failures++;
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
}

static void check_image_chunk(const char *name, int kind, int R, int P, int B, long rows, int want) {
    ClipConfig c;
    memset(&c, 0, sizeof c);
    c.vision_kind = (ClipVisionKind)kind;
    c.image_size = R;
    c.patch_size = P;
    const int got = cuda_image_chunk(&c, B, rows);
    char msg[160];
    snprintf(msg, sizeof msg, "%s, batch %d, %ld rows: %d images per chunk (want %d)", name, B, rows, got, want);
    expect(got == want, msg);
}

// Every chunk within the row budget (or a single text), at most 2048 texts, covering [0, B) in
// order, and greedy: adding the next text to a chunk would break the budget.
static void check_text_chunks(const char *name, const std::vector<int32_t> &len, long rows) {
    const int B = (int)len.size();
    std::vector<int32_t> starts((size_t)B + 1, -1);
    const int n = cuda_text_chunks(len.data(), B, rows, starts.data());
    bool ok = n >= (B > 0) && starts[0] == 0 && starts[(size_t)n] == B;
    for (int k = 0; ok && k < n; k++) {
        const int s0 = starts[(size_t)k], s1 = starts[(size_t)k + 1], m = s1 - s0;
        const long used = (long)m * len[(size_t)s1 - 1];
        ok = m >= 1 && m <= 2048 && (used <= rows || m == 1);
        if (ok && s1 < B && m < 2048) ok = (long)(m + 1) * len[(size_t)s1] > rows;  // greedy
    }
    char msg[160];
    snprintf(msg, sizeof msg, "%s: %d texts, %ld rows -> %d chunks, budget kept and greedy", name, B, rows, n);
    expect(ok, msg);
}

int main(int argc, char **argv) {
    const int gate = cuda_test_gate(argc, argv);
    if (gate >= 0) return gate;

    // ViT-B/32 at 224: 50 tokens -> 163 images in 8192 rows; a batch of 256 splits 128 + 128
    check_image_chunk("ViT-B/32", CLIP_VISION_VIT, 224, 32, 163, 8192, 163);
    check_image_chunk("ViT-B/32", CLIP_VISION_VIT, 224, 32, 1000, 8192, 143);  // 7 chunks of <= 163, evened
    check_image_chunk("ViT-B/32", CLIP_VISION_VIT, 224, 32, 256, 8192, 128);
    check_image_chunk("ViT-B/32", CLIP_VISION_VIT, 224, 32, 100, 8192, 100);
    check_image_chunk("ViT-L/14@336", CLIP_VISION_VIT, 336, 14, 256, 8192, 14);  // 577 tokens: 14 max, 19 chunks
    check_image_chunk("ViT-B/16", CLIP_VISION_VIT, 224, 16, 41, 8192, 41);      // 197 tokens: 41 per chunk
    check_image_chunk("tiny ViT", CLIP_VISION_VIT, 32, 8, 35, 64, 3);            // 17 tokens, 64 rows -> 3 (12 chunks)
    check_image_chunk("huge rows", CLIP_VISION_VIT, 64, 8, 100000, 1L << 40, 2703);  // 128 MiB / 48 KiB = 2730 max: 37 chunks
    check_image_chunk("one token budget", CLIP_VISION_VIT, 224, 32, 7, 1, 1);   // never 0
    check_image_chunk("RN50x16", CLIP_VISION_RESNET, 384, 0, 256, 8192, 16);

    std::vector<int32_t> coco, full(300, 77), mixed, one(1, 5), none;
    for (int i = 0; i < 1024; i++) coco.push_back(8 + (i * 17) / 1024);  // 8..24 tokens, ascending
    for (int i = 0; i < 5000; i++) mixed.push_back(2 + (i * 75) / 5000);
    check_text_chunks("COCO-like lengths", coco, 8192);
    check_text_chunks("77-token texts", full, 8192);
    check_text_chunks("2..77 tokens, small budget", mixed, 100);
    check_text_chunks("texts longer than the budget", full, 50);
    check_text_chunks("short texts, 2048 cap", mixed, 1L << 30);
    check_text_chunks("one text", one, 8192);
    {
        int32_t s[1] = {-1};
        expect(cuda_text_chunks(none.data(), 0, 8192, s) == 0 && s[0] == 0, "no texts: 0 chunks");
    }

    // Backend.similarity's staging: upload rows into a table, then a tile against double dots
    const int D = 40, n_txt = 70, n_img = 9;
    CudaTextTable *t = nullptr;
    expect(cuda_text_table_create(&t, 0, 100, D) == CN_OK, "table of 100 rows");
    std::vector<float> txt((size_t)n_txt * D), img((size_t)n_img * D), out((size_t)n_img * n_txt, 7.0f);
    for (int j = 0; j < n_txt; j++)
        for (int d = 0; d < D; d++) txt[(size_t)j * D + d] = sinf(0.3f * j + 0.07f * d);
    for (int i = 0; i < n_img; i++)
        for (int d = 0; d < D; d++) img[(size_t)i * D + d] = cosf(0.19f * i - 0.05f * d);
    expect(cuda_text_table_upload(t, 20, txt.data(), n_txt) == CN_OK, "upload rows [20, 90)");
    expect(cuda_text_table_upload(t, 50, txt.data(), 51) == CN_E_INTERNAL, "upload past the end refused");
    expect(cuda_similarity_tile(t, img.data(), n_img, 20, n_txt, out.data()) == CN_OK, "tile over the uploaded rows");
    long bad = 0;
    for (int i = 0; i < n_img; i++)
        for (int j = 0; j < n_txt; j++) {
            double exact = 0, mag = 0;
            for (int d = 0; d < D; d++) {
                exact += (double)img[(size_t)i * D + d] * txt[(size_t)j * D + d];
                mag += fabs((double)img[(size_t)i * D + d] * txt[(size_t)j * D + d]);
            }
            bad += !(fabs(out[(size_t)i * n_txt + j] - exact) <= 1e-5 * mag + 1e-7);
        }
    char msg[128];
    snprintf(msg, sizeof msg, "similarity of uploaded rows: %ld of %d outside 1e-5 relative", bad, n_img * n_txt);
    expect(bad == 0, msg);
    std::vector<float> back((size_t)D);
    expect(cuda_text_table_read(t, 19, 1, back.data()) == CN_OK && isnan(back[0]), "rows not uploaded stay NaN");
    cuda_text_table_destroy(t);

    printf("%s\n", g_failures ? "FAILED" : "all checks passed");
    return g_failures ? 1 : 0;
}
