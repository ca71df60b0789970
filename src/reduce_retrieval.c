// reduce_retrieval.c — retrieval metrics of `clipneg reduce` without ever holding N_img x N_text.
//
//   text -> image, every variant: the query is text (c, v); the candidates are all valid images;
//       a hit at k when fewer than k images are strictly more similar than c's own image.
//   image -> text, base variant: the query is an image; the candidates are the base variant's
//       texts of all captions; a hit at k when fewer than k texts are strictly more similar than
//       the image's best own caption (i.e. ANY own caption is in the top k). Ties count as hits.
//
// Similarities come from /similarity/full when the file has it, else from /embeddings in tiles.
// Each rank takes a contiguous run of fixed global text tiles and streams every image tile past
// them, keeping a running top-10 per text and per image (TopK). Per-text results are integer hit
// counts (summed exactly); per-image top-10 lists are merged with an order-free MPI operation, so
// the metrics do not depend on the rank count.
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/reduce.h"

// ---- running top-k -----------------------------------------------------------------------------

void topk_init(TopK *t) {
    for (int i = 0; i < REDUCE_MAX_K; i++) t->top[i] = -INFINITY;
    t->n = 0;
    t->own = -INFINITY;
}

void topk_push(TopK *t, float v) {
    if (isnan(v)) return;
    if (t->n == REDUCE_MAX_K && !(v > t->top[REDUCE_MAX_K - 1])) return;  // equal values: same multiset
    int i = t->n < REDUCE_MAX_K ? t->n++ : REDUCE_MAX_K - 1;
    while (i > 0 && t->top[i - 1] < v) {
        t->top[i] = t->top[i - 1];
        i--;
    }
    t->top[i] = v;
}

void topk_merge(TopK *a, const TopK *b) {
    float out[REDUCE_MAX_K];
    int i = 0, j = 0, n = 0;
    while (n < REDUCE_MAX_K && (i < a->n || j < b->n)) {
        if (j >= b->n || (i < a->n && a->top[i] >= b->top[j]))
            out[n++] = a->top[i++];
        else
            out[n++] = b->top[j++];
    }
    for (int k = 0; k < n; k++) a->top[k] = out[k];
    for (int k = n; k < REDUCE_MAX_K; k++) a->top[k] = -INFINITY;
    a->n = n;
    if (b->own > a->own) a->own = b->own;
}

int topk_hit(const TopK *t, int k) {
    if (t->own == -INFINITY) return 0;  // no valid own similarity: not a query
    if (t->n < k) return 1;
    // top[k-1] is the k-th largest candidate: at least k candidates beat `own` iff it is > own.
    return t->top[k - 1] <= t->own;
}

static void topk_merge_op(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const TopK *b = in;
    TopK *a = inout;
    for (int i = 0; i < *len; i++) topk_merge(&a[i], &b[i]);
}

// ---- similarity tiles ----------------------------------------------------------------------------

// Eight independent partial sums, added in a fixed tree: the compiler vectorises the lanes, and the
// result is the same whichever thread or tile computes it.
static float dot8(const float *a, const float *b, int d) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int k = 0;
    for (; k + 8 <= d; k += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[k + l] * b[k + l];
    for (int l = 0; k < d; k++, l++) acc[l] += a[k] * b[k];
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

// The same arithmetic for a 4 x 2 block of pairs: every pair's 8 lanes see the same products in the
// same order as dot8, so the floats are identical; the block only saves loads (each a-row is read
// once for two texts, each b-row once for four images).
static void dot8_4x2(const float *a, const float *b, int d, size_t lda, size_t ldb, float out[4][2]) {
    float acc[4][2][8];
    memset(acc, 0, sizeof acc);
    int k = 0;
    for (; k + 8 <= d; k += 8)
        for (int i = 0; i < 4; i++)
            for (int t = 0; t < 2; t++)
                for (int l = 0; l < 8; l++) acc[i][t][l] += a[i * lda + k + l] * b[t * ldb + k + l];
    for (int l = 0; k < d; k++, l++)
        for (int i = 0; i < 4; i++)
            for (int t = 0; t < 2; t++) acc[i][t][l] += a[i * lda + k] * b[t * ldb + k];
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < 2; t++) {
            const float *c = acc[i][t];
            out[i][t] = ((c[0] + c[4]) + (c[1] + c[5])) + ((c[2] + c[6]) + (c[3] + c[7]));
        }
}

