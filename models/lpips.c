// models/lpips.c: LPIPS (AlexNet) on the CPU; see models/lpips.h for what is computed.
// Convolutions are im2col + one GEMM each (OpenBLAS): out (Co, Ho*Wo) = W (Co, Ci*k*k) @
// cols (Ci*k*k, Ho*Wo) + bias.
#include "models/lpips.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/safetensors.h"
#include "runner/check.h"

enum { LP_LAYERS = 5 };

// The five convs of alexnet.features: channels, kernel, stride, padding, the max-pool
// before the conv, and their names in the LPIPS state_dict.
static const struct {
    int ci, co, k, stride, pad, pool_before;
    const char *name;
} k_convs[LP_LAYERS] = {
    {3, 64, 11, 4, 2, 0, "net.slice1.0"},    {64, 192, 5, 1, 2, 1, "net.slice2.3"},
    {192, 384, 3, 1, 1, 1, "net.slice3.6"},  {384, 256, 3, 1, 1, 0, "net.slice4.8"},
    {256, 256, 3, 1, 1, 0, "net.slice5.10"},
};

struct Lpips {
    float *w[LP_LAYERS], *b[LP_LAYERS];  // (co, ci*k*k), (co)
    float *lin[LP_LAYERS];               // (co)
    float shift[3], scale[3];
};

struct LpipsFeatures {
    int c[LP_LAYERS], h[LP_LAYERS], w[LP_LAYERS];
    float *f[LP_LAYERS];  // (c, h, w), unit length over channels at each pixel
};

// Loads tensor `name` of exactly `numel` elements with the given shape into a new buffer.
static int load_tensor(const SafeTensors *st, const char *name, int ndim, const int64_t *shape,
                       float **out, char *err, size_t n) {
    const SafeTensorsEntry *e = st_find(st, name);
    if (!e) return snprintf(err, n, "%s: tensor '%s' is missing", st->path, name), -1;
    int same = e->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = e->shape[i] == shape[i];
    if (!same) {
        char want[128] = "", got[128] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "",
                     (long long)shape[i]);
        for (int i = 0; i < e->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)e->shape[i]);
        return snprintf(err, n, "%s: tensor '%s' has shape (%s); expected (%s) (LPIPS alex)",
                        st->path, name, got, want),
               -1;
    }
    *out = mallocCheck((size_t)e->numel * sizeof(float));
    if (st_load_f32(e, *out))
        return snprintf(err, n, "%s: tensor '%s': dtype %s cannot be read as f32", st->path, name,
                        st_dtype_name(e->dtype)),
               -1;
    return 0;
}

