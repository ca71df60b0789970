// backend.cu — the CUDA implementation of the Backend interface (clipneg/backend.h).
//
// A call gets host buffers and returns host buffers. Inside, the batch is cut into chunks that go
// through a two-slot pipeline on two streams:
//
//   host:    fill pinned[0] | fill pinned[1] | fill pinned[0] ...     (memcpy / packing on the CPU)
//   copy:        H2D slot 0 |     H2D slot 1 |     H2D slot 0 ...     (cudaMemcpyAsync, pinned)
//   compute:                | tower chunk 0  | tower chunk 1  | ...   (kernels + cuBLASLt)
//
// so the upload (and the host-side packing) of chunk k+1 overlaps the compute of chunk k. Events
// keep the two slots honest: `uploaded[s]` (copy -> compute, and host before refilling pinned[s]),
// `consumed[s]` (compute -> copy, before overwriting the device slot). Outputs collect in one
// device buffer and come back with one D2H copy at the end.
#include <stdlib.h>
#include <string.h>

#include <type_traits>
#include <vector>

#include "cuda_common.cuh"
#include "encoder.cuh"
#include "ops.cuh"

#include "clipneg/cuda_backend.h"

// Chunks are sized by GEMM rows (tokens x items), not by item counts: every linear layer of a chunk
// is one GEMM with M = rows, and M of ~8k keeps the tensor cores busy while launch and host costs
// are paid once per chunk. ViT-B/32 (50 tokens): 163 images per chunk; ViT-L/14@336 (577): 14;
// texts trimmed to ~16 tokens (real COCO captions): 512 per chunk.
// CLIPNEG_CUDA_CHUNK_ROWS overrides it (tests: many chunks from tiny models; benchmarks: sweeps).
constexpr long kChunkRows = 8192;
constexpr size_t kImageSlotBytes = 128u << 20;  // fp32 pixels of one chunk at most (pinned + device, x2)
constexpr int kResnetChunk = 16;   // modified ResNet: its convolutions run per image, so more images per
                                   // chunk add memory (im2col buffers), not GEMM rows
constexpr int kMaxTextChunk = 2048;  // texts per chunk at most (very short texts)

struct CudaBackend {
    int device;
    Precision prec;
    void *model;                 // DevModel<T>* for T of `prec`
    int has_vision, has_text;    // copied from the DevModel
    size_t param_bytes;
    cudaStream_t compute, copy;
    void *pinned[2], *slot[2];   // host pinned staging and device input slots
    size_t slot_bytes;           // capacity of each of the four
    cudaEvent_t uploaded[2], consumed[2];
    float *pinned_out, *dev_out; // [rows, D]
    size_t out_floats;
    int32_t *text_order;         // host scratch for the text path
    int text_order_cap;
    long chunk_rows;             // kChunkRows, or CLIPNEG_CUDA_CHUNK_ROWS
    CudaTextTable *sim_table;    // staging table of Backend.similarity (grown on demand)
    int64_t sim_cap;             // its rows
};

// Grow the staging buffers (only between calls: nothing is in flight then).
static void reserve(CudaBackend *cb, size_t slot_bytes, size_t out_floats) {
    if (slot_bytes > cb->slot_bytes) {
        for (int i = 0; i < 2; i++) {
            if (cb->pinned[i]) cudaCheck(cudaFreeHost(cb->pinned[i]));
            if (cb->slot[i]) cudaCheck(cudaFree(cb->slot[i]));
            cudaCheck(cudaMallocHost(&cb->pinned[i], slot_bytes));
            cudaCheck(cudaMalloc(&cb->slot[i], slot_bytes));
        }
        cb->slot_bytes = slot_bytes;
    }
    if (out_floats > cb->out_floats) {
        if (cb->pinned_out) cudaCheck(cudaFreeHost(cb->pinned_out));
        if (cb->dev_out) cudaCheck(cudaFree(cb->dev_out));
        cudaCheck(cudaMallocHost((void **)&cb->pinned_out, out_floats * sizeof(float)));
        cudaCheck(cudaMalloc((void **)&cb->dev_out, out_floats * sizeof(float)));
        cb->out_floats = out_floats;
    }
}

