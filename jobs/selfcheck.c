// jobs/selfcheck.c: `storyrun selfcheck`. Every op of kernels/ops.h runs on small seeded
// problems; the CPU results are compared with direct computations written out below in
// plain loops (double accumulation), the CUDA results (f16 storage) with the CPU results.
// Prints one line per op case and exits != 0 on any failure. Takes well under a second.
#include "jobs/selfcheck.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/jobs.h"
#include "kernels/cuda_runtime_api.h"
#include "runner/check.h"

// ---- host tensors and data -------------------------------------------------------------
static uint64_t rng_next(uint64_t *s) {  // splitmix64
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_uniform(uint64_t *s, float lo, float hi) {
    return lo + (hi - lo) * (float)((rng_next(s) >> 40) * (1.0 / 16777216.0));
}

static Tensor host_new(int ndim, const int64_t *shape) {
    Tensor t = tensor_view(NULL, DT_F32, DEV_CPU, ndim, shape);
    t.data = mallocCheck(tensor_nbytes(&t));
    memset(t.data, 0, tensor_nbytes(&t));
    return t;
}
#define HOST(...) host_new(NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

static Tensor host_rand(uint64_t *s, float lo, float hi, int ndim, const int64_t *shape) {
    Tensor t = host_new(ndim, shape);
    float *d = t.data;
    for (int64_t i = 0; i < tensor_numel(&t); i++) d[i] = rng_uniform(s, lo, hi);
    return t;
}
#define RAND(s, lo, hi, ...) host_rand((s), (lo), (hi), NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

#define F(t) ((float *)(t).data)

// ---- one checked problem ------------------------------------------------------------------
typedef struct Case Case;
struct Case {
    const char *name;
    int nin;
    Tensor in[8];  // host f32 inputs; for attention q, then k, v per segment
    Tensor out;    // host f32, the CPU op's result
    Tensor ref;    // the direct computation
    int ip[4];
    float fp[4];
    const float *host_t;  // timestep_embedding: timesteps on the host
    const int32_t *host_idx;  // gather_rows: row indices on the host
    float tol;            // CPU: max |out - ref| <= tol * max(1, max |ref|)
    void (*run)(const Case *c, Tensor *out, Tensor *in, Arena *ws);
};

#define MAX_CASES 64
static Case g_cases[MAX_CASES];
static int g_ncases;

static Case *case_add(const char *name, float tol, void (*run)(const Case *, Tensor *, Tensor *, Arena *)) {
    STORY_CHECK(g_ncases < MAX_CASES, "selfcheck: too many cases");
    Case *c = &g_cases[g_ncases++];
    memset(c, 0, sizeof *c);
    c->name = name;
    c->tol = tol;
    c->run = run;
    return c;
}

static void case_outputs(Case *c, int ndim, const int64_t *shape) {
    c->out = host_new(ndim, shape);
    c->ref = host_new(ndim, shape);
}
#define OUTPUTS(c, ...) case_outputs((c), NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

static void cases_free(void) {
    for (int i = 0; i < g_ncases; i++) {
        for (int j = 0; j < g_cases[i].nin; j++) free(g_cases[i].in[j].data);
        free(g_cases[i].out.data);
        free(g_cases[i].ref.data);
    }
    g_ncases = 0;
}

// ---- runners: call the op_* entry point (it dispatches on the device) ---------------------------
static const Tensor *opt(Tensor *in, int nin, int i) { return i < nin ? &in[i] : NULL; }

static void run_linear(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)ws;
    op_linear(o, &in[0], &in[1], opt(in, c->nin, 2));
}
static void run_matmul(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)ws;
    op_matmul(o, &in[0], &in[1], c->ip[0], c->fp[0]);
}
static void run_conv(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    op_conv2d(o, &in[0], &in[1], opt(in, c->nin, 2), c->ip[0], c->ip[1], ws);
}
static void run_group_norm(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)ws;
    op_group_norm(o, &in[0], &in[1], &in[2], c->ip[0], c->fp[0], c->ip[1]);
}
static void run_layer_norm(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)ws;
    op_layer_norm(o, &in[0], opt(in, c->nin, 1), opt(in, c->nin, 2), c->fp[0]);
}
static void run_softmax(const Case *c, Tensor *o, Tensor *in, Arena *ws) { (void)c, (void)ws, op_softmax(o, &in[0]); }
static void run_gelu(const Case *c, Tensor *o, Tensor *in, Arena *ws) { (void)ws, op_gelu(o, &in[0], c->ip[0]); }
static void run_quick_gelu(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)c, (void)ws, op_quick_gelu(o, &in[0]);
}
static void run_silu(const Case *c, Tensor *o, Tensor *in, Arena *ws) { (void)c, (void)ws, op_silu(o, &in[0]); }
static void run_geglu(const Case *c, Tensor *o, Tensor *in, Arena *ws) { (void)c, (void)ws, op_geglu(o, &in[0]); }
static void run_upsample(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)c, (void)ws, op_upsample_nearest2x(o, &in[0]);
}
static void run_add(const Case *c, Tensor *o, Tensor *in, Arena *ws) { (void)c, (void)ws, op_add(o, &in[0], &in[1]); }
static void run_mul(const Case *c, Tensor *o, Tensor *in, Arena *ws) { (void)c, (void)ws, op_mul(o, &in[0], &in[1]); }
static void run_scale(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)ws, op_scale(o, &in[0], c->fp[0], c->fp[1]);
}
static void run_concat(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)ws, op_concat(o, &in[0], &in[1], c->ip[0]);
}
static void run_transpose(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)c, (void)ws, op_transpose(o, &in[0]);
}
static void run_gather_rows(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)ws, op_gather_rows(o, &in[0], c->host_idx);
}
static void run_lerp(const Case *c, Tensor *o, Tensor *in, Arena *ws) { (void)ws, op_lerp(o, &in[0], &in[1], c->fp[0]); }
static void run_timestep(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)in, (void)ws;
    op_timestep_embedding(o, c->host_t, c->ip[0], c->fp[0], c->fp[1]);
}
static void run_attention(const Case *c, Tensor *o, Tensor *in, Arena *ws) {
    (void)ws;
    KVSegment segs[ATTN_MAX_SEGMENTS];
    int nsegs = (c->nin - 1) / 2;
    for (int s = 0; s < nsegs; s++) segs[s] = (KVSegment){&in[1 + 2 * s], &in[2 + 2 * s]};
    op_attention(o, &in[0], segs, nsegs, c->ip[0], c->ip[1], c->fp[0]);
}

