// models/rng.h: random numbers that reproduce PyTorch's CPU generator bit for bit, and a
// counter-based Philox-4x32-10 generator.
//
// torch's CPU generator (at::CPUGeneratorImpl) is a plain MT19937 seeded with the low 32
// bits of the seed (the full 64-bit seed is kept for initial_seed()), plus two one-value
// caches of Box-Muller's second sample (one double, one float) that manual_seed clears.
// torch.randn(shape, generator=g, dtype=torch.float32) draws numel values; only numel
// matters, not the shape. Its two paths:
//   numel >= 16 (normal_fill): numel uniforms u = (mt() & (2^24-1)) * 2^-24 first, then
//     Box-Muller in blocks of 16 over the pairs (j, j+8): r = sqrt(-2 log(1 - u_j)),
//     th = 2 pi u_{j+8}, out_j = r cos th, out_{j+8} = r sin th. When numel % 16 != 0 the
//     last 16 values are redrawn (16 more uniforms) and transformed again, overwriting
//     the tail. On x86-64 CPUs with AVX2 (every machine diffusers runs on in practice,
//     torch's "AVX2" and "AVX512" capabilities alike) log/sin/cos are the Cephes float
//     polynomials of torch's avx_mathfun.h as GCC compiles them (with FMA contraction);
//     RNG_TORCH_SCALAR reproduces torch's "DEFAULT" capability (libm logf/cosf/sinf).
//   numel < 16: one double Box-Muller per value from two 53-bit uniforms (random64),
//     r = sqrt(-2 log1p(-u2)), th = 2 pi u1, value r cos th rounded to float; r sin th is
//     cached in the generator and returned (rounded) by the next scalar-path draw.
// Diffusers draws the initial latents with one randn of the full (B, 4, H/8, W/8) shape
// and the ancestral noise of each Euler-a step with another randn of the step's output
// shape, all from the pipeline's generator: call rng_torch_randn in the same order.
//
// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11;
// the Random123 / cuRAND generator): a pure function of (counter, key), so any element of
// a random stream can be computed independently on any rank or device thread.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RNG_MT_N 624

// torch's default seed of a fresh torch.Generator() (c10 default_rng_seed_val).
#define RNG_TORCH_DEFAULT_SEED 67280421310721ULL

typedef struct {
    uint32_t state[RNG_MT_N];
    int left, next;  // MT19937 bookkeeping exactly as at::mt19937 keeps it
    uint64_t seed;
    int has_f64;  // cached second Box-Muller sample of the scalar (numel < 16) path
    double next_f64;
} TorchRng;

typedef enum {
    RNG_TORCH_AVX2 = 0,    // torch on x86-64 with AVX2/AVX512 (the usual case)
    RNG_TORCH_SCALAR = 1,  // torch's DEFAULT capability (no AVX2; libm log/cos/sin)
} RngTorchPath;

// torch.manual_seed(seed) / torch.Generator().manual_seed(seed).
void rng_torch_seed(TorchRng *g, uint64_t seed);
uint64_t rng_torch_initial_seed(const TorchRng *g);
uint32_t rng_torch_u32(TorchRng *g);  // generator->random()
uint64_t rng_torch_u64(TorchRng *g);  // generator->random64(): (first << 32) | second

// torch.randn(n, generator=g, dtype=torch.float32) into out (host memory).
void rng_torch_randn(TorchRng *g, float *out, int64_t n);
void rng_torch_randn_path(TorchRng *g, float *out, int64_t n, RngTorchPath path);
// torch.rand(n, generator=g, dtype=torch.float32): (mt() & (2^24-1)) * 2^-24.
void rng_torch_rand(TorchRng *g, float *out, int64_t n);

// Fills t (any shape, host or device, f32/f16/bf16) with torch.randn(t.shape,
// dtype=torch.float32) drawn on the CPU, converted to t's dtype (as diffusers'
// randn_tensor(..., dtype=float32).to(device, dtype) would). Device tensors go through a
// host buffer. Returns 0, or -1 when host memory cannot be had.
int rng_torch_randn_tensor(TorchRng *g, Tensor *t);
// The same drawn as torch.randn(..., dtype=draw) (DT_F32, DT_F16 or DT_BF16), then
// converted to t's dtype. Diffusers pipelines loaded with torch_dtype=float16 draw their
// latents this way (randn_tensor(..., dtype=float16) with a CPU generator).
int rng_torch_randn_tensor_as(TorchRng *g, Tensor *t, DType draw);

// torch.randn(n, generator=g, dtype=torch.float16 / torch.bfloat16) (dt DT_F16 / DT_BF16):
// the float path's values rounded to the 16-bit type, except that for numel >= 16 torch
// draws the uniforms block by block (the tail's 16 follow the full blocks' directly
// instead of all numel first), which changes the last numel % 16 values.
void rng_torch_randn_half(TorchRng *g, uint16_t *out, int64_t n, DType dt, RngTorchPath path);

// ---- Philox-4x32-10 ----------------------------------------------------------------------

// out = philox4x32_10(counter, key): 10 rounds, the Random123 constants.
void rng_philox4x32(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

// Element i of the stream (key, stream): counter = (i / 4 low, i / 4 high, stream low,
// stream high), word i % 4 of the block. Any i is computed on its own.
uint32_t rng_philox_u32(uint64_t key, uint64_t stream, uint64_t i);
// Uniform in [0, 1) with 24 random bits: (u32 >> 8) * 2^-24.
float rng_philox_uniform(uint64_t key, uint64_t stream, uint64_t i);
// Standard normal number i of the stream: Box-Muller in double over the two 32-bit words
// 2*(i/2) and 2*(i/2)+1 (u1 in (0, 1], u2 in [0, 1)); even i takes r cos, odd i r sin.
float rng_philox_normal(uint64_t key, uint64_t stream, uint64_t i);
// out[j] = rng_philox_normal(key, stream, first + j) for j < n (host memory).
void rng_philox_normal_fill(uint64_t key, uint64_t stream, uint64_t first, float *out, int64_t n);

#ifdef __cplusplus
}
#endif
