// image.h — decode (stb_image) and CLIP preprocessing, faithful to open_clip's PIL pipeline:
// Resize(R, bicubic, antialias) on the shorter side -> CenterCrop(R) -> RGB -> ToTensor -> Normalize.
#ifndef CLIPNEG_IMAGE_H
#define CLIPNEG_IMAGE_H

#include <stddef.h>
#include <stdint.h>

// Refuse images whose header claims more pixels than this before allocating (decompression bombs).
#define IMAGE_MAX_PIXELS (100LL * 1000 * 1000)

extern const float CLIP_MEAN[3]; // 0.48145466, 0.4578275, 0.40821073
extern const float CLIP_STD[3];  // 0.26862954, 0.26130258, 0.27577711

// Decode an image file/buffer to 8-bit RGB, row-major HWC. Grayscale is expanded, alpha dropped
// (as PIL's convert("RGB")), 16-bit reduced to 8-bit. Returns CN_OK or CN_E_IMAGE with a message
// naming the file and the reason. *rgb is malloc'ed.
int image_load_rgb(const char *path, uint8_t **rgb, int *w, int *h);
int image_decode_rgb(const uint8_t *buf, size_t len, const char *name, uint8_t **rgb, int *w, int *h);

// rgb [h, w, 3] -> out [3, R, R] normalised with mean/std.
int image_preprocess(const uint8_t *rgb, int w, int h, int R, const float mean[3], const float std[3], float *out);

// Both steps with CLIP's mean/std.
int image_load_preprocess(const char *path, int R, float *out);

// ---- the steps of image_preprocess, exposed for tests and tools (src/image_resize.c) ----------
// Largest crop size R accepted (CLIP uses 224..448).
#define IMAGE_MAX_SIZE 4096

// torchvision Resize(R) size rule: shorter side -> R, longer -> int(R * long / short).
int image_resize_dims(int w, int h, int R, int *new_w, int *new_h);
// PIL 9.4 Image.resize((new_w, new_h), BICUBIC) of an RGB8 image [h, w, 3] -> out [new_h, new_w, 3],
// byte-identical to PIL. The _region variant computes only the window [x0, x0+cw) x [y0, y0+ch)
// of the resized image (out [ch, cw, 3]): the same bytes PIL gives there, without the rest.
int image_resize_bicubic(const uint8_t *rgb, int w, int h, int new_w, int new_h, uint8_t *out);
int image_resize_bicubic_region(const uint8_t *rgb, int w, int h, int new_w, int new_h, int x0, int y0, int cw, int ch,
                                uint8_t *out);
// Resize(R) + CenterCrop(R) in 8 bits: out [R, R, 3], the PIL image open_clip hands to ToTensor.
int image_resize_crop_rgb8(const uint8_t *rgb, int w, int h, int R, uint8_t *out);
// ToTensor + Normalize: hwc [npix, 3] uint8 -> chw [3, npix] float32 ((v / 255 - mean) / std).
void image_normalize(const uint8_t *hwc, int npix, const float mean[3], const float std[3], float *chw);

#endif