// ---- direct computations ----------------------------------------------------------------------
static void ref_linear(Case *c) {
    const Tensor *x = &c->in[0], *w = &c->in[1];
    int64_t K = w->shape[1], N = w->shape[0], M = tensor_numel(x) / K;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = c->nin > 2 ? F(c->in[2])[n] : 0.0;
            for (int64_t k = 0; k < K; k++) s += (double)F(*x)[m * K + k] * F(*w)[n * K + k];
            F(c->ref)[m * N + n] = (float)s;
        }
}

static void ref_matmul(Case *c) {
    const Tensor *a = &c->in[0], *b = &c->in[1];
    int tb = c->ip[0];
    int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = tb ? b->shape[1] : b->shape[2];
    for (int64_t i = 0; i < B; i++) {
        const float *pb = F(*b) + (b->shape[0] == 1 ? 0 : i * K * N);
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += (double)F(*a)[(i * M + m) * K + k] * (tb ? pb[n * K + k] : pb[k * N + n]);
                F(c->ref)[(i * M + m) * N + n] = (float)(c->fp[0] * s);
            }
    }
}

static void ref_conv(Case *c) {
    const Tensor *x = &c->in[0], *w = &c->in[1], *o = &c->ref;
    int stride = c->ip[0], pad = c->ip[1];
    int64_t N = x->shape[0], Ci = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t Co = w->shape[0], k = w->shape[2], Ho = o->shape[2], Wo = o->shape[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Co; co++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    double s = c->nin > 2 ? F(c->in[2])[co] : 0.0;
                    for (int64_t ci = 0; ci < Ci; ci++)
                        for (int64_t ky = 0; ky < k; ky++)
                            for (int64_t kx = 0; kx < k; kx++) {
                                int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += (double)F(*x)[((n * Ci + ci) * H + iy) * W + ix] *
                                     F(*w)[((co * Ci + ci) * k + ky) * k + kx];
                            }
                    F(c->ref)[((n * Co + co) * Ho + oy) * Wo + ox] = (float)s;
                }
}