#define SUB 32  // sub-block of rows x texts that stays in L2 while its dot products are formed

void similarity_tile(const float *A, int I, const float *B, int T, int D, float *S) {
    int nbi = CN_CEIL_DIV(I, SUB), nbt = CN_CEIL_DIV(T, SUB);
#pragma omp parallel for collapse(2) schedule(static) num_threads(cn_threads())
    for (int bi = 0; bi < nbi; bi++)
        for (int bt = 0; bt < nbt; bt++) {
            const int i1 = CN_MIN(I, (bi + 1) * SUB), t1 = CN_MIN(T, (bt + 1) * SUB);
            for (int i = bi * SUB; i < i1; i += 4)
                for (int t = bt * SUB; t < t1; t += 2) {
                    if (i + 4 <= i1 && t + 2 <= t1) {
                        float out[4][2];
                        dot8_4x2(A + (size_t)i * D, B + (size_t)t * D, D, (size_t)D, (size_t)D, out);
                        for (int ii = 0; ii < 4; ii++)
                            for (int tt = 0; tt < 2; tt++) S[(size_t)(i + ii) * T + t + tt] = out[ii][tt];
                        continue;
                    }
                    for (int ii = i; ii < CN_MIN(i + 4, i1); ii++)  // block edges: one pair at a time
                        for (int tt = t; tt < CN_MIN(t + 2, t1); tt++)
                            S[(size_t)ii * T + tt] = dot8(A + (size_t)ii * D, B + (size_t)tt * D, D);
                }
        }
}

// ---- the pass ------------------------------------------------------------------------------------

typedef struct {
    hid_t file;
    int from_full;            // 1: read /similarity/full tiles, 0: compute from /embeddings
    int64_t n_img, n_text, D;
    float *img_cache;         // all image embeddings when they fit (else NULL: read per tile)
    float *img_buf, *txt_buf; // tile buffers (embeddings mode)
} Source;

// S[i * nt + t] for images [i0, i0+ni) x texts [t0, t0+nt).
static int load_tile(Source *s, int64_t i0, int64_t ni, int64_t t0, int64_t nt, int text_loaded, float *S) {
    if (s->from_full) return rio_read(s->file, "/similarity/full", H5T_NATIVE_FLOAT, i0, ni, t0, nt, S);
    int rc;
    if (!text_loaded && (rc = rio_read(s->file, "/embeddings/text", H5T_NATIVE_FLOAT, t0, nt, 0, s->D, s->txt_buf)))
        return rc;
    const float *img = s->img_cache ? s->img_cache + (size_t)i0 * s->D : s->img_buf;
    if (!s->img_cache && (rc = rio_read(s->file, "/embeddings/image", H5T_NATIVE_FLOAT, i0, ni, 0, s->D, s->img_buf)))
        return rc;
    similarity_tile(img, (int)ni, s->txt_buf, (int)nt, (int)s->D, S);
    return CN_OK;
}

