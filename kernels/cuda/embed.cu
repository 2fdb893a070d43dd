// kernels/cuda/embed.cu: sinusoidal timestep embedding (diffusers get_timestep_embedding).
// out (N, dim): column j < half is sin(t * f_j) and column half + j is cos(t * f_j),
// swapped when flip_sin_to_cos; an odd dim leaves a zero last column. f_j follows
// torch's fp32 arithmetic: exponent = -ln(max_period) * j / (half - shift), f_j = exp().
#include "common.cuh"

// Timesteps travel by value inside the kernel's arguments, so no device buffer is
// needed; N larger than this is done in several launches.
#define EMBED_T_PER_LAUNCH 64

struct EmbedTimes {
    float t[EMBED_T_PER_LAUNCH];
};

// rows x dim elements of out, starting at row 0 of this launch's slice.
template <typename T>
__global__ void timestep_embedding_kernel(T *out, EmbedTimes ts, int rows, int dim, int flip,
                                          float denom, float neg_log_period) {
    const int half = dim / 2;
    const int64_t n = (int64_t)rows * dim, stride = kthread_count();
    for (int64_t i = kthread_id(); i < n; i += stride) {
        const int r = (int)(i / dim), j = (int)(i - (int64_t)r * dim);
        float y = 0.0f;
        if (j < 2 * half) {
            const int f = j < half ? j : j - half;
            const float e = neg_log_period * (float)f / denom;
            // exp in double then rounded: the correctly rounded fp32 value on every device,
            // since t * freq feeds sin/cos at arguments up to ~1000.
            const float freq = (float)exp((double)e);
            const float arg = ts.t[r] * freq;
            const int first = j < half;
            y = (first != (flip != 0)) ? sinf(arg) : cosf(arg);
        }
        out[i] = from_f32<T>(y);
    }
}

void cuda_timestep_embedding(Tensor *out, const float *t, int flip_sin_to_cos,
                             float downscale_freq_shift, float max_period) {
    kcheck_dev("timestep_embedding", "out", out);
    KCHECK(out->ndim == 2 && t != NULL && out->shape[1] <= 0x7fffffff,
           "cuda_timestep_embedding: out %s must be (N, dim) and t (N) a host array",
           kdesc(out, 0));
    const int64_t N = out->shape[0];
    const int dim = (int)out->shape[1];
    if (N == 0 || dim == 0) return;
    // torch rounds the Python floats -ln(max_period) and (half - shift) to fp32.
    const float neg_log_period = (float)(-log((double)max_period));
    const float denom = (float)((double)(dim / 2) - (double)downscale_freq_shift);
    KCHECK(denom != 0.0f, "cuda_timestep_embedding: dim %d with shift %g divides by zero", dim,
           (double)downscale_freq_shift);
    const size_t row_bytes = (size_t)dim * dtype_size(out->dtype);
    for (int64_t r0 = 0; r0 < N; r0 += EMBED_T_PER_LAUNCH) {
        const int rows = (int)(N - r0 < EMBED_T_PER_LAUNCH ? N - r0 : EMBED_T_PER_LAUNCH);
        EmbedTimes ts;
        for (int i = 0; i < EMBED_T_PER_LAUNCH; i++) ts.t[i] = i < rows ? t[r0 + i] : 0.0f;
        void *dst = (char *)out->data + (size_t)r0 * row_bytes;
        KDISPATCH(out->dtype, "timestep_embedding", T, {
            auto k = timestep_embedding_kernel<T>;
            KERNEL_LAUNCH(k, kgrid((int64_t)rows * dim, 256), 256, 0, 0, (T *)dst, ts, rows, dim,
                          flip_sin_to_cos, denom, neg_log_period);
        });
        KLAUNCH_CHECK("timestep_embedding");
    }
}