// The two-slot pipeline. fill(k, pinned) packs chunk k into the pinned slot and returns its bytes;
// run(k, device_slot) enqueues chunk k's compute on cb->compute.
template <typename Fill, typename Run> static void run_chunks(CudaBackend *cb, int n_chunks, Fill fill, Run run) {
    for (int k = 0; k < n_chunks; k++) {
        const int s = k & 1;
        cudaCheck(cudaEventSynchronize(cb->uploaded[s]));  // pinned[s] is no longer being read (chunk k-2)
        const size_t bytes = fill(k, cb->pinned[s]);
        cudaAssert(bytes <= cb->slot_bytes, "chunk %d needs %zu bytes, slot has %zu", k, bytes, cb->slot_bytes);
        cudaCheck(cudaStreamWaitEvent(cb->copy, cb->consumed[s], 0));  // compute is done with slot[s]
        cudaCheck(cudaMemcpyAsync(cb->slot[s], cb->pinned[s], bytes, cudaMemcpyHostToDevice, cb->copy));
        cudaCheck(cudaEventRecord(cb->uploaded[s], cb->copy));
        cudaCheck(cudaStreamWaitEvent(cb->compute, cb->uploaded[s], 0));
        run(k, cb->slot[s]);
        cudaCheck(cudaEventRecord(cb->consumed[s], cb->compute));
    }
}

// Bring rows [0, n) of dev_out back and wait for everything of this call.
static void finish(CudaBackend *cb, long n_floats) {
    cudaCheck(cudaMemcpyAsync(cb->pinned_out, cb->dev_out, (size_t)n_floats * sizeof(float), cudaMemcpyDeviceToHost,
                              cb->compute));
    cudaCheck(cudaStreamSynchronize(cb->compute));
    cudaCheck(cudaStreamSynchronize(cb->copy));
}

// ---- images ---------------------------------------------------------------------------------------------------
// Images per chunk for a batch of B: at most kChunkRows tokens (ViT) and kImageSlotBytes of pixels,
// then evened out over the chunks the batch needs (300 images at most 163 per chunk: 150 + 150).
extern "C" int cuda_image_chunk(const ClipConfig *c, int B, long rows) {
    int most = kResnetChunk;
    if (c->vision_kind != CLIP_VISION_RESNET) {
        const long grid = c->patch_size > 0 ? c->image_size / c->patch_size : 1;
        const long tokens = grid * grid + 1;
        const size_t per_image = (size_t)3 * c->image_size * c->image_size * sizeof(float);
        most = (int)CN_MAX(1L, CN_MIN(rows / tokens, (long)(kImageSlotBytes / per_image)));
    }
    if (B <= 0) return most;
    const int n_chunks = CN_CEIL_DIV(B, most);
    return CN_CEIL_DIV(B, n_chunks);
}

template <typename T> static int encode_images_t(CudaBackend *cb, const ClipModel *m, const float *pixels, int B, float *out) {
    const DevModel<T> *d = (const DevModel<T> *)cb->model;
    const ClipConfig *c = &m->cfg;
    const int D = c->embed_dim;
    const size_t per_image = (size_t)3 * c->image_size * c->image_size;
    const int chunk = cuda_image_chunk(c, B, cb->chunk_rows);
    const int n_chunks = CN_CEIL_DIV(B, chunk);
    reserve(cb, per_image * chunk * sizeof(float), (size_t)B * D);
    run_chunks(
        cb, n_chunks,
        [&](int k, void *pinned) {
            const int b0 = k * chunk, n = CN_MIN(chunk, B - b0);
            memcpy(pinned, pixels + b0 * per_image, n * per_image * sizeof(float));
            return n * per_image * sizeof(float);
        },
        [&](int k, void *slot) {
            const int b0 = k * chunk, n = CN_MIN(chunk, B - b0);
            float *o = cb->dev_out + (size_t)b0 * D;
            if (c->vision_kind == CLIP_VISION_RESNET)
                resnet_forward<T>(d, (const float *)slot, n, o, cb->compute);
            else
                vit_forward<T>(d, (const float *)slot, n, o, cb->compute);
        });
    finish(cb, (long)B * D);
    memcpy(out, cb->pinned_out, (size_t)B * D * sizeof(float));
    return CN_OK;
}

