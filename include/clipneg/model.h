// model.h — a CLIP checkpoint in memory: the inferred architecture and every parameter as fp32.
//
// Loaded from the files users download, without a conversion step:
//   * open_clip / OpenAI key names: DIR/open_clip_model.safetensors (+ open_clip_config.json),
//     or any *.safetensors with keys "visual.*", "transformer.*", "token_embedding.weight", ...
//   * PyTorch files (.pt/.pth/.bin/.pth.tar/.ckpt, torch.save or TorchScript), read by the data-only
//     reader of torchfile.h, in any of the layouts above
//   * HF transformers CLIPModel: DIR/model.safetensors + DIR/config.json
//     (q/k/v split -> fused here; projections stored transposed -> transposed here).
// The architecture is inferred from tensor shapes; activation and head counts come from the
// config file (OpenAI defaults when there is none) and can be overridden by the job.
// Every parameter is converted to fp32 into ONE allocation (`ClipModel.memory`) and carved into
// the named pointers below; shapes use PyTorch conventions (Linear weight = [out, in]).
// ModifiedResNet BatchNorms are folded into the preceding convolution at load time.
#ifndef CLIPNEG_MODEL_H
#define CLIPNEG_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CLIP_LAYOUT_OPEN_CLIP = 0, CLIP_LAYOUT_HF = 1 } ClipLayout;
typedef enum { CLIP_VISION_VIT = 0, CLIP_VISION_RESNET = 1 } ClipVisionKind;

typedef struct {
    ClipVisionKind vision_kind;
    int image_size;       // R: input resolution (224, 336, 384, ...)
    int embed_dim;        // D: joint embedding size
    // ViT tower
    int patch_size;       // P (0 for ResNet)
    int vision_width;     // ViT: width W;  ResNet: base width w (64 for RN50, 96 for RN50x16)
    int vision_layers;    // ViT: number of residual blocks (0 for ResNet: see resnet_layers)
    int vision_heads;     // ViT: W/64 by default; ResNet attnpool: 32*w/64
    int resnet_layers[4]; // ResNet: bottlenecks per stage (all 0 for ViT)
    int vision_mlp;       // ViT: MLP hidden width (4W); 0 for ResNet
    // text tower
    int vocab_size;       // 49408
    int context_length;   // 77
    int text_width;
    int text_heads;
    int text_layers;
    int text_mlp;         // 4 * text_width
    // shared
    int quick_gelu;       // 1: x*sigmoid(1.702x) (OpenAI weights), 0: exact erf GELU
    float ln_eps;         // 1e-5
    float logit_scale;    // exp() already applied (100 for trained OpenAI models)
    char name[64];        // a human label, e.g. "ViT-B/32" when recognised, else "ViT-W768-L12-P32-R224"
} ClipConfig;

typedef struct {             // one pre-LN transformer block (shapes for width C, mlp M)
    float *ln_1_w, *ln_1_b;  // [C]
    float *qkv_w, *qkv_b;    // [3C, C], [3C]   (q rows first, then k, then v)
    float *out_w, *out_b;    // [C, C], [C]
    float *ln_2_w, *ln_2_b;  // [C]
    float *fc_w, *fc_b;      // [M, C], [M]
    float *proj_w, *proj_b;  // [C, M], [C]
} ClipBlock;

typedef struct {              // conv (+ folded BatchNorm): weight [OC, IC, K, K], bias [OC]
    float *w, *b;
    int oc, ic, k;
} ClipConv;

typedef struct {              // ModifiedResNet bottleneck (expansion 4)
    ClipConv conv1, conv2, conv3; // 1x1, 3x3 (pad 1), 1x1; avgpool(stride) between conv2 and conv3
    ClipConv down;            // avgpool(stride) + 1x1 conv + bn; down.w == NULL when identity
    int stride;
} ClipBottleneck;

typedef struct {
    ClipConfig cfg;
    ClipLayout layout;
    // ---- ViT tower ----
    float *patch_w;          // [W, 3, P, P] (no bias)
    float *class_emb;        // [W]
    float *vis_pos_emb;      // [(R/P)^2 + 1, W]
    float *ln_pre_w, *ln_pre_b;   // [W]
    ClipBlock *vis_blocks;   // [vision_layers]
    float *ln_post_w, *ln_post_b; // [W]
    float *vis_proj;         // [W, D]  (x @ vis_proj, open_clip orientation)
    // ---- ModifiedResNet tower ----
    ClipConv stem[3];        // conv1 3->w/2 s2, conv2 w/2->w/2, conv3 w/2->w (3x3, pad 1), then avgpool 2
    ClipBottleneck *bottlenecks; // sum(resnet_layers), stage by stage
    float *ap_pos_emb;       // [(R/32)^2 + 1, E]  E = 32 w
    float *ap_q_w, *ap_q_b, *ap_k_w, *ap_k_b, *ap_v_w, *ap_v_b; // [E, E], [E]
    float *ap_c_w, *ap_c_b;  // [D, E], [D]
    // ---- text tower ----
    float *tok_emb;          // [vocab, Wt]
    float *txt_pos_emb;      // [context, Wt]
    ClipBlock *txt_blocks;   // [text_layers]
    float *ln_final_w, *ln_final_b; // [Wt]
    float *txt_proj;         // [Wt, D]
    // ---- storage ----
    float *memory;           // the single allocation every pointer above points into
    size_t n_params;         // floats in `memory` (BatchNorms folded, logit_scale not included)
    int n_tensors;           // tensors read from the checkpoint (ignored buffers not counted)
    char weights_path[4096]; // the safetensors file actually read
    char config_path[4096];  // the config file used ("" when none)
    char model_dir[4096];
    char source[512];         // container: "safetensors", or "TorchScript, key 'state_dict', prefix stripped: module."
    char activation_why[128]; // why cfg.quick_gelu has its value (job override, config file, default)
    char dtypes[128];         // stored dtypes of the checkpoint's tensors: "F16 x 150, F32 x 2"
} ClipModel;

// Options a job may force. Start from CLIP_LOAD_OPTIONS_DEFAULT (or pass NULL): note that
// force_quick_gelu = 0 FORCES exact GELU, so a zero-initialised struct is not "all defaults".
typedef struct {
    int force_quick_gelu;    // -1: from config (default), 0: GELU, 1: QuickGELU
    int vision_heads;        // 0: from config/default
    int text_heads;          // 0: from config/default
    const char *state_key;   // PyTorch files: the top-level entry holding the weights (NULL: detect)
    const char *strip_prefix; // PyTorch files: keep only names with this prefix, stripped (NULL: detect)
} ClipLoadOptions;
#define CLIP_LOAD_OPTIONS_DEFAULT {.force_quick_gelu = -1, .vision_heads = 0, .text_heads = 0}

// Load from a directory (see above) or a single .safetensors file. Returns CN_OK or CN_E_MODEL
// with a message naming the file and the tensor (and both shapes on a mismatch). `opt` may be NULL.
// On success `memory` holds exactly n_params floats (no padding), in a fixed order that depends
// only on the architecture, so two layouts of the same weights give byte-identical memory.
// On failure `m` is zeroed (clip_model_free is harmless). Docs: docs/models.md.
int clip_model_load(ClipModel *m, const char *path, const ClipLoadOptions *opt);
void clip_model_free(ClipModel *m);
// Human-readable architecture summary (for `clipneg inspect-model` and the HDF5 provenance).
void clip_config_describe(const ClipConfig *c, char *buf, size_t n);

#endif
