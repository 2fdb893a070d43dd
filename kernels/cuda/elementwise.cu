// kernels/cuda/elementwise.cu: activations (silu, gelu, quick_gelu, geglu), scale, lerp,
// add/mul with numpy broadcasting, and the bias add the GEMM ops use.
// Every kernel is a grid-stride loop over 16-byte packs (8 halves or 4 floats) when
// the pointers are aligned, plus a scalar tail; math is fp32 whatever the storage type.
#include "common.cuh"

// ---- element functions ----------------------------------------------------------------

struct SiluOp {
    __device__ float operator()(float x) const { return silu_f(x); }
};
struct GeluOp {
    int tanh_approx;
    __device__ float operator()(float x) const {
        if (!tanh_approx) return gelu_erf_f(x);
        const float k = 0.79788456080286536f;  // sqrt(2/pi)
        return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
    }
};
struct QuickGeluOp {
    __device__ float operator()(float x) const { return x / (1.0f + expf(-1.702f * x)); }
};
struct ScaleOp {
    float alpha, beta;
    __device__ float operator()(float x) const { return alpha * x + beta; }
};
// torch.lerp's form, exact at both ends (t = 0 gives a, t = 1 gives b).
struct LerpOp {
    float t;
    __device__ float operator()(float a, float b) const {
        return t < 0.5f ? a + t * (b - a) : b - (b - a) * (1.0f - t);
    }
};
struct AddOp {
    __device__ float operator()(float a, float b) const { return a + b; }
};
struct MulOp {
    __device__ float operator()(float a, float b) const { return a * b; }
};

// ---- out = op(x), out = op(a, b) on same-shaped tensors ---------------------------------

// n elements; packs of V first, then the n % V tail. out may alias the inputs.
template <typename T, int V, typename Op>
__global__ void ew_map1_kernel(T *out, const T *x, int64_t n, Op op) {
    const int64_t npack = n / V, stride = kthread_count();
    for (int64_t i = kthread_id(); i < npack; i += stride) {
        Pack<T, V> p = load_pack<T, V>(x, i), q;
        for (int j = 0; j < V; j++) q.v[j] = from_f32<T>(op(to_f32(p.v[j])));
        store_pack<T, V>(out, i, q);
    }
    for (int64_t i = npack * V + kthread_id(); i < n; i += stride)
        out[i] = from_f32<T>(op(to_f32(x[i])));
}

template <typename T, int V, typename Op>
__global__ void ew_map2_kernel(T *out, const T *a, const T *b, int64_t n, Op op) {
    const int64_t npack = n / V, stride = kthread_count();
    for (int64_t i = kthread_id(); i < npack; i += stride) {
        Pack<T, V> pa = load_pack<T, V>(a, i), pb = load_pack<T, V>(b, i), q;
        for (int j = 0; j < V; j++) q.v[j] = from_f32<T>(op(to_f32(pa.v[j]), to_f32(pb.v[j])));
        store_pack<T, V>(out, i, q);
    }
    for (int64_t i = npack * V + kthread_id(); i < n; i += stride)
        out[i] = from_f32<T>(op(to_f32(a[i]), to_f32(b[i])));
}

static const int EW_THREADS = 256;

template <typename T, typename Op>
static void launch_map1(const char *name, Tensor *out, const Tensor *x, Op op) {
    const int64_t n = tensor_numel(out);
    if (n == 0) return;
    T *o = (T *)out->data;
    const T *xi = (const T *)x->data;
    constexpr int V = PackWidth<T>::value;
    if (kaligned16(o) && kaligned16(xi)) {
        auto k = ew_map1_kernel<T, V, Op>;
        KERNEL_LAUNCH(k, kgrid(n / V + 1, EW_THREADS), EW_THREADS, 0, 0, o, xi, n, op);
    } else {
        auto k = ew_map1_kernel<T, 1, Op>;
        KERNEL_LAUNCH(k, kgrid(n, EW_THREADS), EW_THREADS, 0, 0, o, xi, n, op);
    }
    KLAUNCH_CHECK(name);
}

template <typename T, typename Op>
static void launch_map2(const char *name, T *o, const T *a, const T *b, int64_t n, Op op) {
    if (n == 0) return;
    constexpr int V = PackWidth<T>::value;
    if (kaligned16(o) && kaligned16(a) && kaligned16(b)) {
        auto k = ew_map2_kernel<T, V, Op>;
        KERNEL_LAUNCH(k, kgrid(n / V + 1, EW_THREADS), EW_THREADS, 0, 0, o, a, b, n, op);
    } else {
        auto k = ew_map2_kernel<T, 1, Op>;
        KERNEL_LAUNCH(k, kgrid(n, EW_THREADS), EW_THREADS, 0, 0, o, a, b, n, op);
    }
    KLAUNCH_CHECK(name);
}

