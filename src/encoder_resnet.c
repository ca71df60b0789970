// encoder_resnet.c — open_clip's ModifiedResNet (RN50, RN101, RN50x4/x16/x64) on the CPU.
//
//   stem: conv3x3 s2 -> relu -> conv3x3 -> relu -> conv3x3 -> relu -> avgpool 2   (BN folded)
//   4 stages of bottlenecks:
//     out = relu(conv1x1(x)); out = relu(conv3x3(out)); out = avgpool(stride)(out) if stride > 1
//     out = conv1x1(out); identity = x, or conv1x1(avgpool(stride)(x)) when downsampling
//     x = relu(out + identity)
//   attention pooling (mean token as the only query) -> out [B, D]
// Activations are NCHW. Every conv is im2col + one sgemm per image (ops_cpu.c).
#include <stdlib.h>

#include "clipneg/common.h"
#include "clipneg/ops.h"
#include "encoder_common.h"

// Buffer sizes for one image: the largest activation (C*H*W) and the largest im2col matrix.
typedef struct {
    long act;  // floats
    long col;  // floats
} ResNetSizes;

static void track_conv(ResNetSizes *s, const ClipConv *cv, int H, int stride, int pad) {
    int Ho = (H + 2 * pad - cv->k) / stride + 1;
    long out = (long)cv->oc * Ho * Ho;
    long col = (long)cv->ic * cv->k * cv->k * Ho * Ho;
    if (out > s->act) s->act = out;
    if (cv->k != 1 && col > s->col) s->col = col;
    if (cv->k == 1 && stride != 1 && col > s->col) s->col = col;
}

// Walks the same shapes as resnet_forward without computing. Returns the final feature size.
static int resnet_sizes(const ClipModel *m, ResNetSizes *s) {
    int R = m->cfg.image_size, H = R;
    s->act = (long)3 * R * R;
    s->col = 1;
    track_conv(s, &m->stem[0], H, 2, 1);
    H = (H + 2 - 3) / 2 + 1;
    track_conv(s, &m->stem[1], H, 1, 1);
    track_conv(s, &m->stem[2], H, 1, 1);
    H /= 2;
    int nb = 0;
    for (int st = 0; st < 4; st++) nb += m->cfg.resnet_layers[st];
    for (int i = 0; i < nb; i++) {
        const ClipBottleneck *bn = &m->bottlenecks[i];
        track_conv(s, &bn->conv1, H, 1, 0);
        track_conv(s, &bn->conv2, H, 1, 1);
        int Hs = H / bn->stride;
        track_conv(s, &bn->conv3, Hs, 1, 0);
        if (bn->down.w != NULL) track_conv(s, &bn->down, Hs, 1, 0);
        H = Hs;
    }
    return H;
}

// conv (+ folded BN bias) on B images of C=cv->ic channels, H x H.
static void conv(float *out, const float *inp, const ClipConv *cv, float *col, int B, int H, int stride, int pad) {
    conv2d_forward(out, inp, cv->w, cv->b, col, B, cv->ic, H, H, cv->oc, cv->k, stride, pad);
}

// One bottleneck. x [B, IC, H, H] -> y [B, OC, H/s, H/s]. t1, t2, z: scratch activations.
static void bottleneck_forward(const ClipBottleneck *bn, float *y, const float *x, float *t1, float *t2, float *z,
                               float *col, int B, int H) {
    int s = bn->stride, Hs = H / s;
    long n1 = (long)B * bn->conv1.oc * H * H;
    conv(t1, x, &bn->conv1, col, B, H, 1, 0);
    relu_forward(t1, n1);
    conv(t2, t1, &bn->conv2, col, B, H, 1, 1);
    relu_forward(t2, (long)B * bn->conv2.oc * H * H);
    const float *mid = t2;
    if (s > 1) {
        avgpool2d_forward(t1, t2, B, bn->conv2.oc, H, H, s);
        mid = t1;
    }
    conv(y, mid, &bn->conv3, col, B, Hs, 1, 0);
    const float *identity = x;
    if (bn->down.w != NULL) {
        const float *src = x;
        if (s > 1) {
            avgpool2d_forward(t2, x, B, bn->down.ic, H, H, s);
            src = t2;
        }
        conv(z, src, &bn->down, col, B, Hs, 1, 0);
        identity = z;
    }
    long n3 = (long)B * bn->conv3.oc * Hs * Hs;
    residual_forward(y, y, identity, n3);
    relu_forward(y, n3);
}

int resnet_encode_images(const ClipModel *m, const float *pixels, int B, float *out) {
    const ClipConfig *c = &m->cfg;
    int R = c->image_size, D = c->embed_dim, E = 32 * c->vision_width, NH = c->vision_heads;
    if (R < 32 || NH <= 0 || E % NH != 0)
        return cn_fail(CN_E_MODEL, "modified resnet: bad shape (R=%d width=%d heads=%d)", R, c->vision_width, NH);
    ResNetSizes sz;
    int Hf = resnet_sizes(m, &sz);
    int HW = Hf * Hf;
    long ap_scratch = attnpool_scratch_floats(1, E, HW);
    // Five activation buffers per image (x, y, t1, t2, z) + the attention-pool scratch.
    long per_image = (5 * sz.act + ap_scratch) * (long)sizeof(float);
    int chunk = encoder_chunk_items(per_image, B);
    size_t act = (size_t)chunk * sz.act;
    float *mem = mallocCheck((5 * act + (size_t)sz.col) * sizeof(float));
    float *x = mem, *y = x + act, *t1 = y + act, *t2 = t1 + act, *z = t2 + act, *col = z + act;
    float *ap = mallocCheck((size_t)attnpool_scratch_floats(chunk, E, HW) * sizeof(float));
    int nbn = 0;
    for (int st = 0; st < 4; st++) nbn += c->resnet_layers[st];

    for (int b0 = 0; b0 < B; b0 += chunk) {
        int nb = CN_MIN(chunk, B - b0);
        const float *img = pixels + (size_t)b0 * 3 * R * R;
        // stem
        int H = (R + 2 - 3) / 2 + 1;
        conv(t1, img, &m->stem[0], col, nb, R, 2, 1);
        relu_forward(t1, (long)nb * m->stem[0].oc * H * H);
        conv(t2, t1, &m->stem[1], col, nb, H, 1, 1);
        relu_forward(t2, (long)nb * m->stem[1].oc * H * H);
        conv(t1, t2, &m->stem[2], col, nb, H, 1, 1);
        relu_forward(t1, (long)nb * m->stem[2].oc * H * H);
        avgpool2d_forward(x, t1, nb, m->stem[2].oc, H, H, 2);
        H /= 2;
        // stages
        for (int i = 0; i < nbn; i++) {
            const ClipBottleneck *bn = &m->bottlenecks[i];
            bottleneck_forward(bn, y, x, t1, t2, z, col, nb, H);
            H /= bn->stride;
            float *tmp = x;
            x = y;
            y = tmp;
        }
        attnpool_forward(out + (size_t)b0 * D, x, m->ap_pos_emb, m->ap_q_w, m->ap_q_b, m->ap_k_w, m->ap_k_b,
                         m->ap_v_w, m->ap_v_b, m->ap_c_w, m->ap_c_b, ap, nb, E, HW, NH, D);
    }
    free(ap);
    free(mem);
    return CN_OK;
}