static int cuda_encode_images(Backend *be, const float *pixels, int B, float *out) {
    CudaBackend *cb = (CudaBackend *)be->impl;
    if (B < 0) return cn_fail(CN_E_INTERNAL, "cuda encode_images: negative batch size %d", B);
    if (B == 0) return CN_OK;
    if (!pixels || !out) return cn_fail(CN_E_INTERNAL, "cuda encode_images: NULL buffer");
    if (!cb->has_vision) return cn_fail(CN_E_MODEL, "cuda encode_images: the model has no vision tower");
    cudaCheck(cudaSetDevice(cb->device));
    cuda_ops_set_tf32(cb->prec == PREC_TF32);  // process-wide GEMM mode: set per call (several backends may exist)
    switch (cb->prec) {
    case PREC_FP16: return encode_images_t<__half>(cb, be->model, pixels, B, out);
    case PREC_BF16: return encode_images_t<__nv_bfloat16>(cb, be->model, pixels, B, out);
    default: return encode_images_t<float>(cb, be->model, pixels, B, out);
    }
}

// ---- texts ----------------------------------------------------------------------------------------------------
// Each text is pooled at its EOT (the first maximum of its ids, like torch.argmax). The batch is
// sorted by EOT position and every chunk runs only to its own longest EOT + 1: under the causal
// mask later positions cannot reach the pooled token (see encoder_text.c). Rows come back in
// sorted order and are put back in batch order on the host.
static const int32_t *g_eot_key;  // qsort has no context argument; the host side is single-threaded
static int by_eot(const void *pa, const void *pb) {
    const int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    if (g_eot_key[a] != g_eot_key[b]) return g_eot_key[a] < g_eot_key[b] ? -1 : 1;
    return a < b ? -1 : (a > b);
}

extern "C" int cuda_text_chunks(const int32_t *len, int B, long rows, int32_t *starts) {
    int n_chunks = 0;
    for (int s0 = 0; s0 < B;) {
        starts[n_chunks++] = s0;
        int n = 1;  // sorted ascending: the chunk's last text sets its length
        while (s0 + n < B && n < kMaxTextChunk && (long)(n + 1) * len[s0 + n] <= rows) n++;
        s0 += n;
    }
    starts[n_chunks] = B;
    return n_chunks;
}

template <typename T>
static int encode_texts_t(CudaBackend *cb, const ClipModel *m, const int32_t *ids, const int32_t *eot,
                          const int32_t *order, const int32_t *starts, int n_chunks, int B, float *out) {
    const DevModel<T> *d = (const DevModel<T> *)cb->model;
    const int ctx = m->cfg.context_length, D = m->cfg.embed_dim;
    auto chunk_len = [&](int k) { return eot[order[starts[k + 1] - 1]] + 1; };  // its last text is the longest
    // slot layout: ids [n, Tn] then eot [n], all int32
    size_t slot = 0;
    for (int k = 0; k < n_chunks; k++) {
        const size_t n = (size_t)(starts[k + 1] - starts[k]);
        slot = CN_MAX(slot, (n * chunk_len(k) + n) * sizeof(int32_t));
    }
    reserve(cb, slot, (size_t)B * D);
    run_chunks(
        cb, n_chunks,
        [&](int k, void *pinned) {
            const int s0 = starts[k], n = starts[k + 1] - s0, Tn = chunk_len(k);
            int32_t *p = (int32_t *)pinned, *pe = p + (size_t)n * Tn;
            for (int i = 0; i < n; i++) {
                memcpy(p + (size_t)i * Tn, ids + (size_t)order[s0 + i] * ctx, (size_t)Tn * sizeof(int32_t));
                pe[i] = eot[order[s0 + i]];
            }
            return ((size_t)n * Tn + n) * sizeof(int32_t);
        },
        [&](int k, void *slot) {
            const int s0 = starts[k], n = starts[k + 1] - s0, Tn = chunk_len(k);
            const int32_t *sid = (const int32_t *)slot;
            text_forward<T>(d, sid, sid + (size_t)n * Tn, n, Tn, cb->dev_out + (size_t)s0 * D, cb->compute);
        });
    finish(cb, (long)B * D);
    for (int i = 0; i < B; i++)
        memcpy(out + (size_t)order[i] * D, cb->pinned_out + (size_t)i * D, (size_t)D * sizeof(float));
    return CN_OK;
}