void cuda_silu(Tensor *out, const Tensor *x) {
    kcheck_same("silu", out, x);
    KDISPATCH(out->dtype, "silu", T, launch_map1<T>("silu", out, x, SiluOp{}));
}

void cuda_gelu(Tensor *out, const Tensor *x, int tanh_approx) {
    kcheck_same("gelu", out, x);
    KDISPATCH(out->dtype, "gelu", T, launch_map1<T>("gelu", out, x, GeluOp{tanh_approx}));
}

void cuda_quick_gelu(Tensor *out, const Tensor *x) {
    kcheck_same("quick_gelu", out, x);
    KDISPATCH(out->dtype, "quick_gelu", T, launch_map1<T>("quick_gelu", out, x, QuickGeluOp{}));
}

void cuda_scale(Tensor *out, const Tensor *x, float alpha, float beta) {
    kcheck_same("scale", out, x);
    KDISPATCH(out->dtype, "scale", T, launch_map1<T>("scale", out, x, ScaleOp{alpha, beta}));
}

void cuda_lerp(Tensor *out, const Tensor *a, const Tensor *b, float t) {
    kcheck_same("lerp", out, a);
    kcheck_same("lerp", out, b);
    KDISPATCH(out->dtype, "lerp", T,
              launch_map2<T>("lerp", (T *)out->data, (const T *)a->data, (const T *)b->data,
                             tensor_numel(out), LerpOp{t}));
}

// ---- GEGLU: x (R, 2F) = [h | gate] -> out (R, F) = h * gelu_erf(gate) ------------------

// f_packs = F / V; n_packs = R * F / V.
template <typename T, int V>
__global__ void geglu_kernel(T *out, const T *x, int64_t n_packs, int64_t f_packs) {
    const int64_t stride = kthread_count();
    for (int64_t i = kthread_id(); i < n_packs; i += stride) {
        const int64_t r = i / f_packs, f = i - r * f_packs;
        // In units of packs, row r of x starts at 2 * r * f_packs.
        Pack<T, V> h = load_pack<T, V>(x, 2 * r * f_packs + f),
                   g = load_pack<T, V>(x, (2 * r + 1) * f_packs + f), q;
        for (int j = 0; j < V; j++)
            q.v[j] = from_f32<T>(to_f32(h.v[j]) * gelu_erf_f(to_f32(g.v[j])));
        store_pack<T, V>(out, i, q);
    }
}

template <typename T>
static void launch_geglu(Tensor *out, const Tensor *x, int64_t F) {
    const int64_t n = tensor_numel(out);
    if (n == 0) return;
    constexpr int V = PackWidth<T>::value;
    T *o = (T *)out->data;
    const T *xi = (const T *)x->data;
    if (F % V == 0 && kaligned16(o) && kaligned16(xi)) {
        auto k = geglu_kernel<T, V>;
        KERNEL_LAUNCH(k, kgrid(n / V, EW_THREADS), EW_THREADS, 0, 0, o, xi, n / V, F / V);
    } else {
        auto k = geglu_kernel<T, 1>;
        KERNEL_LAUNCH(k, kgrid(n, EW_THREADS), EW_THREADS, 0, 0, o, xi, n, F);
    }
    KLAUNCH_CHECK("geglu");
}

void cuda_geglu(Tensor *out, const Tensor *x) {
    kcheck_dev("geglu", "out", out);
    kcheck_dev("geglu", "x", x);
    const int64_t two_f = x->shape[x->ndim - 1], F = out->shape[out->ndim - 1];
    KCHECK(out->dtype == x->dtype && two_f == 2 * F && tensor_numel(x) == 2 * tensor_numel(out),
           "cuda_geglu: x %s must be (..., 2F) and out %s (..., F)", kdesc(x, 0), kdesc(out, 1));
    KDISPATCH(out->dtype, "geglu", T, launch_geglu<T>(out, x, F));
}

// ---- add / mul with broadcasting, bias add ------------------------------------------

