// encoder_cpu.c — the CPU entry points of encoder.h that are not a tower of their own: the image
// entry (argument checks, then the ViT or ResNet tower) and L2 normalisation. The text entry
// points live with their tower in encoder_text.c.
#include <math.h>
#include <stddef.h>

#include "clipneg/common.h"
#include "clipneg/encoder.h"
#include "encoder_common.h"

int encode_images_cpu(const ClipModel *m, const float *pixels, int B, float *out) {
    if (m == NULL || m->memory == NULL) return cn_fail(CN_E_INTERNAL, "encode_images_cpu: no model loaded");
    if (B < 0) return cn_fail(CN_E_INTERNAL, "encode_images_cpu: negative batch size %d", B);
    if (B == 0) return CN_OK;
    if (pixels == NULL || out == NULL) return cn_fail(CN_E_INTERNAL, "encode_images_cpu: NULL buffer");
    if (m->cfg.vision_kind == CLIP_VISION_RESNET) {
        if (m->bottlenecks == NULL) return cn_fail(CN_E_MODEL, "encode_images_cpu: model has no ResNet weights");
        return resnet_encode_images(m, pixels, B, out);
    }
    if (m->patch_w == NULL || m->vis_blocks == NULL)
        return cn_fail(CN_E_MODEL, "encode_images_cpu: model has no vision transformer weights");
    return vit_encode_images(m, pixels, B, out);
}

void l2_normalize_rows(float *x, int B, int D) {
    for (int b = 0; b < B; b++) {
        float *row = x + (size_t)b * D;
        double ss = 0.0;
        for (int d = 0; d < D; d++) ss += (double)row[d] * row[d];
        // F.normalize: x / max(||x||, eps), eps = 1e-12
        double norm = sqrt(ss);
        float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
        for (int d = 0; d < D; d++) row[d] *= inv;
    }
}