static int cuda_encode_texts(Backend *be, const int32_t *ids, int B, float *out) {
    CudaBackend *cb = (CudaBackend *)be->impl;
    const ClipConfig *c = &be->model->cfg;
    if (B < 0) return cn_fail(CN_E_INTERNAL, "cuda encode_texts: negative batch size %d", B);
    if (B == 0) return CN_OK;
    if (!ids || !out) return cn_fail(CN_E_INTERNAL, "cuda encode_texts: NULL buffer");
    if (!cb->has_text) return cn_fail(CN_E_MODEL, "cuda encode_texts: the model has no text tower");
    const int ctx = c->context_length;
    for (long i = 0; i < (long)B * ctx; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return cn_fail(CN_E_DATA, "cuda encode_texts: text %ld, position %ld: token id %d outside the vocabulary [0, %d)",
                           i / ctx, i % ctx, (int)ids[i], c->vocab_size);
    if (B > cb->text_order_cap) {
        free(cb->text_order);
        cb->text_order = (int32_t *)mallocCheck((size_t)(4 * B + 1) * sizeof(int32_t));
        cb->text_order_cap = B;
    }
    // eot[B], order[B], the sorted lengths len[B], chunk starts[B + 1]
    int32_t *eot = cb->text_order, *order = eot + B, *len = order + B, *starts = len + B;
    for (int b = 0; b < B; b++) {
        const int32_t *row = ids + (size_t)b * ctx;
        int best = 0;
        for (int t = 1; t < ctx; t++)
            if (row[t] > row[best]) best = t;
        eot[b] = best;
        order[b] = b;
    }
    g_eot_key = eot;
    qsort(order, (size_t)B, sizeof(int32_t), by_eot);
    g_eot_key = nullptr;
    for (int i = 0; i < B; i++) len[i] = eot[order[i]] + 1;
    const int n_chunks = cuda_text_chunks(len, B, cb->chunk_rows, starts);
    cudaCheck(cudaSetDevice(cb->device));
    cuda_ops_set_tf32(cb->prec == PREC_TF32);
    switch (cb->prec) {
    case PREC_FP16: return encode_texts_t<__half>(cb, be->model, ids, eot, order, starts, n_chunks, B, out);
    case PREC_BF16: return encode_texts_t<__nv_bfloat16>(cb, be->model, ids, eot, order, starts, n_chunks, B, out);
    default: return encode_texts_t<float>(cb, be->model, ids, eot, order, starts, n_chunks, B, out);
    }
}

// ---- similarity tiles -----------------------------------------------------------------------------------------
// The evaluator's full-similarity tiles (eval_similarity.c): the tile's text rows go into a device
// table (grown on demand, kept between calls) and cuda_similarity_tile multiplies the images by it
// in true fp32 (CUBLAS_COMPUTE_32F), whatever the encoder precision: the stored similarities keep
// the fp32 GEMM of the CPU backend.
static int cuda_similarity(Backend *be, const float *img, int n_img, const float *txt, int n_txt, int D, float *out) {
    CudaBackend *cb = (CudaBackend *)be->impl;
    if (n_img < 0 || n_txt < 0 || D != be->model->cfg.embed_dim)
        return cn_fail(CN_E_INTERNAL, "cuda similarity: %d images x %d texts of dimension %d (model: %d)", n_img, n_txt,
                       D, be->model->cfg.embed_dim);
    if (n_img == 0 || n_txt == 0) return CN_OK;
    if (n_txt > cb->sim_cap) {
        cuda_text_table_destroy(cb->sim_table);
        cb->sim_table = nullptr;
        cb->sim_cap = 0;
        int rc = cuda_text_table_create(&cb->sim_table, cb->device, n_txt, D);
        if (rc != CN_OK) return rc;
        cb->sim_cap = n_txt;
    }
    int rc = cuda_text_table_upload(cb->sim_table, 0, txt, n_txt);
    if (rc == CN_OK) rc = cuda_similarity_tile(cb->sim_table, img, n_img, 0, n_txt, out);
    return rc;
}

// ---- lifetime -------------------------------------------------------------------------------------------------
template <typename T> static void free_model(void *p) {
    if (!p) return;
    dev_model_free<T>((DevModel<T> *)p);
    free(p);
}

static void cuda_destroy(Backend *be) {
    CudaBackend *cb = (CudaBackend *)be->impl;
    if (!cb) return;
    cudaCheck(cudaSetDevice(cb->device));
    cudaCheck(cudaDeviceSynchronize());
    switch (cb->prec) {
    case PREC_FP16: free_model<__half>(cb->model); break;
    case PREC_BF16: free_model<__nv_bfloat16>(cb->model); break;
    default: free_model<float>(cb->model); break;
    }
    for (int i = 0; i < 2; i++) {
        if (cb->pinned[i]) cudaCheck(cudaFreeHost(cb->pinned[i]));
        if (cb->slot[i]) cudaCheck(cudaFree(cb->slot[i]));
        cudaCheck(cudaEventDestroy(cb->uploaded[i]));
        cudaCheck(cudaEventDestroy(cb->consumed[i]));
    }
    if (cb->pinned_out) cudaCheck(cudaFreeHost(cb->pinned_out));
    if (cb->dev_out) cudaCheck(cudaFree(cb->dev_out));
    cudaCheck(cudaStreamDestroy(cb->compute));
    cudaCheck(cudaStreamDestroy(cb->copy));
    cuda_text_table_destroy(cb->sim_table);
    cuda_ops_release();
    free(cb->text_order);
    free(cb);
    be->impl = nullptr;
}

// Shapes the kernels cannot take are refused here, with the reason, instead of failing mid-run.
static int check_shapes(const ClipModel *m) {
    const ClipConfig *c = &m->cfg;
    if (c->embed_dim <= 0) return cn_fail(CN_E_MODEL, "cuda backend: embed_dim %d", c->embed_dim);
    if (c->vision_kind == CLIP_VISION_VIT && m->patch_w) {
        const int W = c->vision_width, NH = c->vision_heads;
        if (c->patch_size <= 0 || c->image_size < c->patch_size || NH <= 0 || W % NH != 0)
            return cn_fail(CN_E_MODEL, "cuda backend: vision transformer shape R=%d P=%d W=%d heads=%d", c->image_size,
                           c->patch_size, W, NH);
        if (W / NH > 128)
            return cn_fail(CN_E_CONFIG, "cuda backend: vision head size %d > 128 (the fused attention kernel's limit)", W / NH);
    }
    if (c->vision_kind == CLIP_VISION_RESNET && m->bottlenecks) {
        const int E = 32 * c->vision_width, NH = c->vision_heads;
        int nb = 0;
        for (int s = 0; s < 4; s++) nb += c->resnet_layers[s];
        if (c->image_size < 32 || NH <= 0 || E % NH != 0 || nb <= 0)
            return cn_fail(CN_E_MODEL, "cuda backend: modified resnet shape R=%d width=%d heads=%d", c->image_size,
                           c->vision_width, NH);
        if (m->bottlenecks[nb - 1].conv3.oc != E)
            return cn_fail(CN_E_MODEL, "cuda backend: last bottleneck has %d channels, attention pool expects %d",
                           m->bottlenecks[nb - 1].conv3.oc, E);
        const int Hf = c->image_size / 32;
        if (Hf * Hf + 1 > 8192) return cn_fail(CN_E_CONFIG, "cuda backend: attention pool over %d tokens (max 8192)", Hf * Hf + 1);
    }
    if (m->tok_emb) {
        const int Wt = c->text_width, NH = c->text_heads;
        if (c->context_length <= 0 || NH <= 0 || Wt % NH != 0)
            return cn_fail(CN_E_MODEL, "cuda backend: text shape context=%d width=%d heads=%d", c->context_length, Wt, NH);
        if (Wt / NH > 128)
            return cn_fail(CN_E_CONFIG, "cuda backend: text head size %d > 128 (the fused attention kernel's limit)", Wt / NH);
    }
    return CN_OK;
}

template <typename T> static int upload(CudaBackend *cb, const ClipModel *m) {
    DevModel<T> *d = (DevModel<T> *)callocCheck(1, sizeof(DevModel<T>));
    int rc = dev_model_upload<T>(d, m);
    if (rc != CN_OK) {
        free(d);
        return rc;
    }
    cb->model = d;
    cb->has_vision = d->has_vision;
    cb->has_text = d->has_text;
    cb->param_bytes = d->bytes;
    return CN_OK;
}

extern "C" int cuda_backend_init(Backend *be, Precision prec, const ClipModel *m, int device) {
    const int n = clipneg_cuda_device_count();
    if (device < 0 || device >= n)
        return cn_fail(CN_E_CONFIG, "cuda backend: device %d does not exist (%d visible)", device, n);
    if (!m || !m->memory) return cn_fail(CN_E_INTERNAL, "cuda backend: no model loaded");
    if (prec != PREC_FP32 && prec != PREC_TF32 && prec != PREC_FP16 && prec != PREC_BF16)
        return cn_fail(CN_E_CONFIG, "cuda backend: unknown precision %d", (int)prec);
    cudaCheck(cudaSetDevice(device));
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, device));
    if (prop.major < 8)
        return cn_fail(CN_E_CONFIG, "cuda backend: device %d (%s) has compute capability %d.%d; this build targets "
                                    "sm_80 and newer (A100, H100, ...)", device, prop.name, prop.major, prop.minor);
    int rc = check_shapes(m);
    if (rc != CN_OK) return rc;

    // Keep freed activations in the pool between calls instead of returning them to the driver.
    cudaMemPool_t pool;
    cudaCheck(cudaDeviceGetDefaultMemPool(&pool, device));
    uint64_t threshold = UINT64_MAX;
    cudaCheck(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));

    CudaBackend *cb = (CudaBackend *)callocCheck(1, sizeof(CudaBackend));
    cb->device = device;
    cb->prec = prec;
    const char *rows_env = getenv("CLIPNEG_CUDA_CHUNK_ROWS");
    cb->chunk_rows = rows_env && atol(rows_env) > 0 ? atol(rows_env) : kChunkRows;
    switch (prec) {
    case PREC_FP16: rc = upload<__half>(cb, m); break;
    case PREC_BF16: rc = upload<__nv_bfloat16>(cb, m); break;
    default: rc = upload<float>(cb, m); break;
    }
    if (rc != CN_OK) {
        free(cb);
        return rc;
    }
    cudaCheck(cudaStreamCreateWithFlags(&cb->compute, cudaStreamNonBlocking));
    cudaCheck(cudaStreamCreateWithFlags(&cb->copy, cudaStreamNonBlocking));
    for (int i = 0; i < 2; i++) {
        cudaCheck(cudaEventCreateWithFlags(&cb->uploaded[i], cudaEventDisableTiming));
        cudaCheck(cudaEventCreateWithFlags(&cb->consumed[i], cudaEventDisableTiming));
    }

    be->name = "cuda";
    be->precision = prec;
    be->model = m;
    be->impl = cb;
    be->encode_images = cuda_encode_images;
    be->encode_texts = cuda_encode_texts;
    be->similarity = cuda_similarity;
    be->destroy = cuda_destroy;
    cn_log("cuda backend: device %d (%s, sm_%d%d), %s, %.1f MiB of parameters, chunks of %ld rows", device, prop.name,
           prop.major, prop.minor, precision_name(prec), cb->param_bytes / 1048576.0, cb->chunk_rows);
    return CN_OK;
}

