// tests/golden/test_ops_golden.c: every cpu_<op> of kernels/ops.h against PyTorch.
//
// tests/golden/make_golden.py wrote data/<op>.safetensors: per case "<case>/<role>"
// tensors (inputs and the expected "out") and "<case>.<param>" metadata. This program
// loads a file with models/safetensors.c, runs cpu_<op> on the inputs and compares.
//
// usage: test_ops_golden <data dir> <op | all> [--perturb]
//   --perturb  self-check of the comparison: each expected output gets one element moved
//              to twice its tolerance (one ulp where the tolerance is 0), and every case
//              must then FAIL (exit 0 iff so).
//
// Pass criterion, element-wise: |out - ref| <= atol + rtol * |ref| (NaN never passes).
// Outputs are pre-filled with NaN so an element the kernel forgets to write fails.
// The tolerances and the reason for each are in the OpTol table below.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "models/safetensors.h"

// ---- tolerances ------------------------------------------------------------------------
typedef struct {
    double atol, rtol;
    double atol_per_t;  // timestep_embedding only: extra atol per unit of |t| of the row
    int inplace;        // ops.h allows out == first input: run each case that way too
    const char *why;
} OpTol;

// GEMM-like sums of K products: both sides round K times in different orders; torch's own
// f32-vs-f64 error on these cases is <= 1.4e-6 (stored per case), so 1e-5 leaves >5x.
static const OpTol tol_linear = {1e-5, 1e-5, 0, 0,
                                 "f32 dot products, K <= 320, other summation order (BLAS)"};
static const OpTol tol_matmul = {1e-5, 1e-5, 0, 0,
                                 "f32 dot products, K <= 64, other summation order (BLAS)"};
static const OpTol tol_conv2d = {1e-5, 1e-5, 0, 0,
                                 "f32 sums of Ci*k*k <= 288 products, im2col/GEMM order"};
// Mean and variance over a group/row in another order; normalised outputs are O(1).
static const OpTol tol_group_norm = {1e-5, 1e-5, 0, 1,
                                     "f32 mean/variance over <= 64 values, other order"};
static const OpTol tol_layer_norm = {1e-5, 1e-5, 0, 1,
                                     "f32 mean/variance over <= 320 values, other order"};
// Values in [0, 1]; exp is a polynomial (2e-7 relative) and the row sum has <= 300 terms.
static const OpTol tol_softmax = {1e-6, 1e-5, 0, 1, "own exp (2 ulp) and row sum of <= 300 terms"};
// Transcendental functions evaluated differently (own exp/erf/tanh vs libm/torch).
static const OpTol tol_gelu = {1e-5, 1e-5, 0, 1, "erf/tanh evaluated differently (a few ulp)"};
static const OpTol tol_quick_gelu = {1e-5, 1e-5, 0, 1, "exp evaluated differently (a few ulp)"};
static const OpTol tol_silu = {1e-5, 1e-5, 0, 1, "exp evaluated differently (a few ulp)"};
static const OpTol tol_geglu = {1e-5, 1e-5, 0, 0, "erf evaluated differently (a few ulp)"};
// Copies and single IEEE operations are exact whatever the implementation.
static const OpTol tol_upsample_nearest2x = {0, 0, 0, 0, "a copy: exact"};
static const OpTol tol_add = {0, 0, 0, 1, "one correctly rounded f32 add: exact"};
static const OpTol tol_mul = {0, 0, 0, 1, "one correctly rounded f32 multiply: exact"};
static const OpTol tol_concat = {0, 0, 0, 0, "a copy: exact"};
static const OpTol tol_transpose = {0, 0, 0, 0, "a copy: exact"};
static const OpTol tol_gather_rows = {0, 0, 0, 0, "a copy: exact"};
// alpha * x + beta may be one fused multiply-add in C, two roundings in torch: <= 1 ulp
// of |alpha x| + |beta| (<= 8 here).
static const OpTol tol_scale = {1e-6, 1e-6, 0, 1, "FMA vs two roundings: 1 ulp of values <= 8"};
// torch.lerp switches to b - (b - a)(1 - t) for |t| >= 0.5; both are within an ulp or two
// of |a| + |b - a| (<= 8 here).
static const OpTol tol_lerp = {2e-6, 1e-6, 0, 1,
                               "torch's two-sided lerp formula: 2 ulp of values <= 8"};