// Broadcast of b over a in the common "channel" form: element i of a pairs with
// b[(i / inner) % C]. Covers same shape (inner 1, C n), scalars (C 1), per-channel
// (N, C, H, W) + (C, 1, 1) (inner H*W) and per-feature (M, N) + (N) (inner 1).
// MODE 0: V divides inner, one b value per pack. MODE 1: inner == 1 and V divides C,
// b is read as packs too.
template <typename T, int V, int MODE, typename Op>
__global__ void bcast_kernel(T *out, const T *a, const T *b, int64_t n, int64_t inner, int64_t C,
                             Op op) {
    const int64_t npack = n / V, stride = kthread_count();
    for (int64_t i = kthread_id(); i < npack; i += stride) {
        Pack<T, V> pa = load_pack<T, V>(a, i), q;
        if (MODE == 0) {
            const float bv = to_f32(b[(i * V / inner) % C]);
            for (int j = 0; j < V; j++) q.v[j] = from_f32<T>(op(to_f32(pa.v[j]), bv));
        } else {
            Pack<T, V> pb = load_pack<T, V>(b, i % (C / V));
            for (int j = 0; j < V; j++) q.v[j] = from_f32<T>(op(to_f32(pa.v[j]), to_f32(pb.v[j])));
        }
        store_pack<T, V>(out, i, q);
    }
    for (int64_t i = npack * V + kthread_id(); i < n; i += stride)
        out[i] = from_f32<T>(op(to_f32(a[i]), to_f32(b[(i / inner) % C])));
}

// Anything else: up to 4 collapsed dims of a with b's stride per dim (0 = broadcast).
struct BcastDims {
    int nd;
    int64_t size[TENSOR_MAX_DIMS];
    int64_t bstride[TENSOR_MAX_DIMS];
};

template <typename T, typename Op>
__global__ void bcast_general_kernel(T *out, const T *a, const T *b, int64_t n, BcastDims d,
                                     Op op) {
    const int64_t stride = kthread_count();
    for (int64_t i = kthread_id(); i < n; i += stride) {
        int64_t rem = i, boff = 0;
        for (int k = d.nd - 1; k >= 0; k--) {
            const int64_t q = rem / d.size[k];
            boff += (rem - q * d.size[k]) * d.bstride[k];
            rem = q;
        }
        out[i] = from_f32<T>(op(to_f32(a[i]), to_f32(b[boff])));
    }
}

// b's shape right-aligned against a's; size-1 dims of b repeat. Dims of size 1 are
// dropped and neighbours that broadcast the same way are merged, so the common cases
// reduce to the (inner, C) form of bcast_kernel.
static void bcast_plan(const char *op, const Tensor *a, const Tensor *b, BcastDims *d) {
    const int off = a->ndim - b->ndim;
    for (int j = 0; j < -off; j++)
        KCHECK(b->shape[j] == 1, "cuda_%s: b %s does not broadcast to a %s", op, kdesc(b, 0),
               kdesc(a, 1));
    int64_t size[TENSOR_MAX_DIMS], bs[TENSOR_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) {
        const int j = i - off;
        size[i] = a->shape[i];
        if (j < 0 || b->shape[j] == 1) {
            bs[i] = 0;
        } else {
            KCHECK(b->shape[j] == a->shape[i], "cuda_%s: b %s does not broadcast to a %s", op,
                   kdesc(b, 0), kdesc(a, 1));
            bs[i] = 1;
            for (int k = j + 1; k < b->ndim; k++) bs[i] *= b->shape[k];
        }
    }
    d->nd = 0;
    for (int i = 0; i < a->ndim; i++) {
        if (size[i] == 1) continue;
        if (d->nd > 0) {
            int64_t *ps = &d->size[d->nd - 1], *pb = &d->bstride[d->nd - 1];
            if ((*pb == 0 && bs[i] == 0) || (bs[i] != 0 && *pb == bs[i] * size[i])) {
                *ps *= size[i];
                *pb = bs[i];
                continue;
            }
        }
        d->size[d->nd] = size[i];
        d->bstride[d->nd] = bs[i];
        d->nd++;
    }
    if (d->nd == 0) {
        d->nd = 1;
        d->size[0] = 1;
        d->bstride[0] = 0;
    }
}

