// models/lpips.h: the LPIPS perceptual distance (Zhang et al. 2018) with the AlexNet
// backbone, as the lpips package (v0.1, LPIPS(net='alex')) computes it, on the CPU in f32.
//
// For two RGB images of one size (8-bit, mapped to [-1, 1] as lpips.im2tensor does:
// v / 127.5 - 1):
//   x        = (x - shift) / scale          shift (-.030, -.088, -.188), scale (.458, .448, .450)
//   features = torchvision's alexnet.features, tapped after the ReLUs of its 5 convs:
//     conv1 3->64 k11 s4 p2, relu                     -> f1 (64,  H1, W1)
//     maxpool k3 s2, conv2 64->192 k5 p2, relu        -> f2 (192, H2, W2)
//     maxpool k3 s2, conv3 192->384 k3 p1, relu       -> f3 (384, H3, W3)
//     conv4 384->256 k3 p1, relu                      -> f4 (256, H3, W3)
//     conv5 256->256 k3 p1, relu                      -> f5 (256, H3, W3)
//   n_k      = f_k / (sqrt(sum over channels of f_k^2) + 1e-10)   per pixel
//   d        = sum_k mean over pixels of lin_k((n_k(a) - n_k(b))^2)
//              lin_k: a 1x1 conv, C_k -> 1, no bias
// Frames need at least 31 pixels per side (the second max-pool must leave one pixel).
//
// Weights: one .safetensors with the LPIPS module's state_dict names (what
// torch's state_dict of lpips.LPIPS(net='alex') holds, shared tensors kept once):
//   net.slice1.0.{weight,bias} (64, 3, 11, 11)   net.slice2.3.* (192, 64, 5, 5)
//   net.slice3.6.* (384, 192, 3, 3)   net.slice4.8.* (256, 384, 3, 3)
//   net.slice5.10.* (256, 256, 3, 3)
//   lin{k}.model.1.weight (1, C_k, 1, 1), k = 0..4 (lins.{k}.model.1.weight and
//   model.0 — the layer without dropout — are read too)
//   scaling_layer.shift / scaling_layer.scale (1, 3, 1, 1): optional, the constants above
//   otherwise.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Lpips Lpips;
typedef struct LpipsFeatures LpipsFeatures;  // the 5 normalised feature maps of one image

// Reads the weights at path. Returns 0 and *out, or -1 with a message naming the file and
// the tensor (missing, wrong shape).
int lpips_load(Lpips **out, const char *path, char *err, size_t errlen);
void lpips_free(Lpips *m);  // NULL is ignored

// The normalised features of an RGB image rgb (h, w, 3) bytes. Returns 0 and *out (free
// with lpips_features_free), or -1 with a message when the image is too small.
int lpips_features(const Lpips *m, const uint8_t *rgb, int w, int h, LpipsFeatures **out, char *err,
                   size_t errlen);
void lpips_features_free(LpipsFeatures *f);  // NULL is ignored

// The distance of two images' features (of images of one size; symmetric).
double lpips_compare(const Lpips *m, const LpipsFeatures *a, const LpipsFeatures *b);

// lpips_features of both, then lpips_compare. Returns 0 and *d, or -1 with a message.
int lpips_distance(const Lpips *m, const uint8_t *a, const uint8_t *b, int w, int h, double *d,
                   char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
