// kernels/cpu/elementwise.c: add, mul (with broadcasting), scale, concat, lerp,
// nearest 2x upsampling. Memory-bound loops: parallel when large, vectorised inside.
#include <omp.h>

#include "cpu_internal.h"

#define EW_PAR_MIN 32768

// ---- add / mul with numpy broadcasting of b ------------------------------------------------
// out and a share a shape; b's shape is right-aligned against it and its size-1 dims repeat.
// The shapes are padded to 4 dims, and adjacent dims are merged where b is either broadcast
// in both or contiguous across both, so (N, C, H, W) + (N, C, 1, 1) becomes (N*C, H*W) with
// b's inner stride 0: one scalar per row.
typedef struct {
    int nd;
    int64_t shape[4], bstride[4];
} EwPlan;

static EwPlan ew_plan(const char *op, const Tensor *out, const Tensor *a, const Tensor *b) {
    CPU_CHECK_SHAPES(op, cpu_same_shape(out, a), out, a, "out must have a's shape");
    CPU_CHECK_SHAPES(op, b->ndim <= a->ndim, a, b, "b has more dims than a");
    int64_t sh[4], bs[4], bsh[4];
    int off = 4 - a->ndim, boff = 4 - b->ndim;
    for (int d = 0; d < 4; d++) {
        sh[d] = d < off ? 1 : a->shape[d - off];
        bsh[d] = d < boff ? 1 : b->shape[d - boff];
        CPU_CHECK_SHAPES(op, bsh[d] == sh[d] || bsh[d] == 1, a, b, "b does not broadcast to a");
    }
    int64_t st = 1;
    for (int d = 3; d >= 0; d--) {
        bs[d] = bsh[d] == 1 ? 0 : st;
        st *= bsh[d];
    }
    EwPlan p = {0, {0}, {0}};
    for (int d = 0; d < 4; d++) {
        if (sh[d] == 1) continue;  // size-1 dims carry nothing
        if (p.nd > 0) {
            int last = p.nd - 1;
            int both_bcast = p.bstride[last] == 0 && bs[d] == 0;
            int contiguous = bs[d] != 0 && p.bstride[last] == bs[d] * sh[d];
            if (both_bcast || contiguous) {
                p.shape[last] *= sh[d];
                p.bstride[last] = bs[d];
                continue;
            }
        }
        p.shape[p.nd] = sh[d];
        p.bstride[p.nd] = bs[d];
        p.nd++;
    }
    if (p.nd == 0) p.nd = 1, p.shape[0] = 1, p.bstride[0] = 0;
    return p;
}

CPU_SIMD_CLONES
static void ew_row(float *o, const float *a, const float *b, int64_t n, int64_t bstride, int mul) {
    if (bstride == 0) {
        float v = b[0];
        if (mul) {
#pragma omp simd
            for (int64_t i = 0; i < n; i++) o[i] = a[i] * v;
        } else {
#pragma omp simd
            for (int64_t i = 0; i < n; i++) o[i] = a[i] + v;
        }
    } else if (mul) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) o[i] = a[i] * b[i];
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) o[i] = a[i] + b[i];
    }
}

static void ew_binary(const char *op, Tensor *out, const Tensor *a, const Tensor *b, int mul) {
    CPU_CHECK_F32(op, out);
    CPU_CHECK_F32(op, a);
    CPU_CHECK_F32(op, b);
    EwPlan p = ew_plan(op, out, a, b);
    const float *ad = a->data, *bd = b->data;
    float *od = out->data;
    const int64_t inner = p.shape[p.nd - 1], ibs = p.bstride[p.nd - 1];
    const int64_t rows = tensor_numel(a) / inner;
    if (rows == 1) {  // one long row: split it over threads
        int nt = inner > EW_PAR_MIN ? cpu_threads() : 1;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int t = 0; t < nt; t++) {
            int64_t s = inner * t / nt, e = inner * (t + 1) / nt;
            ew_row(od + s, ad + s, bd + (ibs ? s : 0), e - s, ibs, mul);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (rows * inner > EW_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        // b's offset for row r: decompose r over the outer dims (row-major).
        int64_t boff = 0, rem = r;
        for (int d = p.nd - 2; d >= 0; d--) {
            boff += (rem % p.shape[d]) * p.bstride[d];
            rem /= p.shape[d];
        }
        ew_row(od + r * inner, ad + r * inner, bd + boff, inner, ibs, mul);
    }
}

void cpu_add(Tensor *out, const Tensor *a, const Tensor *b) { ew_binary("add", out, a, b, 0); }
void cpu_mul(Tensor *out, const Tensor *a, const Tensor *b) { ew_binary("mul", out, a, b, 1); }

// ---- scale, lerp ------------------------------------------------------------------------
CPU_SIMD_CLONES
static void scale_span(float *o, const float *x, int64_t n, float alpha, float beta) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) o[i] = alpha * x[i] + beta;
}