// ---- benchmark hook: the towers device to device ---------------------------------------------------------------
// bench/gpu/bench_gpu_towers times the towers without host transfers (its "d2d" mode): the input is
// uploaded once, outputs stay on the device, and every call is cut into the chunks encode_* would
// use. Texts are packed once to their longest EOT + 1 (the benchmark's texts all end together).
template <typename T>
static void d2d_forward(CudaBackend *cb, const ClipModel *m, int is_image, const void *dev_in, int B, int Tn) {
    const DevModel<T> *d = (const DevModel<T> *)cb->model;
    const ClipConfig *c = &m->cfg;
    const int D = c->embed_dim;
    if (is_image) {
        const size_t per_image = (size_t)3 * c->image_size * c->image_size;
        const int chunk = cuda_image_chunk(c, B, cb->chunk_rows);
        for (int b0 = 0; b0 < B; b0 += chunk) {
            const int n = CN_MIN(chunk, B - b0);
            const float *px = (const float *)dev_in + b0 * per_image;
            if (c->vision_kind == CLIP_VISION_RESNET)
                resnet_forward<T>(d, px, n, cb->dev_out + (size_t)b0 * D, cb->compute);
            else
                vit_forward<T>(d, px, n, cb->dev_out + (size_t)b0 * D, cb->compute);
        }
        return;
    }
    const int32_t *ids = (const int32_t *)dev_in, *eot = ids + (size_t)B * Tn;
    const int chunk = (int)CN_MAX(1L, CN_MIN((long)kMaxTextChunk, cb->chunk_rows / Tn));
    for (int s0 = 0; s0 < B; s0 += chunk) {
        const int n = CN_MIN(chunk, B - s0);
        text_forward<T>(d, ids + (size_t)s0 * Tn, eot + s0, n, Tn, cb->dev_out + (size_t)s0 * D, cb->compute);
    }
}

