// models/vae.h: AutoencoderKL (the Stable Diffusion VAE) as diffusers computes it.
//
// Decoder (AutoencoderKL.decode(z), z (B, latent, h, w) -> image (B, out, h*f, w*f),
// f = 2^(len(block_out_channels) - 1), 8 for every SD / SDXL VAE):
//   post_quant_conv (1x1) -> decoder.conv_in (3x3)
//   mid_block: resnet, attention, resnet
//   up_blocks[i]: layers_per_block + 1 resnets, then (all but the last) nearest 2x + conv 3x3
//   conv_norm_out + SiLU -> conv_out
// Encoder (AutoencoderKL.encode(x).latent_dist):
//   encoder.conv_in -> down_blocks[i]: layers_per_block resnets, then (all but the last)
//   Downsample2D: zero pad (0, 1, 0, 1) (right and bottom only), conv 3x3 stride 2, no padding
//   mid_block -> conv_norm_out + SiLU -> conv_out -> quant_conv (1x1) = moments (B, 2*latent, ...)
//   mean, logvar = moments split along channels; logvar clamped to [-30, 20]
//   (DiagonalGaussianDistribution); a sample is mean + exp(logvar / 2) * noise.
// ResnetBlock2D: h = conv1(silu(gn1(x))); h = conv2(silu(gn2(h))); out = shortcut(x) + h,
// shortcut a 1x1 conv_shortcut when channels change. Groups norm_num_groups, eps 1e-6.
// Mid-block attention (diffusers' Attention with heads = channels / attention_head_dim =
// 1): tokens are the h*w positions, one head of all C channels, scale 1/sqrt(C):
// out = x + to_out.0(softmax(q k^T / sqrt(C)) v), q/k/v = to_q/to_k/to_v(group_norm(x)).
//
// Latent scaling is the caller's (as in diffusers, where the pipeline does it):
// vae_decode takes z already divided by scaling_factor -- call vae_latents_unscale on the
// UNet's latents first -- and vae_encode returns the unscaled distribution: multiply a
// sample by scaling_factor with vae_latents_scale before it goes to the UNet.
//
// Precision: the CPU computes in f32. On CUDA the VAE runs in the dtype given to
// vae_load; vae_default_dtype picks f32 when the config says force_upcast (SD1.x/2.x and
// the SDXL VAE, whose activations overflow f16) and f16 otherwise (e.g. the
// "sdxl-vae-fp16-fix" weights, whose config sets force_upcast false).
//
// Tiling (vae_decode_image / vae_encode_image with a VaeTiling): diffusers'
// AutoencoderKL tiled_decode / _tiled_encode, the same tiles, overlaps and linear
// blends, so the result equals diffusers with enable_tiling(). Device memory then
// depends on the tile size only; the image itself is assembled on the host.
//
// Tensor names are diffusers' ("decoder.up_blocks.1.resnets.0.conv1.weight"), read
// through models/weights.h, so diffusers folders and single-file checkpoints load the
// same way. Folders of older diffusers versions, whose mid-block attention is named
// query/key/value/proj_attn, load too.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "kernels/tensor.h"
#include "models/weights.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VAE_MAX_BLOCKS 8
#define VAE_MAX_LATENT 64

// The keys of diffusers' AutoencoderKL config.json.
typedef struct {
    int in_channels, out_channels;           // 3, 3
    int latent_channels;                     // 4 (SD, SDXL)
    int nblocks;                             // len(block_out_channels)
    int block_out_channels[VAE_MAX_BLOCKS];  // 128, 256, 512, 512
    int layers_per_block;                    // 2
    int norm_num_groups;                     // 32
    int sample_size;                         // 512 (SD1.x), 768, 1024 (SDXL): the default tile size
    float scaling_factor;                    // 0.18215 (SD1.x/2.x), 0.13025 (SDXL)
    float shift_factor;                      // 0 when null
    int has_latents_stats;  // latents_mean and latents_std given (both, per channel)
    float latents_mean[VAE_MAX_LATENT], latents_std[VAE_MAX_LATENT];
    bool force_upcast;  // f16 overflows: run in f32 (see vae_default_dtype)
    bool use_quant_conv, use_post_quant_conv, mid_block_add_attention;
} VaeConfig;