// sin/cos of t * freq: each side rounds the argument (and the frequency) in float32, so
// the arguments may differ by ~2 ulp of |t| (2.4e-7 |t|; 2.4e-4 at t = 999), and sin/cos
// move by as much. Rows with small t are held to 1e-5.
static const OpTol tol_timestep_embedding = {1e-5, 0, 2.4e-7, 0,
                                             "arguments t*freq rounded in f32: 2 ulp of |t|"};
// Online softmax (rescaled running sums, exp2 polynomial) vs torch's SDPA: sums over
// <= 300 keys in another order. torch's own f32-vs-f64 error here is <= 3e-7.
static const OpTol tol_attention = {2e-5, 2e-5, 0, 0,
                                    "online softmax over <= 300 keys, other order, own exp2"};

// ---- case context ------------------------------------------------------------------------
typedef struct {
    const SafeTensors *st;
    const char *file, *cas;
    float *allocs[64];
    int nalloc;
    int bad;              // a tensor or parameter was missing or malformed
    unsigned char *used;  // per entry of st: read by some case
} Case;

static void *case_alloc(Case *c, size_t nfloats) {
    float *p = malloc((nfloats ? nfloats : 1) * sizeof(float));
    if (!p || c->nalloc == (int)(sizeof c->allocs / sizeof c->allocs[0])) {
        fprintf(stderr, "out of memory or too many tensors in case %s\n", c->cas);
        exit(2);
    }
    c->allocs[c->nalloc++] = p;
    return p;
}

static void case_free(Case *c) {
    for (int i = 0; i < c->nalloc; i++) free(c->allocs[i]);
    c->nalloc = 0;
}

// "<case>/<role>" as an f32 cpu tensor; NULL (and, when required, c->bad) if absent.
static Tensor *load_opt(Case *c, const char *role, Tensor *t, int required) {
    char name[256];
    snprintf(name, sizeof name, "%s/%s", c->cas, role);
    const SafeTensorsEntry *e = st_find(c->st, name);
    if (!e) {
        if (required) {
            fprintf(stderr, "%s: tensor '%s' is missing (rerun make_golden.py?)\n", c->file, name);
            c->bad = 1;
        }
        return NULL;
    }
    c->used[e - st_entry(c->st, 0)] = 1;
    if (e->ndim < 1 || e->ndim > TENSOR_MAX_DIMS) {
        fprintf(stderr, "%s: tensor '%s' has %d dims (1..%d supported)\n", c->file, name, e->ndim,
                TENSOR_MAX_DIMS);
        c->bad = 1;
        return NULL;
    }
    float *d = case_alloc(c, (size_t)e->numel);
    if (st_load_f32(e, d) != 0) {
        fprintf(stderr, "%s: tensor '%s' is %s, not convertible to f32\n", c->file, name,
                st_dtype_name(e->dtype));
        c->bad = 1;
        return NULL;
    }
    *t = tensor_view(d, DT_F32, DEV_CPU, e->ndim, e->shape);
    return t;
}

static Tensor load(Case *c, const char *role) {
    Tensor t = {0};
    if (!load_opt(c, role, &t, 1)) {
        static float dummy[1];
        t = tensor_view(dummy, DT_F32, DEV_CPU, 1, (int64_t[]){1});
    }
    return t;
}

static const char *param_str(Case *c, const char *key) {
    char name[256];
    snprintf(name, sizeof name, "%s.%s", c->cas, key);
    const char *v = st_meta(c->st, name);
    if (!v) {
        fprintf(stderr, "%s: metadata '%s' is missing\n", c->file, name);
        c->bad = 1;
    }
    return v;
}

static int param_int(Case *c, const char *key) {
    const char *v = param_str(c, key);
    char *end;
    long r = v ? strtol(v, &end, 10) : 0;
    if (v && (*v == '\0' || *end != '\0')) {
        fprintf(stderr, "%s: metadata '%s.%s' = '%s' is not an integer\n", c->file, c->cas, key, v);
        c->bad = 1;
    }
    return (int)r;
}