static void ref_group_norm(Case *c) {
    const Tensor *x = &c->in[0];
    int64_t N = x->shape[0], C = x->shape[1], S = tensor_numel(x) / (N * C), G = c->ip[0], cpg = C / G;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            const float *xs = F(*x) + (n * C + g * cpg) * S;
            double mean = 0, var = 0;
            for (int64_t i = 0; i < cpg * S; i++) mean += xs[i];
            mean /= (double)(cpg * S);
            for (int64_t i = 0; i < cpg * S; i++) var += (xs[i] - mean) * (xs[i] - mean);
            var /= (double)(cpg * S);
            for (int64_t i = 0; i < cpg * S; i++) {
                int64_t ch = g * cpg + i / S;
                double y = (xs[i] - mean) / sqrt(var + c->fp[0]) * F(c->in[1])[ch] + F(c->in[2])[ch];
                if (c->ip[1]) y = y / (1.0 + exp(-y));
                F(c->ref)[(n * C + g * cpg) * S + i] = (float)y;
            }
        }
}

static void ref_layer_norm(Case *c) {
    const Tensor *x = &c->in[0];
    int64_t C = x->shape[x->ndim - 1], R = tensor_numel(x) / C;
    for (int64_t r = 0; r < R; r++) {
        const float *xs = F(*x) + r * C;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < C; i++) mean += xs[i];
        mean /= (double)C;
        for (int64_t i = 0; i < C; i++) var += (xs[i] - mean) * (xs[i] - mean);
        var /= (double)C;
        for (int64_t i = 0; i < C; i++) {
            double y = (xs[i] - mean) / sqrt(var + c->fp[0]);
            if (c->nin > 1) y = y * F(c->in[1])[i] + F(c->in[2])[i];
            F(c->ref)[r * C + i] = (float)y;
        }
    }
}

static void ref_softmax(Case *c) {
    const Tensor *x = &c->in[0];
    int64_t C = x->shape[x->ndim - 1], R = tensor_numel(x) / C;
    for (int64_t r = 0; r < R; r++) {
        const float *xs = F(*x) + r * C;
        double mx = -INFINITY, s = 0;
        for (int64_t i = 0; i < C; i++) mx = xs[i] > mx ? xs[i] : mx;
        for (int64_t i = 0; i < C; i++) s += exp(xs[i] - mx);
        for (int64_t i = 0; i < C; i++) F(c->ref)[r * C + i] = (float)(exp(xs[i] - mx) / s);
    }
}

static double gelu_d(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

static void ref_unary(Case *c, double (*f)(double, const Case *)) {
    for (int64_t i = 0; i < tensor_numel(&c->ref); i++) F(c->ref)[i] = (float)f(F(c->in[0])[i], c);
}
static double f_gelu(double x, const Case *c) {
    if (!c->ip[0]) return gelu_d(x);
    return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double f_quick_gelu(double x, const Case *c) { return (void)c, x / (1.0 + exp(-1.702 * x)); }
static double f_silu(double x, const Case *c) { return (void)c, x / (1.0 + exp(-x)); }
static double f_scale(double x, const Case *c) { return c->fp[0] * x + c->fp[1]; }

static void ref_geglu(Case *c) {
    int64_t F2 = c->in[0].shape[c->in[0].ndim - 1], Fh = F2 / 2, R = tensor_numel(&c->in[0]) / F2;
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < Fh; i++)
            F(c->ref)[r * Fh + i] = (float)(F(c->in[0])[r * F2 + i] * gelu_d(F(c->in[0])[r * F2 + Fh + i]));
}

static void ref_upsample(Case *c) {
    const Tensor *x = &c->in[0];
    int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    for (int64_t p = 0; p < NC; p++)
        for (int64_t y = 0; y < 2 * H; y++)
            for (int64_t xx = 0; xx < 2 * W; xx++)
                F(c->ref)[(p * 2 * H + y) * 2 * W + xx] = F(*x)[(p * H + y / 2) * W + xx / 2];
}

static void ref_transpose(Case *c) {
    const Tensor *x = &c->in[0];
    int64_t B = x->shape[0], M = x->shape[1], N = x->shape[2];
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) F(c->ref)[(b * N + j) * M + i] = F(*x)[(b * M + i) * N + j];
}

static void ref_gather_rows(Case *c) {
    const Tensor *x = &c->in[0];
    int64_t C = x->shape[x->ndim - 1], N = tensor_numel(&c->ref) / C;
    for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < C; j++) F(c->ref)[i * C + j] = F(*x)[c->host_idx[i] * C + j];
}

// b broadcast against a: right-aligned, size-1 dims repeat.
static void ref_binary(Case *c, int mul) {
    const Tensor *a = &c->in[0], *b = &c->in[1];
    for (int64_t i = 0; i < tensor_numel(a); i++) {
        int64_t rem = i, bi = 0, bstride = 1;
        for (int d = a->ndim - 1, e = b->ndim - 1; d >= 0; d--, e--) {
            int64_t idx = rem % a->shape[d];
            rem /= a->shape[d];
            if (e >= 0) {
                if (b->shape[e] != 1) bi += idx * bstride;
                bstride *= b->shape[e];
            }
        }
        double va = F(*a)[i], vb = F(*b)[bi];
        F(c->ref)[i] = (float)(mul ? va * vb : va + vb);
    }
}