void cpu_scale(Tensor *out, const Tensor *x, float alpha, float beta) {
    CPU_CHECK_F32("scale", out);
    CPU_CHECK_F32("scale", x);
    CPU_CHECK_SHAPES("scale", tensor_numel(out) == tensor_numel(x), out, x, "out must have x's element count");
    const int64_t n = tensor_numel(x);
    const float *xd = x->data;
    float *od = out->data;
    int nt = n > EW_PAR_MIN ? cpu_threads() : 1;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int t = 0; t < nt; t++) {
        int64_t s = n * t / nt, e = n * (t + 1) / nt;
        scale_span(od + s, xd + s, e - s, alpha, beta);
    }
}

// torch.lerp's form: exact at both ends (t = 0 gives a, t = 1 gives b).
CPU_SIMD_CLONES
static void lerp_span(float *o, const float *a, const float *b, int64_t n, float t) {
    if (t < 0.5f) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) o[i] = a[i] + t * (b[i] - a[i]);
    } else {
        float u = 1.0f - t;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) o[i] = b[i] - (b[i] - a[i]) * u;
    }
}

void cpu_lerp(Tensor *out, const Tensor *a, const Tensor *b, float t) {
    CPU_CHECK_F32("lerp", out);
    CPU_CHECK_F32("lerp", a);
    CPU_CHECK_F32("lerp", b);
    CPU_CHECK_SHAPES("lerp", cpu_same_shape(a, b), a, b, "a and b must have one shape");
    CPU_CHECK_SHAPES("lerp", cpu_same_shape(out, a), out, a, "out must have a's shape");
    const int64_t n = tensor_numel(a);
    const float *ad = a->data, *bd = b->data;
    float *od = out->data;
    int nt = n > EW_PAR_MIN ? cpu_threads() : 1;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int p = 0; p < nt; p++) {
        int64_t s = n * p / nt, e = n * (p + 1) / nt;
        lerp_span(od + s, ad + s, bd + s, e - s, t);
    }
}

// ---- concat --------------------------------------------------------------------------------
void cpu_concat(Tensor *out, const Tensor *a, const Tensor *b, int dim) {
    CPU_CHECK_F32("concat", out);
    CPU_CHECK_F32("concat", a);
    CPU_CHECK_F32("concat", b);
    if (dim < 0) dim += a->ndim;
    CPU_CHECK(dim >= 0 && dim < a->ndim, "concat: dim %d out of range for %d dims", dim, a->ndim);
    CPU_CHECK_SHAPES("concat", a->ndim == b->ndim && out->ndim == a->ndim, a, b, "ranks differ");
    for (int d = 0; d < a->ndim; d++) {
        if (d == dim) continue;
        CPU_CHECK_SHAPES("concat", a->shape[d] == b->shape[d] && out->shape[d] == a->shape[d], a, b,
                         "dims other than the concat dim differ");
    }
    CPU_CHECK_SHAPES("concat", out->shape[dim] == a->shape[dim] + b->shape[dim], out, a,
                     "out's concat dim must be the sum of a's and b's");
    CPU_CHECK(out->data != a->data && out->data != b->data, "concat: out must not alias an input");
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < dim; d++) outer *= a->shape[d];
    for (int d = dim + 1; d < a->ndim; d++) inner *= a->shape[d];
    const int64_t ca = a->shape[dim] * inner, cb = b->shape[dim] * inner;
    const float *ad = a->data, *bd = b->data;
    float *od = out->data;
#pragma omp parallel for schedule(static) if (outer * (ca + cb) > EW_PAR_MIN && outer > 1)
    for (int64_t i = 0; i < outer; i++) {
        memcpy(od + i * (ca + cb), ad + i * ca, ca * sizeof(float));
        memcpy(od + i * (ca + cb) + ca, bd + i * cb, cb * sizeof(float));
    }
}

// ---- nearest 2x upsampling ------------------------------------------------------------------
CPU_SIMD_CLONES
static void upsample_row(float *o, const float *x, int64_t W) {
#pragma omp simd
    for (int64_t i = 0; i < W; i++) {
        o[2 * i] = x[i];
        o[2 * i + 1] = x[i];
    }
}

void cpu_upsample_nearest2x(Tensor *out, const Tensor *x) {
    CPU_CHECK_F32("upsample_nearest2x", out);
    CPU_CHECK_F32("upsample_nearest2x", x);
    CPU_CHECK_SHAPES("upsample_nearest2x",
                     x->ndim == 4 && out->ndim == 4 && out->shape[0] == x->shape[0] && out->shape[1] == x->shape[1] &&
                         out->shape[2] == 2 * x->shape[2] && out->shape[3] == 2 * x->shape[3],
                     out, x, "x must be (N, C, H, W) and out (N, C, 2H, 2W)");
    CPU_CHECK(out->data != x->data, "upsample_nearest2x: out must not alias x");
    const int64_t rows = x->shape[0] * x->shape[1] * x->shape[2], W = x->shape[3];
    const float *xd = x->data;
    float *od = out->data;
#pragma omp parallel for schedule(static) if (rows * W > EW_PAR_MIN / 4)
    for (int64_t r = 0; r < rows; r++) {
        float *o = od + r * 4 * W;
        upsample_row(o, xd + r * W, W);
        memcpy(o + 2 * W, o, 2 * W * sizeof(float));
    }
}