// Reads w's "vae" config. Returns 0, or -1 with a message naming the config and the key.
int vae_config(VaeConfig *cfg, const Weights *w, char *err, size_t errlen);
// The same from a parsed config.json.
int vae_config_parse(VaeConfig *cfg, const JsonDoc *doc, char *err, size_t errlen);

// Spatial factor between image and latent: 2^(nblocks - 1).
int vae_scale_factor(const VaeConfig *cfg);

// The dtype vae_load should use on dev: f32 on the CPU; on CUDA f32 when force_upcast,
// else f16.
DType vae_default_dtype(const VaeConfig *cfg, Device dev);

typedef struct {
    Tensor norm1_w, norm1_b, conv1_w, conv1_b;  // (Ci), (Co, Ci, 3, 3)
    Tensor norm2_w, norm2_b, conv2_w, conv2_b;  // (Co), (Co, Co, 3, 3)
    Tensor short_w, short_b;                    // (Co, Ci, 1, 1); data NULL when Ci == Co
    int cin, cout;
} VaeResnet;

typedef struct {
    VaeResnet res[2];
    int has_attn;
    Tensor norm_w, norm_b;                          // (C)
    Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;  // (C, C), (C)
} VaeMid;

typedef struct {
    VaeResnet *res;  // nblocks * layers_per_block, block-major
    Tensor down_w[VAE_MAX_BLOCKS], down_b[VAE_MAX_BLOCKS];  // all but the last block
    Tensor conv_in_w, conv_in_b, norm_out_w, norm_out_b, conv_out_w, conv_out_b;
    VaeMid mid;
    Tensor quant_w, quant_b;  // (2L, 2L, 1, 1); data NULL without quant_conv
} VaeEncoder;

typedef struct {
    VaeResnet *res;  // nblocks * (layers_per_block + 1), up_blocks order
    Tensor up_w[VAE_MAX_BLOCKS], up_b[VAE_MAX_BLOCKS];  // all but the last up block
    Tensor conv_in_w, conv_in_b, norm_out_w, norm_out_b, conv_out_w, conv_out_b;
    VaeMid mid;
    Tensor post_quant_w, post_quant_b;  // (L, L, 1, 1); data NULL without post_quant_conv
} VaeDecoder;

enum { VAE_DECODER = 1, VAE_ENCODER = 2, VAE_BOTH = 3 };

typedef struct {
    VaeConfig cfg;
    int parts;    // VAE_DECODER | VAE_ENCODER: what was loaded
    DType dtype;  // of weights and activations
    Device dev;
    VaeEncoder enc;
    VaeDecoder dec;
} Vae;

// Bytes of the weights arena vae_load takes for `parts` in dtype dt (alignment included).
size_t vae_weight_bytes(const VaeConfig *cfg, int parts, DType dt);
// Number of weights (values) of `parts` of cfg's architecture.
int64_t vae_param_count(const VaeConfig *cfg, int parts);

// Where a weight comes from: fills *out (allocated from arena, dtype dt) with the tensor
// named `name` (diffusers name within the vae) of exactly `ndim` dims `shape`. Returns 0,
// or -1 with a message.
typedef int (*VaeTensorSource)(void *ctx, const char *name, int ndim, const int64_t *shape,
                               Arena *arena, DType dt, Tensor *out, char *err, size_t errlen);

// Loads the parts (VAE_DECODER, VAE_ENCODER or both) of cfg's architecture from src into
// `arena` (host or device per arena->dev) in dtype dt (the CPU computes in f32 only).
// Returns 0, or -1 with a message (the first failing tensor).
int vae_load_source(Vae *m, const VaeConfig *cfg, int parts, VaeTensorSource src, void *ctx,
                    Arena *arena, DType dt, char *err, size_t errlen);
// vae_config + vae_load_source from w's "vae" component. Returns 0, or -1 with a message
// naming the file, the tensor and the shapes.
int vae_load(Vae *m, const Weights *w, int parts, Arena *arena, DType dt, char *err, size_t errlen);
void vae_free(Vae *m);  // host arrays; the tensors go with their arena

// ---- device-level passes (tensors on the model's device, in its dtype) -------------------