static int open_source(hid_t file, const ReduceResult *r, Source *s, int64_t tile_images) {
    int nd;
    int64_t dims[2];
    int rc;
    memset(s, 0, sizeof *s);
    s->file = file;
    s->n_img = r->n_images;
    s->n_text = r->n_captions * r->V;
    if (rio_exists(file, "/similarity/full")) {
        if ((rc = rio_shape(file, "/similarity/full", &nd, dims))) return rc;
        if (nd != 2 || dims[0] != s->n_img || dims[1] != s->n_text)
            return cn_fail(CN_E_DATA, "/similarity/full has shape [%lld, %lld], expected [N_img=%lld, N_text=%lld]",
                           (long long)dims[0], (long long)dims[1], (long long)s->n_img, (long long)s->n_text);
        s->from_full = 1;
        return CN_OK;
    }
    if (!rio_exists(file, "/embeddings/image") || !rio_exists(file, "/embeddings/text")) return CN_E_GENERIC;
    if ((rc = rio_shape(file, "/embeddings/image", &nd, dims))) return rc;
    if (nd != 2 || dims[0] != s->n_img)
        return cn_fail(CN_E_DATA, "/embeddings/image has %lld rows, expected N_img=%lld", (long long)dims[0],
                       (long long)s->n_img);
    s->D = dims[1];
    if ((rc = rio_shape(file, "/embeddings/text", &nd, dims))) return rc;
    if (nd != 2 || dims[0] != s->n_text || dims[1] != s->D)
        return cn_fail(CN_E_DATA, "/embeddings/text has shape [%lld, %lld], expected [N_text=%lld, D=%lld]",
                       (long long)dims[0], (long long)dims[1], (long long)s->n_text, (long long)s->D);
    // Keep every image embedding in memory when that is cheap (<= 256 MiB); else re-read per tile.
    if ((double)s->n_img * (double)s->D * 4.0 <= 256.0 * 1024 * 1024) {
        s->img_cache = mallocCheck(sizeof(float) * (size_t)(s->n_img * s->D + 1));
        if ((rc = rio_read(file, "/embeddings/image", H5T_NATIVE_FLOAT, 0, s->n_img, 0, s->D, s->img_cache)))
            return rc;
    } else {
        s->img_buf = mallocCheck(sizeof(float) * (size_t)(tile_images * s->D));
    }
    return CN_OK;
}

