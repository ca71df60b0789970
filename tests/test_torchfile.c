// test_torchfile.c — PyTorch checkpoints (tests/fixtures/torch/, written by torch/open_clip in
// tests/reference/make_torch_fixtures.py) load to the same model as the same weights in safetensors.
//
//  * every wrapper (bare state dict fp32/fp16/bf16, open_clip training checkpoint with `module.`,
//    CoN-CLIP {"model", ...}, CLIP-bnl `clip_model.`, TorchScript fp16) -> ClipModel.memory
//    byte-identical to the reference safetensors of its dtype (written by safetensors.torch from the
//    same state dict), the same tensor count, and the container / wrapper / prefix reported;
//  * fp32 files: image and text embeddings within 1e-4 of open_clip's (the tolerance of
//    test_encoders' tiny fixtures: fp32 through 1-2 layers; a wrong activation or a swapped tensor
//    moves them by > 1e-2), QuickGELU chosen because no config lies beside the file;
//  * the non-contiguous view is refused by name; the job's state_key / strip_prefix work and a
//    wrong one is refused with the candidates listed.
// Hostile files (os.system, zip bombs, truncation, ...) are tests/python/test_torchfile.py.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "clipneg/model.h"
#include "clipneg/safetensors.h"
#include "clipneg/torchfile.h"
#include "test_check.h"

#define TOL 1e-4
#define DIR "tests/fixtures/torch/"

static ClipLoadOptions opts(void) {
    // No config travels with a bare PyTorch file; the micro model is 16 wide with 2 heads (8 wide:
    // OpenAI's 64-wide default would not divide it).
    ClipLoadOptions o = CLIP_LOAD_OPTIONS_DEFAULT;
    o.vision_heads = 2;
    o.text_heads = 2;
    return o;
}

static int load(ClipModel *m, const char *path, const ClipLoadOptions *o) {
    int rc = clip_model_load(m, path, o);
    CHECK_MSG(rc == CN_OK, "%s: load failed: %s", path, cn_last_error());
    return rc == CN_OK;
}

static float *read_f32(const SafeTensors *st, const char *name, int64_t *numel) {
    const StTensor *t = safetensors_find(st, name);
    if (!t) {
        fprintf(stderr, "%s: no tensor %s\n", st->path, name);
        exit(1);
    }
    float *d = mallocCheck((size_t)t->numel * sizeof(float));
    if (safetensors_to_f32(t, d) != CN_OK) exit(1);
    *numel = t->numel;
    return d;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double w = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= w)) w = d;
    }
    return w;
}

static void check_embeddings(const ClipModel *m, const char *name) {
    SafeTensors st;
    if (safetensors_open(&st, DIR "expected.safetensors") != CN_OK) {
        CHECK_MSG(0, "%s", cn_last_error());
        return;
    }
    int64_t np, ni, nt;
    float *pix = read_f32(&st, "pixels", &np), *img_ref = read_f32(&st, "image_embeds", &ni);
    float *txt_ref = read_f32(&st, "text_embeds", &nt);
    const StTensor *tk = safetensors_find(&st, "tokens");
    int32_t *ids = mallocCheck((size_t)tk->numel * sizeof(int32_t));
    CHECK(safetensors_to_i32(tk, ids) == CN_OK);
    int n_img = (int)(ni / m->cfg.embed_dim), n_txt = (int)tk->shape[0];
    float *img = mallocCheck((size_t)ni * sizeof(float)), *txt = mallocCheck((size_t)nt * sizeof(float));
    CHECK(encode_images_cpu(m, pix, n_img, img) == CN_OK);
    CHECK(encode_texts_cpu(m, ids, n_txt, txt) == CN_OK);
    double di = max_diff(img, img_ref, ni), dt = max_diff(txt, txt_ref, nt);
    printf("  %-18s image max|diff| %.2e, text max|diff| %.2e vs open_clip (tol %.0e)\n", name, di, dt, TOL);
    CHECK_MSG(di <= TOL && dt <= TOL, "%s: embeddings differ from open_clip's (%g, %g)", name, di, dt);
    free(pix);
    free(img_ref);
    free(txt_ref);
    free(ids);
    free(img);
    free(txt);
    safetensors_close(&st);
}

typedef struct {
    const char *file, *ref, *source;
    int embeddings;  // fp32: compare with open_clip's outputs
} Case;

