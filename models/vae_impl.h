// models/vae_impl.h: what models/vae.c and models/vae_tiled.c share behind models/vae.h.
//
//   vae.c          config and loading
//   vae_forward.c  the encoder and decoder passes (device level)
//   vae_tiled.c  images on the host: tiled decode / encode with diffusers' blending,
//                sampling, latent scaling, host <-> device copies
#pragma once
#include "models/vae.h"


// The raw encoder output (AutoencoderKL._encode without tiling): moments (B, 2*latent,
// H', W') on the model's device, from x (B, in_channels, H, W) there.
int vae_encode_moments(const Vae *m, const Tensor *x, Tensor *moments, Arena *ws, char *err,
                       size_t errlen);
size_t vae_encode_moments_scratch_bytes(const Vae *m, int B, int H, int W);

// Mid-block attention on CUDA runs as matmul + softmax over blocks of queries whose
// score matrix (rows, L) stays under this many bytes (CUDA's flash kernel holds head
// dims <= 160 in f16/bf16, and the VAE's single head is 512 wide). Tests set
// vae_attn_chunked to run that path on the CPU too.
#define VAE_ATTN_SCORE_BYTES ((size_t)256 << 20)
extern int vae_attn_chunked;
extern size_t vae_attn_score_bytes;
