// kernels/cpu/embed.c: sinusoidal timestep embedding, as
// diffusers.models.embeddings.get_timestep_embedding computes it in float32:
//   half = dim / 2
//   exponent[i] = -ln(max_period) * i / (half - downscale_freq_shift)
//   emb[n, i] = t[n] * exp(exponent[i]);  out = [sin(emb), cos(emb)]
//   flip_sin_to_cos: [cos, sin];  odd dim: one zero column at the end.
// Each step rounds to float where torch does (python scalars are cast to float first).
#include "cpu_internal.h"

void cpu_timestep_embedding(Tensor *out, const float *t, int flip_sin_to_cos, float downscale_freq_shift,
                            float max_period) {
    CPU_CHECK_F32("timestep_embedding", out);
    CPU_CHECK(t != NULL, "timestep_embedding: timesteps are NULL");
    CPU_CHECK(out->ndim == 2, "timestep_embedding: out must be (N, dim), got %d dims", out->ndim);
    const int64_t N = out->shape[0], dim = out->shape[1], half = dim / 2;
    CPU_CHECK(half >= 1, "timestep_embedding: dim must be >= 2, got %lld", (long long)dim);
    CPU_CHECK((float)half != downscale_freq_shift,
                "timestep_embedding: half dim equals downscale_freq_shift (division by zero)");
    const float neg_log = (float)-log((double)max_period);
    const float denom = (float)((double)half - (double)downscale_freq_shift);
    float *od = out->data;
    for (int64_t n = 0; n < N; n++) {
        float *row = od + n * dim;
        for (int64_t i = 0; i < half; i++) {
            float exponent = (neg_log * (float)i) / denom;
            float e = t[n] * expf(exponent);
            float s = sinf(e), c = cosf(e);
            row[flip_sin_to_cos ? half + i : i] = s;
            row[flip_sin_to_cos ? i : half + i] = c;
        }
        if (dim % 2) row[dim - 1] = 0.0f;
    }
}