static void ref_concat(Case *c) {
    const Tensor *a = &c->in[0], *b = &c->in[1];
    int dim = c->ip[0] < 0 ? c->ip[0] + a->ndim : c->ip[0];
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < dim; d++) outer *= a->shape[d];
    for (int d = dim + 1; d < a->ndim; d++) inner *= a->shape[d];
    int64_t na = a->shape[dim] * inner, nb = b->shape[dim] * inner, k = 0;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < na; i++) F(c->ref)[k++] = F(*a)[o * na + i];
        for (int64_t i = 0; i < nb; i++) F(c->ref)[k++] = F(*b)[o * nb + i];
    }
}

static void ref_lerp(Case *c) {
    for (int64_t i = 0; i < tensor_numel(&c->ref); i++) {
        double a = F(c->in[0])[i], b = F(c->in[1])[i];
        F(c->ref)[i] = (float)(a + c->fp[0] * (b - a));
    }
}

static void ref_timestep(Case *c) {
    int64_t N = c->ref.shape[0], dim = c->ref.shape[1], half = dim / 2;
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < half; i++) {
            double e = c->host_t[n] * exp(-log((double)c->fp[1]) * (double)i / ((double)half - c->fp[0]));
            F(c->ref)[n * dim + (c->ip[0] ? half + i : i)] = (float)sin(e);
            F(c->ref)[n * dim + (c->ip[0] ? i : half + i)] = (float)cos(e);
        }
}

void selfcheck_attention_ref(float *out, const Tensor *q, const KVSegment *segs, int nsegs, int heads, int causal,
                             float scale) {
    int64_t B = q->shape[0], Lq = q->shape[1], HD = q->shape[2], D = HD / heads, Lt = 0;
    for (int s = 0; s < nsegs; s++) Lt += segs[s].k->shape[1];
    if (scale <= 0) scale = 1.0f / sqrtf((float)D);
    double *p = mallocCheck((size_t)Lt * sizeof(double));
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < heads; h++)
            for (int64_t i = 0; i < Lq; i++) {
                const float *qi = (const float *)q->data + (b * Lq + i) * HD + h * D;
                double mx = -INFINITY, sum = 0;
                int64_t j = 0;
                for (int s = 0; s < nsegs; s++) {  // scores, keys of all segments in order
                    int64_t Lk = segs[s].k->shape[1], kb = segs[s].k->shape[0] == 1 ? 0 : b;
                    for (int64_t t = 0; t < Lk; t++, j++) {
                        const float *kj = (const float *)segs[s].k->data + (kb * Lk + t) * HD + h * D;
                        double d = 0;
                        for (int64_t e = 0; e < D; e++) d += (double)qi[e] * kj[e];
                        p[j] = (causal && j > i) ? -INFINITY : d * scale;
                        if (p[j] > mx) mx = p[j];
                    }
                }
                for (j = 0; j < Lt; j++) sum += (p[j] = exp(p[j] - mx));
                for (int64_t e = 0; e < D; e++) {
                    double acc = 0;
                    j = 0;
                    for (int s = 0; s < nsegs; s++) {
                        int64_t Lk = segs[s].v->shape[1], kb = segs[s].v->shape[0] == 1 ? 0 : b;
                        for (int64_t t = 0; t < Lk; t++, j++)
                            acc += p[j] * ((const float *)segs[s].v->data)[(kb * Lk + t) * HD + h * D + e];
                    }
                    out[(b * Lq + i) * HD + h * D + e] = (float)(acc / sum);
                }
            }
    free(p);
}

static void ref_attention(Case *c) {
    KVSegment segs[ATTN_MAX_SEGMENTS];
    int nsegs = (c->nin - 1) / 2;
    for (int s = 0; s < nsegs; s++) segs[s] = (KVSegment){&c->in[1 + 2 * s], &c->in[2 + 2 * s]};
    selfcheck_attention_ref(c->ref.data, &c->in[0], segs, nsegs, c->ip[0], c->ip[1], c->fp[0]);
}

// ---- the problems ---------------------------------------------------------------------------------
static const float g_timesteps[4] = {0.0f, 1.0f, 500.0f, 999.0f};
// Rows of a (3, 7, 19) x = 21 rows: repeats, the first and the last row.
static const int32_t g_gather_idx[10] = {20, 0, 5, 5, 13, 2, 20, 7, 0, 11};