// AutoencoderKL.decode without tiling: z (B, latent, h, w) -> out (B, out_channels, h*f,
// w*f). Activations from ws (released again). Returns 0, or -1 with a message.
int vae_decode(const Vae *m, const Tensor *z, Tensor *out, Arena *ws, char *err, size_t errlen);
// Bytes of ws vae_decode needs for B latents of h x w (activations and the convolutions'
// workspace).
size_t vae_decode_scratch_bytes(const Vae *m, int B, int h, int w);

// AutoencoderKL.encode without tiling: x (B, in_channels, H, W) in [-1, 1] -> mean and
// logvar (B, latent, H', W') (either may be NULL), H' = H halved (rounding down) once per
// downsampling block; logvar clamped to [-30, 20]. Returns 0, or -1 with a message (an
// image too small for the downsampling).
int vae_encode(const Vae *m, const Tensor *x, Tensor *mean, Tensor *logvar, Arena *ws, char *err,
               size_t errlen);
size_t vae_encode_scratch_bytes(const Vae *m, int B, int H, int W);
// The latent size vae_encode gives for an image side of n pixels; 0 when n is too small.
int vae_latent_size(const VaeConfig *cfg, int n);

// out = mean + exp(logvar / 2) * noise (DiagonalGaussianDistribution.sample with the
// caller's torch.randn values); all four the same shape, any device and dtype each.
void vae_sample(Tensor *out, const Tensor *mean, const Tensor *logvar, const Tensor *noise);

// Latent scaling as diffusers' pipelines do it, in place on z (B, latent, h, w):
//   unscale (before decoding):  z = z / scaling_factor + shift_factor, or with
//                               latents_mean/std: z = z * std / scaling_factor + mean
//   scale (after encoding):     the inverse
void vae_latents_unscale(const Vae *m, Tensor *z);
void vae_latents_scale(const Vae *m, Tensor *z);

// ---- images on the host, optionally tiled ---------------------------------------------------

// diffusers' tiling parameters (AutoencoderKL attributes of the same names).
typedef struct {
    int tile_sample_min_size;    // pixels; diffusers' default: config sample_size
    int tile_latent_min_size;    // latents; tile_sample_min_size / scale factor
    double tile_overlap_factor;  // 0.25
} VaeTiling;

// diffusers' defaults for m (sample_size tiles, 1/4 overlap).
VaeTiling vae_tiling_default(const VaeConfig *cfg);

// AutoencoderKL.decode(z) with enable_tiling() when tiling is given (tiled when z is
// larger than a latent tile, as diffusers decides), plain otherwise. z: any device and
// dtype; out: host f32 (B, out_channels, h*f, w*f). Batch items, and tiles, are decoded
// one at a time on the model's device: ws needs vae_image_scratch_bytes.
int vae_decode_image(const Vae *m, const Tensor *z, Tensor *out, const VaeTiling *tiling, Arena *ws,
                     char *err, size_t errlen);

// AutoencoderKL.encode(x) likewise (tiled when x is larger than a sample tile): x any
// device and dtype, mean / logvar host f32 (either may be NULL), logvar clamped. Tiled,
// the latent grid is what the kept tile corners add up to: vae_image_latent_size.
int vae_encode_image(const Vae *m, const Tensor *x, Tensor *mean, Tensor *logvar,
                     const VaeTiling *tiling, Arena *ws, char *err, size_t errlen);

// ws bytes vae_decode_image / vae_encode_image take for latents of h x w (images of
// h*f x w*f): with tiling, those of one tile, whatever the image size.
size_t vae_image_scratch_bytes(const Vae *m, const VaeTiling *tiling, int h, int w);
// The latent size vae_encode_image gives for an image side of n pixels (tiling may be
// NULL); 0 when too small.
int vae_image_latent_size(const Vae *m, const VaeTiling *tiling, int n);

// Checks a tiling for m: sizes >= 1, tile_sample_min_size = tile_latent_min_size * f,
// tile_latent_min_size a multiple of 4 and overlap in [0, 1) (so tiles line up with the
// image the way diffusers' blending assumes). Returns 0, or -1 with a message.
int vae_tiling_check(const Vae *m, const VaeTiling *tiling, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
