// models/unet_internal.h: what the UNet's files share and nobody else needs.
#pragma once
#include "kernels/tensor.h"
#include "models/unet.h"

// An arena that hands out offsets from a fake base and is never written through: a
// dry run of the loader or of the forward pass fills its `peak` with the exact bytes.
Arena unet_counting_arena(Device dev);

// What unet_scratch_bytes adds to the dry run's peak for the convolutions' workspace: they
// take it from the arena when there is room and use their own buffers otherwise, so this
// buys speed (no extra allocations), not correctness.
#define UNET_CONV_MARGIN ((size_t)32 << 20)

// out (B, N, M) = x (B, M, N) with the last two dims swapped: (B, C, H*W) <-> (B, H*W, C),
// the token layout change of Transformer2DModel (op_transpose on either device).
void unet_swap_last2(Tensor *out, const Tensor *x);

// unet_attention with dry = 1: the same allocations from scratch, no arithmetic.
void unet_attention_impl(const UnetAttention *a, Tensor *out, const Tensor *x,
                         const Tensor *const *kv, int n, Arena *scratch, int dry);