static float param_float(Case *c, const char *key) {
    const char *v = param_str(c, key);
    char *end;
    float r = v ? strtof(v, &end) : 0.0f;
    if (v && (*v == '\0' || *end != '\0')) {
        fprintf(stderr, "%s: metadata '%s.%s' = '%s' is not a number\n", c->file, c->cas, key, v);
        c->bad = 1;
    }
    return r;
}

// In-place runs: out gets a copy of the input and is passed as that input.
static const Tensor *alias(const Tensor *in, Tensor *out, int inplace) {
    if (!inplace) return in;
    if (tensor_numel(in) != tensor_numel(out)) {
        fprintf(stderr, "in-place run: input and output sizes differ\n");
        exit(2);
    }
    memcpy(out->data, in->data, tensor_nbytes(in));
    return out;
}

static Arena g_ws;  // conv2d scratch

// ---- one runner per op: load the inputs of case c, compute into out --------------------

static void run_linear(Case *c, Tensor *out, int inplace) {
    (void)inplace;
    Tensor x = load(c, "x"), w = load(c, "w"), bt;
    const Tensor *b = load_opt(c, "b", &bt, 0);
    if (!c->bad) cpu_linear(out, &x, &w, b);
}

static void run_matmul(Case *c, Tensor *out, int inplace) {
    (void)inplace;
    Tensor a = load(c, "a"), b = load(c, "b");
    int trans_b = param_int(c, "trans_b");
    float alpha = param_float(c, "alpha");
    if (!c->bad) cpu_matmul(out, &a, &b, trans_b, alpha);
}

static void run_conv2d(Case *c, Tensor *out, int inplace) {
    (void)inplace;
    Tensor x = load(c, "x"), w = load(c, "w"), bt;
    const Tensor *b = load_opt(c, "b", &bt, 0);
    int stride = param_int(c, "stride"), pad = param_int(c, "pad");
    if (!c->bad) cpu_conv2d(out, &x, &w, b, stride, pad, &g_ws);
}

static void run_group_norm(Case *c, Tensor *out, int inplace) {
    Tensor x = load(c, "x"), g = load(c, "gamma"), b = load(c, "beta");
    int groups = param_int(c, "groups"), silu = param_int(c, "fuse_silu");
    float eps = param_float(c, "eps");
    if (!c->bad) cpu_group_norm(out, alias(&x, out, inplace), &g, &b, groups, eps, silu);
}

static void run_layer_norm(Case *c, Tensor *out, int inplace) {
    Tensor x = load(c, "x"), gt, bt;
    const Tensor *g = load_opt(c, "gamma", &gt, 0), *b = load_opt(c, "beta", &bt, 0);
    float eps = param_float(c, "eps");
    if (!c->bad) cpu_layer_norm(out, alias(&x, out, inplace), g, b, eps);
}

static void run_softmax(Case *c, Tensor *out, int inplace) {
    Tensor x = load(c, "x");
    if (!c->bad) cpu_softmax(out, alias(&x, out, inplace));
}

static void run_gelu(Case *c, Tensor *out, int inplace) {
    Tensor x = load(c, "x");
    int tanh_approx = param_int(c, "tanh_approx");
    if (!c->bad) cpu_gelu(out, alias(&x, out, inplace), tanh_approx);
}

static void run_quick_gelu(Case *c, Tensor *out, int inplace) {
    Tensor x = load(c, "x");
    if (!c->bad) cpu_quick_gelu(out, alias(&x, out, inplace));
}

static void run_silu(Case *c, Tensor *out, int inplace) {
    Tensor x = load(c, "x");
    if (!c->bad) cpu_silu(out, alias(&x, out, inplace));
}

static void run_geglu(Case *c, Tensor *out, int inplace) {
    (void)inplace;
    Tensor x = load(c, "x");
    if (!c->bad) cpu_geglu(out, &x);
}

static void run_upsample_nearest2x(Case *c, Tensor *out, int inplace) {
    (void)inplace;
    Tensor x = load(c, "x");
    if (!c->bad) cpu_upsample_nearest2x(out, &x);
}