int lpips_load(Lpips **out, const char *path, char *err, size_t n) {
    *out = NULL;
    SafeTensors st;
    if (st_open(&st, path, err, n)) return -1;
    Lpips *m = calloc(1, sizeof *m);
    if (!m) STORY_FATAL("out of memory");
    int rc = 0;
    char name[128];
    for (int l = 0; l < LP_LAYERS && !rc; l++) {
        int ci = k_convs[l].ci, co = k_convs[l].co, k = k_convs[l].k;
        snprintf(name, sizeof name, "%s.weight", k_convs[l].name);
        rc = load_tensor(&st, name, 4, (const int64_t[]){co, ci, k, k}, &m->w[l], err, n);
        snprintf(name, sizeof name, "%s.bias", k_convs[l].name);
        if (!rc) rc = load_tensor(&st, name, 1, (const int64_t[]){co}, &m->b[l], err, n);
        // lin{l}.model.1 (with dropout, the default), or the ModuleList's / no-dropout names.
        const char *forms[] = {"lin%d.model.1.weight", "lins.%d.model.1.weight",
                               "lin%d.model.0.weight", "lins.%d.model.0.weight"};
        int found = 0;
        for (int f = 0; f < 4 && !found; f++) {
            snprintf(name, sizeof name, forms[f], l);
            found = st_find(&st, name) != NULL;
        }
        if (!found) snprintf(name, sizeof name, forms[0], l);
        if (!rc) rc = load_tensor(&st, name, 4, (const int64_t[]){1, co, 1, 1}, &m->lin[l], err, n);
    }
    const float shift[3] = {-.030f, -.088f, -.188f}, scale[3] = {.458f, .448f, .450f};
    memcpy(m->shift, shift, sizeof shift);
    memcpy(m->scale, scale, sizeof scale);
    const char *bufs[2] = {"scaling_layer.shift", "scaling_layer.scale"};
    for (int i = 0; i < 2 && !rc; i++) {
        if (!st_find(&st, bufs[i])) continue;
        float *v = NULL;
        rc = load_tensor(&st, bufs[i], 4, (const int64_t[]){1, 3, 1, 1}, &v, err, n);
        if (!rc) memcpy(i ? m->scale : m->shift, v, 3 * sizeof(float));
        free(v);
    }
    st_close(&st);
    if (rc) {
        lpips_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

void lpips_free(Lpips *m) {
    if (!m) return;
    for (int l = 0; l < LP_LAYERS; l++) free(m->w[l]), free(m->b[l]), free(m->lin[l]);
    free(m);
}

void lpips_features_free(LpipsFeatures *f) {
    if (!f) return;
    for (int l = 0; l < LP_LAYERS; l++) free(f->f[l]);
    free(f);
}

// out (c, ho, wo) = max-pool k3 s2 (no padding, floor) of x (c, h, w).
static void maxpool(const float *x, int c, int h, int w, float *out, int ho, int wo) {
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < ho; y++)
            for (int xo = 0; xo < wo; xo++) {
                const float *p = x + ((size_t)ch * h + 2 * y) * w + 2 * xo;
                float v = p[0];
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++) {
                        float q = p[(size_t)dy * w + dx];
                        if (q > v) v = q;
                    }
                out[((size_t)ch * ho + y) * wo + xo] = v;
            }
}

// out (co, ho, wo) = relu(conv(x (ci, h, w)) + b) for conv l.
static void conv_relu(const Lpips *m, int l, const float *x, int h, int w, float *out, int ho,
                      int wo) {
    int ci = k_convs[l].ci, co = k_convs[l].co, k = k_convs[l].k, s = k_convs[l].stride,
        pad = k_convs[l].pad;
    size_t K = (size_t)ci * k * k, P = (size_t)ho * wo;
    float *cols = mallocCheck(K * P * sizeof(float));  // (ci*k*k, ho*wo), row (c, ky, kx)
    for (int c = 0; c < ci; c++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *row = cols + (((size_t)c * k + ky) * k + kx) * P;
                for (int y = 0; y < ho; y++) {
                    int iy = y * s - pad + ky;
                    for (int xo = 0; xo < wo; xo++) {
                        int ix = xo * s - pad + kx;
                        row[(size_t)y * wo + xo] = iy >= 0 && iy < h && ix >= 0 && ix < w
                                                       ? x[((size_t)c * h + iy) * w + ix]
                                                       : 0.f;
                    }
                }
            }
    for (int c = 0; c < co; c++)
        for (size_t p = 0; p < P; p++) out[(size_t)c * P + p] = m->b[l][c];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, co, (int)P, (int)K, 1.f, m->w[l], (int)K,
                cols, (int)P, 1.f, out, (int)P);
    for (size_t i = 0; i < (size_t)co * P; i++)
        if (out[i] < 0) out[i] = 0;
    free(cols);
}

static int conv_size(int in, int k, int s, int pad) { return (in + 2 * pad - k) / s + 1; }
static int pool_size(int in) { return in < 3 ? 0 : (in - 3) / 2 + 1; }