static void check_case(const Case *c) {
    ClipLoadOptions o = opts();
    ClipModel m, r;
    if (!load(&m, c->file, &o)) return;
    if (!load(&r, c->ref, &o)) {
        clip_model_free(&m);
        return;
    }
    int same = m.n_params == r.n_params && !memcmp(m.memory, r.memory, m.n_params * sizeof(float));
    printf("%s: %s; %d tensors; %s; memory %s %s\n", c->file, m.source, m.n_tensors, m.cfg.name,
           same ? "==" : "!=", c->ref);
    CHECK_MSG(same, "%s: weights differ from %s", c->file, c->ref);
    CHECK_INT(m.n_tensors, r.n_tensors);
    CHECK_STR(m.source, c->source);
    CHECK_INT(m.cfg.quick_gelu, 1);  // no config beside it: OpenAI's QuickGELU
    CHECK_INT(m.cfg.logit_scale == r.cfg.logit_scale, 1);
    if (c->embeddings) check_embeddings(&m, c->file);
    clip_model_free(&m);
    clip_model_free(&r);
}

static void expect_fail(const char *path, const ClipLoadOptions *o, const char *needle) {
    ClipModel m;
    int rc = clip_model_load(&m, path, o);
    CHECK_MSG(rc == CN_E_MODEL && strstr(cn_last_error(), needle) && strstr(cn_last_error(), path),
              "%s: expected a failure naming the file and '%s', got %d: %s", path, needle, rc, cn_last_error());
    printf("  refused: %s\n", cn_last_error());
    if (rc == CN_OK) clip_model_free(&m);
}

int main(void) {
    static const Case cases[] = {
        {DIR "bare_f32.pt", DIR "ref_f32.safetensors", "torch.save, bare state dict", 1},
        {DIR "bare_f16.pt", DIR "ref_f16.safetensors", "torch.save, bare state dict", 0},
        {DIR "bare_bf16.pth", DIR "ref_bf16.safetensors", "torch.save, bare state dict", 0},
        {DIR "openclip_train.pt", DIR "ref_f32.safetensors", "torch.save, key 'state_dict', prefix stripped: module.",
         1},
        {DIR "conclip.pt", DIR "ref_f32.safetensors", "torch.save, key 'model'", 1},
        {DIR "clipbnl.pth.tar", DIR "ref_f32.safetensors", "torch.save, key 'model', prefix stripped: clip_model.", 1},
        {DIR "jit_f16.pt", DIR "ref_f16.safetensors",
         "TorchScript, module attributes of __torch__.open_clip.model.CLIP", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i]);

    ClipLoadOptions o = opts();
    expect_fail(DIR "noncontig.pt", &o, "tensor 'text_projection' is a non-contiguous view");

    // The job keys: an explicit state_key / strip_prefix give the same weights ...
    ClipModel a, b;
    o.state_key = "state_dict";
    o.strip_prefix = "module.";
    if (load(&a, DIR "openclip_train.pt", &o)) {
        ClipLoadOptions o2 = opts();
        if (load(&b, DIR "bare_f32.pt", &o2)) {
            CHECK(a.n_params == b.n_params && !memcmp(a.memory, b.memory, a.n_params * sizeof(float)));
            CHECK_STR(a.source, "torch.save, key 'state_dict' (state_key), prefix stripped: module.");
            clip_model_free(&b);
        }
        clip_model_free(&a);
    }
    // ... and wrong ones are refused with what is there.
    o.state_key = "optimizer";
    o.strip_prefix = NULL;
    expect_fail(DIR "openclip_train.pt", &o, "'state_dict' (dict, 38 tensors)");
    o.state_key = NULL;
    o.strip_prefix = "visual.";
    o.force_quick_gelu = 0;
    expect_fail(DIR "conclip.pt", &o, "not a");  // only the vision tower left: not a CLIP checkpoint
    o.strip_prefix = "nothing.";
    expect_fail(DIR "conclip.pt", &o, "no tensor name starts with strip_prefix 'nothing.'");

    // torchfile_open directly: the table is sorted and every tensor found by name.
    SafeTensors st;
    TorchFileInfo info;
    TorchFileOptions to = {NULL, NULL};
    if (torchfile_open(&st, &info, DIR "jit_f16.pt", &to) == CN_OK) {
        CHECK_STR(info.kind, "TorchScript");
        for (int i = 0; i < st.n; i++) CHECK(safetensors_find(&st, st.tensors[i].name) == &st.tensors[i]);
        CHECK(safetensors_find(&st, "visual.transformer.resblocks.0.attn.in_proj_weight") != NULL);
        safetensors_close(&st);
    } else CHECK_MSG(0, "%s", cn_last_error());

    printf("%s\n", g_failures ? "FAILED" : "all ok");
    return g_failures ? 1 : 0;
}