int reduce_retrieval(hid_t file, const ReduceOptions *o, ReduceResult *r) {
    const int V = r->V, base = r->base;
    const int64_t n_img = r->n_images, n_cap = r->n_captions, n_text = n_cap * V;
    const int64_t TT = o->tile_texts > 0 ? o->tile_texts : REDUCE_TILE_TEXTS;
    const int64_t TI = o->tile_images > 0 ? o->tile_images : REDUCE_TILE_IMAGES;
    for (int v = 0; v < V; v++) r->t2i_n[v] = 0, r->t2i_r1[v] = r->t2i_r5[v] = r->t2i_r10[v] = NAN;
    r->i2t_n = 0, r->i2t_r1 = r->i2t_r5 = r->i2t_r10 = NAN;

    if (!r->complete) {  // rows of /similarity/full and /embeddings of unfinished shards are undefined
        r->retrieval_source = strdupCheck("none");
        return CN_OK;
    }
    Source src;
    int rc = open_source(file, r, &src, TI);
    if (rc == CN_E_GENERIC) {
        free(src.img_cache);
        free(src.img_buf);
        r->retrieval_source = strdupCheck("none");
        cn_log("warning: %s has neither /similarity/full nor /embeddings: no retrieval metrics", o->path);
        return CN_OK;
    }
    r->retrieval_source = strdupCheck(src.from_full ? "full" : "embeddings");
    int32_t *image_index = mallocCheck(sizeof(int32_t) * (size_t)(n_cap + 1));
    if (rc == CN_OK) rc = rio_read(file, "/captions/image_index", H5T_NATIVE_INT32, 0, n_cap, 0, 1, image_index);
    for (int64_t c = 0; rc == CN_OK && c < n_cap; c++)
        if (image_index[c] < 0 || image_index[c] >= n_img)
            rc = cn_fail(CN_E_DATA, "%s: /captions/image_index[%lld] = %d is not a row of /images (N_img=%lld)",
                         o->path, (long long)c, image_index[c], (long long)n_img);

    int64_t *hits = callocCheck((size_t)V * 4, sizeof(int64_t));  // per variant: queries, @1, @5, @10
    TopK *per_img = mallocCheck(sizeof(TopK) * (size_t)(n_img + 1));
    for (int64_t i = 0; i < n_img; i++) topk_init(&per_img[i]);
    TopK *per_txt = mallocCheck(sizeof(TopK) * (size_t)TT);
    float *S = mallocCheck(sizeof(float) * (size_t)(TT * TI));
    if (!src.from_full) src.txt_buf = mallocCheck(sizeof(float) * (size_t)(TT * src.D + 1));

    int64_t tile0, tile1;
    split_range(CN_CEIL_DIV(n_text, TT), cn_rank(), cn_nranks(), &tile0, &tile1);
    const int nth = cn_threads();
    for (int64_t tt = tile0; tt < tile1 && rc == CN_OK; tt++) {
        const int64_t t0 = tt * TT, nt = CN_MIN(TT, n_text - t0);
        for (int64_t t = 0; t < nt; t++) topk_init(&per_txt[t]);
        for (int64_t i0 = 0; i0 < n_img && rc == CN_OK; i0 += TI) {
            const int64_t ni = CN_MIN(TI, n_img - i0);
            if ((rc = load_tile(&src, i0, ni, t0, nt, i0 > 0, S))) break;
#pragma omp parallel for schedule(static) num_threads(nth)
            for (int64_t t = 0; t < nt; t++) {  // text -> image: this tile's images as candidates
                const int64_t own = image_index[(t0 + t) / V];
                for (int64_t i = 0; i < ni; i++) {
                    float s = S[i * nt + t];
                    topk_push(&per_txt[t], s);
                    if (i0 + i == own && !isnan(s)) per_txt[t].own = s;
                }
            }
#pragma omp parallel for schedule(static) num_threads(nth)
            for (int64_t i = 0; i < ni; i++) {  // image -> text: this tile's base texts as candidates
                if (base < 0) continue;
                TopK *q = &per_img[i0 + i];
                for (int64_t t = (base - t0 % V + V) % V; t < nt; t += V) {
                    float s = S[i * nt + t];
                    topk_push(q, s);
                    if (image_index[(t0 + t) / V] == i0 + i && !isnan(s) && s > q->own) q->own = s;
                }
            }
        }
        for (int64_t t = 0; t < nt && rc == CN_OK; t++) {
            const int v = (int)((t0 + t) % V);
            if (per_txt[t].own == -INFINITY) continue;  // text or its image failed: not a query
            hits[v * 4 + 0]++;
            hits[v * 4 + 1] += topk_hit(&per_txt[t], 1);
            hits[v * 4 + 2] += topk_hit(&per_txt[t], 5);
            hits[v * 4 + 3] += topk_hit(&per_txt[t], 10);
        }
    }
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (worst != CN_OK) {
        if (rc == CN_OK) rc = cn_fail(worst, "another rank failed during retrieval");
        goto done;
    }
    MPI_Allreduce(MPI_IN_PLACE, hits, V * 4, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    MPI_Datatype topk_type;
    MPI_Op merge;
    MPI_Type_contiguous((int)sizeof(TopK), MPI_BYTE, &topk_type);
    MPI_Type_commit(&topk_type);
    MPI_Op_create(topk_merge_op, 1, &merge);
    for (int64_t i0 = 0; i0 < n_img; i0 += 1 << 20)  // chunks keep MPI's int count in range
        MPI_Allreduce(MPI_IN_PLACE, per_img + i0, (int)CN_MIN(1 << 20, n_img - i0), topk_type, merge, MPI_COMM_WORLD);
    MPI_Op_free(&merge);
    MPI_Type_free(&topk_type);

    for (int v = 0; v < V; v++) {
        int64_t nq = hits[v * 4];
        r->t2i_n[v] = nq;
        if (nq == 0) continue;
        r->t2i_r1[v] = (double)hits[v * 4 + 1] / (double)nq;
        r->t2i_r5[v] = (double)hits[v * 4 + 2] / (double)nq;
        r->t2i_r10[v] = (double)hits[v * 4 + 3] / (double)nq;
    }
    int64_t iq = 0, ih[3] = {0, 0, 0};
    for (int64_t i = 0; i < n_img; i++) {
        if (per_img[i].own == -INFINITY) continue;
        iq++;
        ih[0] += topk_hit(&per_img[i], 1);
        ih[1] += topk_hit(&per_img[i], 5);
        ih[2] += topk_hit(&per_img[i], 10);
    }
    r->i2t_n = iq;
    if (iq > 0) {
        r->i2t_r1 = (double)ih[0] / (double)iq;
        r->i2t_r5 = (double)ih[1] / (double)iq;
        r->i2t_r10 = (double)ih[2] / (double)iq;
    }
done:
    free(image_index);
    free(hits);
    free(per_img);
    free(per_txt);
    free(S);
    free(src.img_cache);
    free(src.img_buf);
    free(src.txt_buf);
    return rc;
}