static void run_add(Case *c, Tensor *out, int inplace) {
    Tensor a = load(c, "a"), b = load(c, "b");
    if (!c->bad) cpu_add(out, alias(&a, out, inplace), &b);
}

static void run_mul(Case *c, Tensor *out, int inplace) {
    Tensor a = load(c, "a"), b = load(c, "b");
    if (!c->bad) cpu_mul(out, alias(&a, out, inplace), &b);
}

static void run_scale(Case *c, Tensor *out, int inplace) {
    Tensor x = load(c, "x");
    float alpha = param_float(c, "alpha"), beta = param_float(c, "beta");
    if (!c->bad) cpu_scale(out, alias(&x, out, inplace), alpha, beta);
}

static void run_transpose(Case *c, Tensor *out, int inplace) {
    (void)inplace;
    Tensor x = load(c, "x");
    if (!c->bad) cpu_transpose(out, &x);
}

// idx is stored as f32 (small integers are exact); it must hold whole numbers in [0, M),
// or cpu_gather_rows would abort instead of the case failing.
static void run_gather_rows(Case *c, Tensor *out, int inplace) {
    (void)inplace;
    Tensor x = load(c, "x"), fi = load(c, "idx");
    if (c->bad) return;
    const int64_t n = tensor_numel(&fi), C = x.shape[x.ndim - 1], M = tensor_numel(&x) / C;
    if (n != tensor_numel(out) / C) {
        fprintf(stderr, "%s: case %s: %lld indices for %lld rows\n", c->file, c->cas, (long long)n,
                (long long)(tensor_numel(out) / C));
        c->bad = 1;
        return;
    }
    int32_t *idx = case_alloc(c, (size_t)n);  // sizeof(int32_t) == sizeof(float)
    for (int64_t i = 0; i < n; i++) {
        const float v = ((const float *)fi.data)[i];
        if (!(v >= 0 && v < (float)M && v == floorf(v))) {
            fprintf(stderr, "%s: case %s: idx[%lld] = %g is not a row of x\n", c->file, c->cas,
                    (long long)i, (double)v);
            c->bad = 1;
            return;
        }
        idx[i] = (int32_t)v;
    }
    cpu_gather_rows(out, &x, idx);
}

static void run_concat(Case *c, Tensor *out, int inplace) {
    (void)inplace;
    Tensor a = load(c, "a"), b = load(c, "b");
    int dim = param_int(c, "dim");
    if (!c->bad) cpu_concat(out, &a, &b, dim);
}

static void run_lerp(Case *c, Tensor *out, int inplace) {
    Tensor a = load(c, "a"), b = load(c, "b");
    float t = param_float(c, "t");
    if (!c->bad) cpu_lerp(out, alias(&a, out, inplace), &b, t);
}

static void run_timestep_embedding(Case *c, Tensor *out, int inplace) {
    (void)inplace;
    Tensor t = load(c, "t");
    int flip = param_int(c, "flip_sin_to_cos");
    float shift = param_float(c, "downscale_freq_shift"), period = param_float(c, "max_period");
    if (!c->bad && tensor_numel(&t) != out->shape[0]) {
        fprintf(stderr, "%s: case %s: %lld timesteps for %lld rows\n", c->file, c->cas,
                (long long)tensor_numel(&t), (long long)out->shape[0]);
        c->bad = 1;
    }
    if (!c->bad) cpu_timestep_embedding(out, t.data, flip, shift, period);
}

static void run_attention(Case *c, Tensor *out, int inplace) {
    (void)inplace;
    Tensor q = load(c, "q");
    int nsegs = param_int(c, "nsegs"), heads = param_int(c, "heads"),
        causal = param_int(c, "causal");
    float scale = param_float(c, "scale");
    if (nsegs < 1 || nsegs > ATTN_MAX_SEGMENTS) {
        fprintf(stderr, "%s: case %s: nsegs = %d\n", c->file, c->cas, nsegs);
        c->bad = 1;
        return;
    }
    Tensor k[ATTN_MAX_SEGMENTS], v[ATTN_MAX_SEGMENTS];
    KVSegment segs[ATTN_MAX_SEGMENTS];
    for (int i = 0; i < nsegs; i++) {
        char kn[16], vn[16];
        snprintf(kn, sizeof kn, "k%d", i);
        snprintf(vn, sizeof vn, "v%d", i);
        k[i] = load(c, kn);
        v[i] = load(c, vn);
        segs[i] = (KVSegment){&k[i], &v[i]};
    }
    if (!c->bad) cpu_attention(out, &q, segs, nsegs, heads, causal, scale);
}