extern "C" int cuda_backend_time_d2d(Backend *be, int is_image, const void *host_in, int B, int reps, double *secs) {
    CudaBackend *cb = (CudaBackend *)be->impl;
    const ClipConfig *c = &be->model->cfg;
    if (B <= 0 || reps <= 0 || !host_in || !secs) return cn_fail(CN_E_INTERNAL, "cuda d2d timing: bad arguments");
    if (is_image ? !cb->has_vision : !cb->has_text) return cn_fail(CN_E_MODEL, "cuda d2d timing: no such tower");
    cudaCheck(cudaSetDevice(cb->device));
    cuda_ops_set_tf32(cb->prec == PREC_TF32);
    size_t bytes;
    int Tn = 0;
    std::vector<int32_t> packed;
    const void *src = host_in;
    if (is_image) {
        bytes = (size_t)B * 3 * c->image_size * c->image_size * sizeof(float);
    } else {
        const int ctx = c->context_length;
        const int32_t *ids = (const int32_t *)host_in;
        std::vector<int32_t> eot((size_t)B);
        for (int b = 0; b < B; b++) {
            int best = 0;
            for (int t = 1; t < ctx; t++)
                if (ids[(size_t)b * ctx + t] > ids[(size_t)b * ctx + best]) best = t;
            eot[(size_t)b] = best;
            Tn = CN_MAX(Tn, best + 1);
        }
        packed.resize((size_t)B * Tn + B);
        for (int b = 0; b < B; b++) {
            memcpy(&packed[(size_t)b * Tn], ids + (size_t)b * ctx, (size_t)Tn * sizeof(int32_t));
            packed[(size_t)B * Tn + b] = eot[(size_t)b];
        }
        src = packed.data();
        bytes = packed.size() * sizeof(int32_t);
    }
    void *dev_in;
    cudaCheck(cudaMalloc(&dev_in, bytes));
    cudaCheck(cudaMemcpy(dev_in, src, bytes, cudaMemcpyHostToDevice));
    reserve(cb, 0, (size_t)B * c->embed_dim);
    for (int r = -1; r < reps; r++) {  // r = -1 warms up (memory pool, GEMM heuristics)
        const double t0 = cn_now();
        switch (cb->prec) {
        case PREC_FP16: d2d_forward<__half>(cb, be->model, is_image, dev_in, B, Tn); break;
        case PREC_BF16: d2d_forward<__nv_bfloat16>(cb, be->model, is_image, dev_in, B, Tn); break;
        default: d2d_forward<float>(cb, be->model, is_image, dev_in, B, Tn); break;
        }
        cudaCheck(cudaStreamSynchronize(cb->compute));
        if (r >= 0) secs[r] = cn_now() - t0;
    }
    cudaCheck(cudaFree(dev_in));
    return CN_OK;
}