static void add_conv(uint64_t *s, const char *name, int64_t N, int64_t Ci, int64_t Co, int64_t H, int64_t W, int k,
                     int stride, int pad, int bias) {
    Case *c = case_add(name, 2e-5f, run_conv);
    c->in[0] = RAND(s, -1, 1, N, Ci, H, W);
    c->in[1] = RAND(s, -0.5f, 0.5f, Co, Ci, k, k);
    c->nin = 2;
    if (bias) c->in[c->nin++] = RAND(s, -1, 1, Co);
    c->ip[0] = stride, c->ip[1] = pad;
    OUTPUTS(c, N, Co, (H + 2 * pad - k) / stride + 1, (W + 2 * pad - k) / stride + 1);
    ref_conv(c);
}

// segs: number of (k, v) pairs, each (bk[s], lk[s], heads * D).
static void add_attention(uint64_t *s, const char *name, int64_t B, int64_t Lq, int heads, int64_t D, int nsegs,
                          const int64_t *bk, const int64_t *lk, int causal, float scale) {
    Case *c = case_add(name, 2e-5f, run_attention);
    c->in[0] = RAND(s, -1, 1, B, Lq, heads * D);
    for (int i = 0; i < nsegs; i++) {
        c->in[1 + 2 * i] = RAND(s, -1, 1, bk[i], lk[i], heads * D);
        c->in[2 + 2 * i] = RAND(s, -1, 1, bk[i], lk[i], heads * D);
    }
    c->nin = 1 + 2 * nsegs;
    c->ip[0] = heads, c->ip[1] = causal, c->fp[0] = scale;
    OUTPUTS(c, B, Lq, heads * D);
    ref_attention(c);
}