int lpips_features(const Lpips *m, const uint8_t *rgb, int w, int h, LpipsFeatures **out, char *err,
                   size_t n) {
    *out = NULL;
    // Sizes first: refuse before computing anything.
    int hs[LP_LAYERS], ws[LP_LAYERS], ph = h, pw = w;
    for (int l = 0; l < LP_LAYERS; l++) {
        if (k_convs[l].pool_before) ph = pool_size(ph), pw = pool_size(pw);
        hs[l] = ph < 1 ? 0 : conv_size(ph, k_convs[l].k, k_convs[l].stride, k_convs[l].pad);
        ws[l] = pw < 1 ? 0 : conv_size(pw, k_convs[l].k, k_convs[l].stride, k_convs[l].pad);
        if (hs[l] < 1 || ws[l] < 1)
            return snprintf(err, n,
                            "frames of %dx%d are too small for LPIPS alex (at least 31x31 "
                            "pixels)",
                            w, h),
                   -1;
        ph = hs[l], pw = ws[l];
    }
    LpipsFeatures *f = calloc(1, sizeof *f);
    if (!f) STORY_FATAL("out of memory");
    // x (3, h, w): [-1, 1], then the scaling layer.
    size_t np = (size_t)w * h;
    float *x = mallocCheck(3 * np * sizeof(float));
    for (int c = 0; c < 3; c++)
        for (size_t p = 0; p < np; p++) {
            float v = (float)(rgb[p * 3 + c] / 127.5 - 1.0);  // lpips.im2tensor: in double
            x[c * np + p] = (v - m->shift[c]) / m->scale[c];
        }
    const float *in = x;
    int ih = h, iw = w;
    float *pooled = NULL;
    for (int l = 0; l < LP_LAYERS; l++) {
        int ci = k_convs[l].ci, co = k_convs[l].co;
        if (k_convs[l].pool_before) {
            int qh = pool_size(ih), qw = pool_size(iw);
            free(pooled);
            pooled = mallocCheck((size_t)ci * qh * qw * sizeof(float));
            maxpool(in, ci, ih, iw, pooled, qh, qw);
            in = pooled, ih = qh, iw = qw;
        }
        f->c[l] = co, f->h[l] = hs[l], f->w[l] = ws[l];
        f->f[l] = mallocCheck((size_t)co * hs[l] * ws[l] * sizeof(float));
        conv_relu(m, l, in, ih, iw, f->f[l], hs[l], ws[l]);
        in = f->f[l], ih = hs[l], iw = ws[l];
    }
    free(pooled);
    free(x);
    // Normalise each pixel's channel vector (after all layers: each feeds the next raw).
    for (int l = 0; l < LP_LAYERS; l++) {
        size_t P = (size_t)f->h[l] * f->w[l];
        for (size_t p = 0; p < P; p++) {
            float ss = 0;
            for (int c = 0; c < f->c[l]; c++) {
                float v = f->f[l][c * P + p];
                ss += v * v;
            }
            float d = sqrtf(ss) + 1e-10f;
            for (int c = 0; c < f->c[l]; c++) f->f[l][c * P + p] /= d;
        }
    }
    *out = f;
    return 0;
}

double lpips_compare(const Lpips *m, const LpipsFeatures *a, const LpipsFeatures *b) {
    double total = 0;
    for (int l = 0; l < LP_LAYERS; l++) {
        STORY_CHECK(a->h[l] == b->h[l] && a->w[l] == b->w[l], "layer %d: %dx%d vs %dx%d", l,
                    a->w[l], a->h[l], b->w[l], b->h[l]);
        size_t P = (size_t)a->h[l] * a->w[l];
        double sum = 0;
        for (size_t p = 0; p < P; p++) {
            double s = 0;
            for (int c = 0; c < a->c[l]; c++) {
                float d = a->f[l][c * P + p] - b->f[l][c * P + p];
                s += (double)m->lin[l][c] * (double)(d * d);
            }
            sum += s;
        }
        total += sum / (double)P;
    }
    return total;
}

int lpips_distance(const Lpips *m, const uint8_t *a, const uint8_t *b, int w, int h, double *d,
                   char *err, size_t n) {
    LpipsFeatures *fa = NULL, *fb = NULL;
    int rc = lpips_features(m, a, w, h, &fa, err, n);
    if (!rc) rc = lpips_features(m, b, w, h, &fb, err, n);
    if (!rc) *d = lpips_compare(m, fa, fb);
    lpips_features_free(fa);
    lpips_features_free(fb);
    return rc;
}