// ---- the op table: built from STORY_OPS, so an op without a runner does not compile ----
typedef struct {
    const char *op;
    void (*run)(Case *c, Tensor *out, int inplace);
    const OpTol *tol;
} OpSpec;

#define GOLDEN_SPEC_(name, params, args, dev) {#name, run_##name, &tol_##name},
static const OpSpec k_specs[] = {STORY_OPS(GOLDEN_SPEC_)};
#define NSPECS ((int)(sizeof k_specs / sizeof k_specs[0]))

// Compares out with ref; returns 1 on pass. Prints one line.
static int compare(const char *op, const char *cas, const Tensor *out, const Tensor *ref,
                   const OpTol *tol, const float *t_rows, const char *noise) {
    const float *o = out->data, *r = ref->data;
    int64_t n = tensor_numel(ref), row = ref->shape[ref->ndim - 1];
    double max_err = 0, worst = 0, ref_at = 0, max_tol = 0;
    int64_t worst_i = -1, nan_i = -1;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)o[i] - (double)r[i]);
        double atol = tol->atol + (t_rows ? tol->atol_per_t * fabs((double)t_rows[i / row]) : 0.0);
        double tl = atol + tol->rtol * fabs((double)r[i]);
        if (tl > max_tol) max_tol = tl;
        if (isnan(err)) {  // a NaN anywhere fails, whatever the tolerance
            if (nan_i < 0) nan_i = i;
            continue;
        }
        double ratio = tl > 0 ? err / tl : (err > 0 ? INFINITY : 0.0);
        if (worst_i < 0 || ratio > worst) worst = ratio, worst_i = i;
        if (err > max_err) max_err = err, ref_at = r[i];
    }
    int pass = nan_i < 0 && worst <= 1.0;
    if (nan_i >= 0) max_err = NAN;
    char extra[48] = "";
    if (t_rows) snprintf(extra, sizeof extra, " + %.1e*|t|", tol->atol_per_t);
    printf(
        "%-20s %-28s max abs err %9.3e (|ref| %8.3g)  tol %.1e + %.1e*|ref|%s  err/tol %6.3f  "
        "torch f32-f64 "
        "%s  %s\n",
        op, cas, max_err, fabs(ref_at), tol->atol, tol->rtol, extra, worst, noise ? noise : "?",
        pass ? "PASS" : "FAIL");
    if (!pass) {
        int64_t i = nan_i >= 0 ? nan_i : worst_i;
        printf(
            "    first bad element %lld: got %.9g, expected %.9g (largest tolerance in case "
            "%.2e)\n",
            (long long)i, o[i], r[i], max_tol);
    }
    return pass;
}