static void build_cases(void) {
    uint64_t seed = 20240521;
    uint64_t *s = &seed;
    Case *c;

    c = case_add("linear", 2e-5f, run_linear);  // M split over threads
    c->in[0] = RAND(s, -1, 1, 4, 64, 64), c->in[1] = RAND(s, -0.3f, 0.3f, 128, 64), c->in[2] = RAND(s, -1, 1, 128);
    c->nin = 3;
    OUTPUTS(c, 4, 64, 128);
    ref_linear(c);
    c = case_add("linear (no bias, N split)", 2e-5f, run_linear);
    c->in[0] = RAND(s, -1, 1, 7, 640), c->in[1] = RAND(s, -0.1f, 0.1f, 520, 640), c->nin = 2;
    OUTPUTS(c, 7, 520);
    ref_linear(c);

    c = case_add("matmul", 2e-5f, run_matmul);
    c->in[0] = RAND(s, -1, 1, 3, 33, 20), c->in[1] = RAND(s, -1, 1, 3, 20, 17), c->nin = 2;
    c->ip[0] = 0, c->fp[0] = 0.5f;
    OUTPUTS(c, 3, 33, 17);
    ref_matmul(c);
    c = case_add("matmul (b^T)", 2e-5f, run_matmul);
    c->in[0] = RAND(s, -1, 1, 4, 9, 24), c->in[1] = RAND(s, -1, 1, 4, 13, 24), c->nin = 2;
    c->ip[0] = 1, c->fp[0] = 1.0f;
    OUTPUTS(c, 4, 9, 13);
    ref_matmul(c);

    add_conv(s, "conv2d 3x3 s1 p1", 2, 3, 5, 9, 7, 3, 1, 1, 1);
    add_conv(s, "conv2d 3x3 s2 p1", 1, 8, 6, 10, 9, 3, 2, 1, 1);
    add_conv(s, "conv2d 3x3 s2 p0", 1, 5, 4, 9, 9, 3, 2, 0, 0);
    add_conv(s, "conv2d 1x1 s1", 2, 16, 12, 5, 6, 1, 1, 0, 1);
    add_conv(s, "conv2d 1x1 s2", 1, 4, 3, 7, 7, 1, 2, 0, 1);
    add_conv(s, "conv2d 3x3 s1 p1 winograd, tiled", 2, 16, 72, 64, 63, 3, 1, 1, 1);
    add_conv(s, "conv2d 3x3 s1 p1 winograd, all tiles", 1, 32, 40, 31, 33, 3, 1, 1, 1);
    add_conv(s, "conv2d 3x3 s1 p0 winograd, all tiles", 2, 32, 32, 24, 26, 3, 1, 0, 0);
    add_conv(s, "conv2d 3x3 s2 p1 winograd, tiled", 2, 16, 72, 127, 128, 3, 2, 1, 1);
    add_conv(s, "conv2d 3x3 s2 p1 winograd, all tiles", 1, 24, 40, 33, 30, 3, 2, 1, 1);
    add_conv(s, "conv2d 3x3 s2 p0 winograd, all tiles", 2, 16, 20, 20, 23, 3, 2, 0, 0);
    add_conv(s, "conv2d 3x3 s2 p2 winograd, all tiles", 1, 16, 16, 15, 15, 3, 2, 2, 1);

    c = case_add("group_norm", 1e-5f, run_group_norm);
    c->in[0] = RAND(s, -2, 3, 2, 12, 5, 6), c->in[1] = RAND(s, 0.5f, 1.5f, 12), c->in[2] = RAND(s, -1, 1, 12);
    c->nin = 3, c->ip[0] = 4, c->ip[1] = 0, c->fp[0] = 1e-5f;
    OUTPUTS(c, 2, 12, 5, 6);
    ref_group_norm(c);
    c = case_add("group_norm + silu", 1e-5f, run_group_norm);
    c->in[0] = RAND(s, -2, 3, 2, 64, 40), c->in[1] = RAND(s, 0.5f, 1.5f, 64), c->in[2] = RAND(s, -1, 1, 64);
    c->nin = 3, c->ip[0] = 32, c->ip[1] = 1, c->fp[0] = 1e-6f;
    OUTPUTS(c, 2, 64, 40);
    ref_group_norm(c);

    c = case_add("layer_norm", 1e-5f, run_layer_norm);
    c->in[0] = RAND(s, -2, 4, 3, 7, 40), c->in[1] = RAND(s, 0.5f, 1.5f, 40), c->in[2] = RAND(s, -1, 1, 40);
    c->nin = 3, c->fp[0] = 1e-5f;
    OUTPUTS(c, 3, 7, 40);
    ref_layer_norm(c);
    c = case_add("layer_norm (no affine)", 1e-5f, run_layer_norm);
    c->in[0] = RAND(s, -2, 4, 5, 64), c->nin = 1, c->fp[0] = 1e-6f;
    OUTPUTS(c, 5, 64);
    ref_layer_norm(c);

    c = case_add("softmax", 1e-6f, run_softmax);
    c->in[0] = RAND(s, -30, 30, 4, 9, 77), c->nin = 1;
    OUTPUTS(c, 4, 9, 77);
    ref_softmax(c);

    c = case_add("gelu", 1e-6f, run_gelu);
    c->in[0] = RAND(s, -6, 6, 4, 100, 128), c->nin = 1, c->ip[0] = 0;
    OUTPUTS(c, 4, 100, 128);
    ref_unary(c, f_gelu);
    c = case_add("gelu (tanh)", 1e-6f, run_gelu);
    c->in[0] = RAND(s, -6, 6, 3, 50), c->nin = 1, c->ip[0] = 1;
    OUTPUTS(c, 3, 50);
    ref_unary(c, f_gelu);
    c = case_add("quick_gelu", 1e-6f, run_quick_gelu);
    c->in[0] = RAND(s, -12, 12, 4, 100, 128), c->nin = 1;
    OUTPUTS(c, 4, 100, 128);
    ref_unary(c, f_quick_gelu);
    c = case_add("silu", 1e-6f, run_silu);
    c->in[0] = RAND(s, -20, 20, 3, 77), c->nin = 1;
    OUTPUTS(c, 3, 77);
    ref_unary(c, f_silu);
    c = case_add("geglu", 1e-6f, run_geglu);
    c->in[0] = RAND(s, -4, 4, 3, 10, 48), c->nin = 1;
    OUTPUTS(c, 3, 10, 24);
    ref_geglu(c);

    c = case_add("upsample_nearest2x", 0.0f, run_upsample);
    c->in[0] = RAND(s, -1, 1, 2, 3, 5, 4), c->nin = 1;
    OUTPUTS(c, 2, 3, 10, 8);
    ref_upsample(c);

    c = case_add("add", 1e-6f, run_add);
    c->in[0] = RAND(s, -1, 1, 2, 3, 4, 5), c->in[1] = RAND(s, -1, 1, 2, 3, 4, 5), c->nin = 2;
    OUTPUTS(c, 2, 3, 4, 5);
    ref_binary(c, 0);
    c = case_add("add (N, C, 1, 1)", 1e-6f, run_add);
    c->in[0] = RAND(s, -1, 1, 2, 6, 4, 5), c->in[1] = RAND(s, -1, 1, 2, 6, 1, 1), c->nin = 2;
    OUTPUTS(c, 2, 6, 4, 5);
    ref_binary(c, 0);
    c = case_add("add (C)", 1e-6f, run_add);
    c->in[0] = RAND(s, -1, 1, 3, 7, 16), c->in[1] = RAND(s, -1, 1, 16), c->nin = 2;
    OUTPUTS(c, 3, 7, 16);
    ref_binary(c, 0);
    c = case_add("mul (1, C, 1, W)", 1e-6f, run_mul);
    c->in[0] = RAND(s, -1, 1, 2, 3, 4, 5), c->in[1] = RAND(s, -1, 1, 1, 3, 1, 5), c->nin = 2;
    OUTPUTS(c, 2, 3, 4, 5);
    ref_binary(c, 1);
    c = case_add("mul (1)", 1e-6f, run_mul);
    c->in[0] = RAND(s, -1, 1, 300, 200), c->in[1] = RAND(s, -1, 1, 1), c->nin = 2;
    OUTPUTS(c, 300, 200);
    ref_binary(c, 1);

    c = case_add("scale", 1e-6f, run_scale);
    c->in[0] = RAND(s, -1, 1, 5, 33), c->nin = 1, c->fp[0] = 0.18215f, c->fp[1] = -0.5f;
    OUTPUTS(c, 5, 33);
    ref_unary(c, f_scale);

    c = case_add("concat dim 1", 0.0f, run_concat);
    c->in[0] = RAND(s, -1, 1, 2, 3, 4, 5), c->in[1] = RAND(s, -1, 1, 2, 6, 4, 5), c->nin = 2, c->ip[0] = 1;
    OUTPUTS(c, 2, 9, 4, 5);
    ref_concat(c);
    c = case_add("concat dim 2 (last)", 0.0f, run_concat);
    c->in[0] = RAND(s, -1, 1, 2, 7, 3), c->in[1] = RAND(s, -1, 1, 2, 7, 5), c->nin = 2, c->ip[0] = 2;
    OUTPUTS(c, 2, 7, 8);
    ref_concat(c);

    c = case_add("transpose (partial tiles)", 0.0f, run_transpose);
    c->in[0] = RAND(s, -1, 1, 2, 37, 45), c->nin = 1;
    OUTPUTS(c, 2, 45, 37);
    ref_transpose(c);

    c = case_add("gather_rows (repeats, odd C)", 0.0f, run_gather_rows);
    c->in[0] = RAND(s, -1, 1, 3, 7, 19), c->nin = 1, c->host_idx = g_gather_idx;
    OUTPUTS(c, 2, 5, 19);
    ref_gather_rows(c);

    c = case_add("lerp t=0.3", 1e-6f, run_lerp);
    c->in[0] = RAND(s, -1, 1, 4, 50), c->in[1] = RAND(s, -1, 1, 4, 50), c->nin = 2, c->fp[0] = 0.3f;
    OUTPUTS(c, 4, 50);
    ref_lerp(c);
    c = case_add("lerp t=0.8", 1e-6f, run_lerp);
    c->in[0] = RAND(s, -1, 1, 4, 50), c->in[1] = RAND(s, -1, 1, 4, 50), c->nin = 2, c->fp[0] = 0.8f;
    OUTPUTS(c, 4, 50);
    ref_lerp(c);

    // Arguments reach 999 rad; float rounding of t * freq (as torch computes it) alone moves
    // sin/cos by up to ~6e-5 there.
    c = case_add("timestep_embedding", 2e-4f, run_timestep);
    c->host_t = g_timesteps, c->ip[0] = 1, c->fp[0] = 0.0f, c->fp[1] = 10000.0f;
    OUTPUTS(c, 4, 320);
    ref_timestep(c);
    c = case_add("timestep_embedding (odd, shift 1)", 2e-4f, run_timestep);
    c->host_t = g_timesteps, c->ip[0] = 0, c->fp[0] = 1.0f, c->fp[1] = 10000.0f;
    OUTPUTS(c, 4, 33);
    ref_timestep(c);

    add_attention(s, "attention self", 2, 37, 2, 8, 1, SHAPE(2), SHAPE(37), 0, 0.0f);
    add_attention(s, "attention causal", 1, 20, 3, 4, 1, SHAPE(1), SHAPE(20), 1, 0.0f);
    add_attention(s, "attention 2 segments (Bk=1)", 2, 5, 2, 8, 2, SHAPE(2, 1), SHAPE(13, 300), 0, 0.3f);
    add_attention(s, "attention single key", 2, 3, 2, 4, 1, SHAPE(2), SHAPE(1), 0, 0.0f);
}