// Recognises the (inner, C) form; returns 0 when only the general kernel fits.
static int bcast_channel_form(const BcastDims *d, int64_t *inner, int64_t *C) {
    const int64_t *s = d->size, *b = d->bstride;
    if (d->nd == 1) {
        *inner = 1;
        *C = b[0] ? s[0] : 1;
        return 1;
    }
    if (d->nd == 2 && b[0] == 1 && b[1] == 0) {
        *inner = s[1], *C = s[0];
        return 1;
    }
    if (d->nd == 2 && b[0] == 0 && b[1] == 1) {
        *inner = 1, *C = s[1];
        return 1;
    }
    if (d->nd == 3 && b[0] == 0 && b[1] == 1 && b[2] == 0) {
        *inner = s[2], *C = s[1];
        return 1;
    }
    return 0;
}

template <typename T, typename Op>
static void launch_bcast_channel(const char *name, T *o, const T *a, const T *b, int64_t n,
                                 int64_t inner, int64_t C, Op op) {
    if (n == 0) return;
    constexpr int V = PackWidth<T>::value;
    const int aligned = kaligned16(o) && kaligned16(a);
    if (inner == 1 && C == n) {
        launch_map2<T>(name, o, a, b, n, op);
        return;
    }
    if (aligned && inner % V == 0) {
        auto k = bcast_kernel<T, V, 0, Op>;
        KERNEL_LAUNCH(k, kgrid(n / V + 1, EW_THREADS), EW_THREADS, 0, 0, o, a, b, n, inner, C, op);
    } else if (aligned && inner == 1 && C % V == 0 && kaligned16(b)) {
        auto k = bcast_kernel<T, V, 1, Op>;
        KERNEL_LAUNCH(k, kgrid(n / V + 1, EW_THREADS), EW_THREADS, 0, 0, o, a, b, n, inner, C, op);
    } else {
        auto k = bcast_kernel<T, 1, 0, Op>;
        KERNEL_LAUNCH(k, kgrid(n, EW_THREADS), EW_THREADS, 0, 0, o, a, b, n, inner, C, op);
    }
    KLAUNCH_CHECK(name);
}

template <typename T, typename Op>
static void launch_bcast(const char *name, Tensor *out, const Tensor *a, const Tensor *b, Op op) {
    BcastDims d;
    bcast_plan(name, a, b, &d);
    const int64_t n = tensor_numel(out);
    T *o = (T *)out->data;
    const T *pa = (const T *)a->data, *pb = (const T *)b->data;
    int64_t inner, C;
    if (bcast_channel_form(&d, &inner, &C)) {
        launch_bcast_channel<T>(name, o, pa, pb, n, inner, C, op);
    } else if (n > 0) {
        auto k = bcast_general_kernel<T, Op>;
        KERNEL_LAUNCH(k, kgrid(n, EW_THREADS), EW_THREADS, 0, 0, o, pa, pb, n, d, op);
        KLAUNCH_CHECK(name);
    }
}

static void check_binary(const char *op, const Tensor *out, const Tensor *a, const Tensor *b) {
    kcheck_same(op, out, a);
    kcheck_dev(op, "b", b);
    KCHECK(b->dtype == a->dtype, "cuda_%s: b %s and a %s differ in dtype", op, kdesc(b, 0),
           kdesc(a, 1));
    // Writing out while reading a broadcast b from the same memory would clobber b.
    KCHECK(out->data != b->data || tensor_numel(b) == tensor_numel(out),
           "cuda_%s: out %s aliases the broadcast operand b %s", op, kdesc(out, 0), kdesc(b, 1));
}

void cuda_add(Tensor *out, const Tensor *a, const Tensor *b) {
    check_binary("add", out, a, b);
    KDISPATCH(out->dtype, "add", T, launch_bcast<T>("add", out, a, b, AddOp{}));
}

void cuda_mul(Tensor *out, const Tensor *a, const Tensor *b) {
    check_binary("mul", out, a, b);
    KDISPATCH(out->dtype, "mul", T, launch_bcast<T>("mul", out, a, b, MulOp{}));
}

void cuda_bias_add(Tensor *out, const Tensor *b, int64_t inner) {
    kcheck_dev("bias_add", "out", out);
    kcheck_dev("bias_add", "b", b);
    const int64_t n = tensor_numel(out), C = tensor_numel(b);
    KCHECK(b->dtype == out->dtype && inner > 0 && C > 0 && n % (C * inner) == 0,
           "cuda_bias_add: out %s is not (outer, %lld, %lld) for bias %s", kdesc(out, 0),
           (long long)C, (long long)inner, kdesc(b, 1));
    KDISPATCH(out->dtype, "bias_add", T,
              launch_bcast_channel<T>("bias_add", (T *)out->data, (const T *)out->data,
                                      (const T *)b->data, n, inner, C, AddOp{}));
}