// Runs every case of one op file. Returns the number of failures (perturb: of cases the
// comparison did NOT catch).
static int run_op(const char *dir, const OpSpec *spec, int perturb) {
    char path[1024], err[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, spec->op);
    SafeTensors st;
    if (st_open(&st, path, err, sizeof err) != 0) {
        printf("%-20s FAIL: %s (golden data missing? run tests/golden/make_golden.py)\n", spec->op,
               err);
        return 1;
    }
    const char *op_meta = st_meta(&st, "op"), *cases = st_meta(&st, "cases");
    if (!op_meta || strcmp(op_meta, spec->op) || !cases || !cases[0]) {
        printf("%-20s FAIL: %s: metadata 'op' is '%s' and 'cases' '%s'\n", spec->op, path,
               op_meta ? op_meta : "", cases ? cases : "");
        st_close(&st);
        return 1;
    }
    printf("golden %s: %s, tolerance %.1e + %.1e*|ref| per element: %s\n", spec->op, path,
           spec->tol->atol, spec->tol->rtol, spec->tol->why);
    unsigned char *used = calloc((size_t)st_count(&st) + 1, 1);
    int failures = 0, ncases = 0;
    char list[4096];
    snprintf(list, sizeof list, "%s", cases);
    for (char *save = NULL, *cas = strtok_r(list, ",", &save); cas;
         cas = strtok_r(NULL, ",", &save)) {
        for (int inplace = 0; inplace <= spec->tol->inplace; inplace++) {
            Case c = {.st = &st, .file = path, .cas = cas, .used = used};
            char label[160];
            snprintf(label, sizeof label, "%s%s", cas, inplace ? " [in-place]" : "");
            Tensor ref;
            if (!load_opt(&c, "out", &ref, 1)) {
                printf("%-20s %-28s FAIL: no expected output\n", spec->op, label);
                failures++;
                case_free(&c);
                continue;
            }
            int64_t n = tensor_numel(&ref);
            float *od = case_alloc(&c, (size_t)n);
            for (int64_t i = 0; i < n; i++) od[i] = NAN;
            Tensor out = tensor_view(od, DT_F32, DEV_CPU, ref.ndim, ref.shape);
            spec->run(&c, &out, inplace);
            const float *t_rows = NULL;
            Tensor tt;
            if (spec->tol->atol_per_t > 0 && load_opt(&c, "t", &tt, 1)) t_rows = tt.data;
            char nk[200];
            snprintf(nk, sizeof nk, "%s.f32_vs_f64", cas);
            const char *noise = st_meta(&st, nk);
            if (c.bad) {
                printf("%-20s %-28s FAIL: bad golden data (see above)\n", spec->op, label);
                failures++;
            } else if (perturb) {
                // move one element to twice its tolerance (one ulp for the exact ops): the
                // comparison must catch it, so the tolerance is applied as stated
                int64_t i = n / 2;
                float *rv = (float *)ref.data + i;
                double tl =
                    spec->tol->atol + spec->tol->rtol * fabs(*rv) +
                    (t_rows ? spec->tol->atol_per_t * fabs(t_rows[i / ref.shape[ref.ndim - 1]])
                            : 0.0);
                float moved = tl > 0 ? (float)(*rv + 2.0 * tl) : nextafterf(*rv, INFINITY);
                *rv = moved;
                int pass = compare(spec->op, label, &out, &ref, spec->tol, t_rows, noise);
                printf("    perturbed element %lld: %s\n", (long long)i,
                       pass ? "NOT DETECTED" : "detected");
                failures += pass;
            } else {
                failures += !compare(spec->op, label, &out, &ref, spec->tol, t_rows, noise);
            }
            ncases++;
            case_free(&c);
        }
    }
    // every tensor in the file belongs to a case the test understood
    for (int i = 0; i < st_count(&st); i++)
        if (!used[i]) {
            printf("%-20s FAIL: %s: tensor '%s' is not used by any case\n", spec->op, path,
                   st_entry(&st, i)->name);
            failures++;
        }
    printf("golden %s: %d run(s), %d %s\n", spec->op, ncases, failures,
           perturb ? "perturbation(s) not detected" : "failure(s)");
    free(used);
    st_close(&st);
    return failures;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s <data dir> <op | all> [--perturb]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *which = argv[2];
    int perturb = argc > 3 && !strcmp(argv[3], "--perturb");
    if (arena_init(&g_ws, DEV_CPU, (size_t)64 << 20) != 0) return 2;
    int failures = 0, ran = 0;
    for (int i = 0; i < NSPECS; i++) {
        if (strcmp(which, "all") && strcmp(which, k_specs[i].op)) continue;
        failures += run_op(dir, &k_specs[i], perturb);
        ran++;
    }
    arena_free(&g_ws);
    if (!ran) {
        fprintf(stderr, "no op named '%s' in kernels/ops.h\n", which);
        return 2;
    }
    printf("golden %s: %d op file(s), %d %s\n", which, ran, failures,
           perturb ? "perturbation(s) not detected" : "failure(s)");
    return failures ? 1 : 0;
}