// ---- comparison and drivers ---------------------------------------------------------------------
static int compare(FILE *out, const char *prefix, const char *name, const float *got, const float *want, int64_t n,
                   float tol) {
    double err = 0, mag = 1;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= err)) err = d;  // also catches NaN
        if (isnan(got[i]) != isnan(want[i])) bad = 1;
        if (fabs(want[i]) > mag) mag = fabs(want[i]);
    }
    int ok = !bad && !isnan(err) && err <= tol * mag;
    if (out)
        fprintf(out, "%s%-40s max abs err %.2e (tol %.1e)  %s\n", prefix, name, err, tol * mag, ok ? "ok" : "FAIL");
    return ok;
}

int selfcheck_cpu(FILE *out) {
    build_cases();
    Arena ws;
    if (arena_init(&ws, DEV_CPU, 64u << 20) != 0) STORY_FATAL("selfcheck: no memory for the scratch arena");
    int failed = 0;
    for (int i = 0; i < g_ncases; i++) {
        Case *c = &g_cases[i];
        c->run(c, &c->out, c->in, &ws);
        failed += !compare(out, "cpu  ", c->name, c->out.data, c->ref.data, tensor_numel(&c->ref), c->tol);
    }
    arena_free(&ws);
    cases_free();
    return failed;
}

