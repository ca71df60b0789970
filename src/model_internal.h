// model_internal.h — shared by the three loader files (not a public API):
//   model_infer.c  architecture from tensor shapes + config files, seed names, describe()
//   model_names.c  the tensor-name mapping: which checkpoint tensor(s) fill which ClipModel field
//   model_load.c   finding the files, binding, converting to fp32, BatchNorm folding
#ifndef CLIPNEG_MODEL_INTERNAL_H
#define CLIPNEG_MODEL_INTERNAL_H

#include "clipneg/model.h"
#include "clipneg/safetensors.h"

// Where each tower's tensors live in the checkpoint's name space.
typedef struct {
    const SafeTensors *st;
    ClipLayout layout;
    const char *text_prefix;  // open_clip: "" (CLIP) or "text." (CustomTextCLIP); HF: ""
} KeySpace;

// Decide the layout from the tensor names. CN_OK or CN_E_MODEL ("not a CLIP checkpoint ...").
int clip_detect_layout(const SafeTensors *st, KeySpace *ks);

// Fill every shape-derived field of `c` (heads = 0, quick_gelu = -1: not known from shapes).
int clip_infer_shapes(const KeySpace *ks, ClipConfig *c);

// Read an open_clip_config.json / open_clip model config / HF config.json and apply what it says
// (activation, heads, LayerNorm eps) to `c`, after checking that every dimension it declares
// agrees with the shapes. `*found_act` / `*found_vh` / `*found_th` report what it set. `opt` only
// matters for an HF config whose towers disagree on the activation (allowed when it is forced).
int clip_apply_config_file(ClipConfig *c, const char *path, const ClipLoadOptions *opt, int *found_act,
                           int *found_vh, int *found_th);

// Defaults for what neither the shapes nor a config decided (OpenAI: QuickGELU, 64-wide heads),
// then the job's overrides, then validation (heads divide widths). Finally names the shape.
int clip_finish_config(ClipConfig *c, const ClipLoadOptions *opt, int found_act, int found_vh, int found_th,
                       const char *file);

// One parameter of ClipModel and where its values come from.
typedef enum {
    BIND_COPY,       // one tensor, same shape
    BIND_TRANSPOSE,  // one 2-D tensor stored [b, a] for a destination [a, b] (HF projections)
    BIND_CONCAT3,    // three tensors [n/3, ...] stacked along dim 0 (HF q/k/v -> fused in_proj)
    BIND_COMPUTED,   // no tensor: filled at load (the bias a folded BatchNorm leaves)
} BindKind;

typedef struct {
    float **dst;            // the ClipModel field that will point into ClipModel.memory
    int ndim;
    int64_t shape[4];       // destination shape (PyTorch conventions, see model.h)
    int64_t numel;
    BindKind kind;
    const StTensor *src[3];
} Binding;

// A BatchNorm folded into the convolution before it (eval mode: running statistics, eps 1e-5).
typedef struct {
    ClipConv *conv;
    const StTensor *weight, *bias, *mean, *var;
} BnFold;

typedef struct {
    const KeySpace *ks;
    const ClipConfig *cfg;
    Binding *b;
    int n, cap;
    BnFold *bn;
    int n_bn, cap_bn;
    const StTensor *logit_scale;
} BindList;

// Build the binding list for every parameter of `m` (m->cfg set, block arrays allocated here).
// Looks every tensor up, checks presence, dtype and shape, and marks it used (exactly once).
int clip_bind_all(ClipModel *m, const KeySpace *ks, BindList *bl);
void clip_bind_free(BindList *bl);

// Buffers some checkpoints carry that are not parameters (attn_mask, position_ids, BatchNorm's
// num_batches_tracked, OpenAI's input_resolution/context_length/vocab_size).
int clip_name_ignorable(const char *name);

// "[768, 3, 32, 32]"
void clip_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

#endif