// f16 copy of a host f32 tensor on the device.
static Tensor to_device_f16(const Tensor *h) {
    Tensor d = *h;
    d.dtype = DT_F16, d.dev = DEV_CUDA;
    int64_t n = tensor_numel(h);
    uint16_t *tmp = mallocCheck((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) tmp[i] = f32_to_f16(F(*h)[i]);
    d.data = story_cuda_malloc((size_t)n * 2);
    if (!d.data) STORY_FATAL("selfcheck: cannot allocate %lld bytes on the device", (long long)n * 2);
    story_cuda_memcpy(d.data, tmp, (size_t)n * 2, 0);
    free(tmp);
    return d;
}

static void from_device_f16(float *dst, const Tensor *d) {
    int64_t n = tensor_numel(d);
    uint16_t *tmp = mallocCheck((size_t)n * 2);
    story_cuda_sync();
    story_cuda_memcpy(tmp, d->data, (size_t)n * 2, 1);
    for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32(tmp[i]);
    free(tmp);
}

int selfcheck_cuda(FILE *out) {
    if (!cuda_available()) {
        if (out) fprintf(out, "cuda: skipped (no CUDA device)\n");
        return -1;
    }
    build_cases();
    Arena cpu_ws, dev_ws;
    if (arena_init(&cpu_ws, DEV_CPU, 64u << 20) != 0 || arena_init(&dev_ws, DEV_CUDA, 256u << 20) != 0)
        STORY_FATAL("selfcheck: cannot allocate the scratch arenas");
    int failed = 0;
    for (int i = 0; i < g_ncases; i++) {
        Case *c = &g_cases[i];
        c->run(c, &c->out, c->in, &cpu_ws);  // the CPU result is the reference here
        Tensor din[8];
        for (int j = 0; j < c->nin; j++) din[j] = to_device_f16(&c->in[j]);
        Tensor dout = to_device_f16(&c->out);
        c->run(c, &dout, din, &dev_ws);
        float *got = mallocCheck(tensor_nbytes(&c->out));
        from_device_f16(got, &dout);
        // f16 storage: inputs and outputs carry 2^-11 relative rounding each.
        failed += !compare(out, "cuda ", c->name, got, c->out.data, tensor_numel(&c->out), 2e-2f);
        free(got);
        for (int j = 0; j < c->nin; j++) story_cuda_free(din[j].data);
        story_cuda_free(dout.data);
    }
    arena_free(&cpu_ws);
    arena_free(&dev_ws);
    cases_free();
    return failed;
}

int job_selfcheck(int argc, char **argv) {
    (void)argc, (void)argv;
    printf("storyrun selfcheck: every op on small seeded problems\n");
    int failed = selfcheck_cpu(stdout);
    int cuda_failed = selfcheck_cuda(stdout);
    if (cuda_failed > 0) failed += cuda_failed;
    if (failed) {
        printf("selfcheck: %d FAILED\n", failed);
        return 1;
    }
    printf("selfcheck: all ops ok%s\n", cuda_failed < 0 ? " (CPU only)" : " (CPU and CUDA)");
    return 0;
}
