// models/motion_checkpoint.c: motion predictor checkpoints in one .safetensors file
// (layout in motion_predictor.h), written atomically by st_write; and loading of plain
// weight files. Checkpoints are user input when read back: every mismatch is reported
// with the file, the key or tensor, and what was expected.
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runner/check.h"
#include "motion_predictor.h"
#include "safetensors.h"

#define SMP_FORMAT "storyrun.smp.1"
#define SMP_META_MAX 32

typedef struct {
    char key[SMP_META_MAX][32];
    char val[SMP_META_MAX][64];
    const char *kv[2 * SMP_META_MAX];
    int n;
} MetaList;

static void meta_add(MetaList *l, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void meta_add(MetaList *l, const char *key, const char *fmt, ...) {
    STORY_CHECK(l->n < SMP_META_MAX, "too many metadata keys");
    snprintf(l->key[l->n], sizeof l->key[0], "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->val[l->n], sizeof l->val[0], fmt, ap);
    va_end(ap);
    l->kv[2 * l->n] = l->key[l->n];
    l->kv[2 * l->n + 1] = l->val[l->n];
    l->n++;
}

int smp_checkpoint_save(const char *path, const SmpModel *m, const SmpAdamW *opt,
                        const TorchRng *rng, long step, char *err, size_t errlen) {
    const SmpConfig *c = &m->cfg;
    MetaList meta = {0};
    meta_add(&meta, "format", "%s", SMP_FORMAT);
    meta_add(&meta, "layers", "%d", c->layers);
    meta_add(&meta, "width", "%d", c->width);
    meta_add(&meta, "heads", "%d", c->heads);
    meta_add(&meta, "mlp_ratio", "%d", c->mlp_ratio);
    meta_add(&meta, "embed_dim", "%d", c->embed_dim);
    meta_add(&meta, "frames", "%d", c->frames);
    meta_add(&meta, "ln_eps", "%.9g", c->ln_eps);
    meta_add(&meta, "endpoint_weight", "%.9g", c->endpoint_weight);
    meta_add(&meta, "token_inputs", "%d", c->token_inputs);
    meta_add(&meta, "step", "%ld", step);
    if (opt) {
        STORY_CHECK(opt->n == m->num_params, "optimizer for %zu parameters, model has %zu", opt->n,
                    m->num_params);
        meta_add(&meta, "adamw.step", "%ld", opt->step);
        meta_add(&meta, "adamw.beta1", "%.17g", opt->cfg.beta1);
        meta_add(&meta, "adamw.beta2", "%.17g", opt->cfg.beta2);
        meta_add(&meta, "adamw.eps", "%.17g", opt->cfg.eps);
        meta_add(&meta, "adamw.weight_decay", "%.17g", opt->cfg.weight_decay);
    }
    if (rng) {
        meta_add(&meta, "rng.left", "%d", rng->left);
        meta_add(&meta, "rng.next", "%d", rng->next);
        meta_add(&meta, "rng.seed", "%" PRIu64, rng->seed);
        meta_add(&meta, "rng.has_f64", "%d", rng->has_f64);
        meta_add(&meta, "rng.next_f64", "%.17g", rng->next_f64);
    }

    int n = 0;
    StWriteTensor *t = mallocCheck(sizeof(StWriteTensor) * (size_t)(m->ntensors + 3));
    int64_t flat[1] = {(int64_t)m->num_params}, mt[1] = {RNG_MT_N};
    for (int i = 0; i < m->ntensors; i++) {
        const SmpTensorInfo *info = &m->info[i];
        t[n++] =
            (StWriteTensor){info->name, ST_F32, info->ndim, info->shape, m->params + info->offset};
    }
    if (opt) {
        t[n++] = (StWriteTensor){"optimizer.exp_avg", ST_F32, 1, flat, opt->m};
        t[n++] = (StWriteTensor){"optimizer.exp_avg_sq", ST_F32, 1, flat, opt->v};
    }
    if (rng) t[n++] = (StWriteTensor){"rng.mt", ST_U32, 1, mt, rng->state};
    int rc = st_write(path, t, n, meta.kv, meta.n, err, errlen);
    free(t);
    return rc;
}

// ---- reading -------------------------------------------------------------------------------

static int meta_long(const SafeTensors *st, const char *key, long *out, char *err, size_t errlen) {
    const char *v = st_meta(st, key);
    if (!v) {
        snprintf(err, errlen,
                 "%s: __metadata__ has no \"%s\"; expected a motion predictor checkpoint (%s)",
                 st->path, key, SMP_FORMAT);
        return -1;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end) {
        snprintf(err, errlen, "%s: __metadata__ \"%s\" is \"%s\"; expected an integer", st->path,
                 key, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int meta_double(const SafeTensors *st, const char *key, double *out, char *err,
                       size_t errlen) {
    const char *v = st_meta(st, key);
    if (!v) {
        snprintf(err, errlen,
                 "%s: __metadata__ has no \"%s\"; expected a motion predictor checkpoint (%s)",
                 st->path, key, SMP_FORMAT);
        return -1;
    }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end) {
        snprintf(err, errlen, "%s: __metadata__ \"%s\" is \"%s\"; expected a number", st->path, key,
                 v);
        return -1;
    }
    *out = x;
    return 0;
}

static int read_config(const SafeTensors *st, SmpConfig *c, char *err, size_t errlen) {
    const char *fmt = st_meta(st, "format");
    if (!fmt || strcmp(fmt, SMP_FORMAT) != 0) {
        snprintf(err, errlen,
                 "%s: __metadata__ \"format\" is %s%s%s; expected \"%s\" (a motion predictor "
                 "checkpoint)",
                 st->path, fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "", SMP_FORMAT);
        return -1;
    }
    memset(c, 0, sizeof *c);
    const char *ikeys[] = {"layers",    "width",  "heads",       "mlp_ratio",
                           "embed_dim", "frames", "token_inputs"};
    int *ivals[] = {&c->layers,    &c->width,  &c->heads,       &c->mlp_ratio,
                    &c->embed_dim, &c->frames, &c->token_inputs};
    for (int i = 0; i < 7; i++) {
        long v;
        if (meta_long(st, ikeys[i], &v, err, errlen)) return -1;
        *ivals[i] = (int)v;
    }
    double eps, ew;
    if (meta_double(st, "ln_eps", &eps, err, errlen) ||
        meta_double(st, "endpoint_weight", &ew, err, errlen))
        return -1;
    c->ln_eps = (float)eps;
    c->endpoint_weight = (float)ew;
    char why[256];
    if (smp_config_check(c, why, sizeof why)) {
        snprintf(err, errlen, "%s: %s", st->path, why);
        return -1;
    }
    return 0;
}

int smp_checkpoint_config(const char *path, SmpConfig *cfg, char *err, size_t errlen) {
    SafeTensors st;
    if (st_open(&st, path, err, errlen)) return -1;
    int rc = read_config(&st, cfg, err, errlen);
    st_close(&st);
    return rc;
}

// Appends "; what" to err (the list of mismatches).
static void add_problem(char *err, size_t errlen, int *count, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add_problem(char *err, size_t errlen, int *count, const char *fmt, ...) {
    size_t len = strlen(err);
    if (len + 8 >= errlen) return;
    if (*count) len += (size_t)snprintf(err + len, errlen - len, "; ");
    va_list ap;
    va_start(ap, fmt);
    if (len < errlen) vsnprintf(err + len, errlen - len, fmt, ap);
    va_end(ap);
    (*count)++;
}

static int shape_matches(const SafeTensorsEntry *e, const SmpTensorInfo *t) {
    if (e->ndim != t->ndim) return 0;
    for (int d = 0; d < t->ndim; d++)
        if (e->shape[d] != t->shape[d]) return 0;
    return 1;
}

static void shape_str(char *s, size_t n, int ndim, const int64_t *shape) {
    size_t len = (size_t)snprintf(s, n, "(");
    for (int d = 0; d < ndim && len < n; d++)
        len += (size_t)snprintf(s + len, n - len, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (len < n) snprintf(s + len, n - len, ")");
}

// Checks and copies every parameter; `strict` also refuses tensors the checkpoint layout
// does not have. Lists all problems found.
static int load_params(SmpModel *m, const SafeTensors *st, int strict, char *err, size_t errlen) {
    int problems = 0;
    snprintf(err, errlen, "%s: ", st->path);
    for (int i = 0; i < m->ntensors; i++) {
        const SmpTensorInfo *t = &m->info[i];
        const SafeTensorsEntry *e = st_find(st, t->name);
        char want[48], got[48];
        shape_str(want, sizeof want, t->ndim, t->shape);
        if (!e) {
            add_problem(err, errlen, &problems, "tensor \"%s\" is missing (expected shape %s)",
                        t->name, want);
            continue;
        }
        if (!shape_matches(e, t)) {
            shape_str(got, sizeof got, e->ndim, e->shape);
            add_problem(err, errlen, &problems, "tensor \"%s\" has shape %s; expected %s", t->name,
                        got, want);
            continue;
        }
        if (e->dtype != ST_F32 && e->dtype != ST_F16 && e->dtype != ST_BF16) {
            add_problem(err, errlen, &problems, "tensor \"%s\" is %s; expected F32, F16 or BF16",
                        t->name, st_dtype_name(e->dtype));
            continue;
        }
        if (strict && e->dtype != ST_F32) {
            add_problem(err, errlen, &problems, "tensor \"%s\" is %s; a checkpoint holds F32",
                        t->name, st_dtype_name(e->dtype));
            continue;
        }
        STORY_CHECK(st_load_f32(e, m->params + t->offset) == 0, "F32/F16/BF16 always convert");
    }
    if (strict) {
        const char *extra[] = {"optimizer.exp_avg", "optimizer.exp_avg_sq", "rng.mt"};
        for (int i = 0; i < st_count(st); i++) {
            const char *name = st_entry(st, i)->name;
            int known = smp_find_tensor(m, name) != NULL;
            for (int k = 0; k < 3; k++) known |= strcmp(name, extra[k]) == 0;
            if (!known)
                add_problem(err, errlen, &problems,
                            "unexpected tensor \"%s\" (not a parameter of this model)", name);
        }
    }
    return problems ? -1 : 0;
}

int smp_load_weights(SmpModel *m, const char *path, char *err, size_t errlen) {
    SafeTensors st;
    if (st_open(&st, path, err, errlen)) return -1;
    int rc = load_params(m, &st, 0, err, errlen);
    st_close(&st);
    return rc;
}

static int load_flat(const SafeTensors *st, const char *name, float *dst, size_t n, char *err,
                     size_t errlen) {
    const SafeTensorsEntry *e = st_find(st, name);
    if (!e || e->dtype != ST_F32 || e->ndim != 1 || (size_t)e->numel != n) {
        snprintf(err, errlen,
                 "%s: tensor \"%s\" is %s; expected F32 of shape (%zu) (the optimizer state)",
                 st->path, name, e ? "of another dtype or shape" : "missing", n);
        return -1;
    }
    memcpy(dst, e->data, n * sizeof(float));
    return 0;
}

static int load_rng(const SafeTensors *st, TorchRng *rng, char *err, size_t errlen) {
    const SafeTensorsEntry *e = st_find(st, "rng.mt");
    if (!e || e->dtype != ST_U32 || e->ndim != 1 || e->numel != RNG_MT_N) {
        snprintf(err, errlen,
                 "%s: tensor \"rng.mt\" is %s; expected U32 of shape (%d) (the generator state)",
                 st->path, e ? "of another dtype or shape" : "missing", RNG_MT_N);
        return -1;
    }
    long left, next, has;
    double next_f64;
    if (meta_long(st, "rng.left", &left, err, errlen) ||
        meta_long(st, "rng.next", &next, err, errlen) ||
        meta_long(st, "rng.has_f64", &has, err, errlen) ||
        meta_double(st, "rng.next_f64", &next_f64, err, errlen))
        return -1;
    // the seed is a full 64-bit integer (strtol would clip it)
    const char *sv = st_meta(st, "rng.seed");
    char *end = NULL;
    errno = 0;
    unsigned long long seed = sv ? strtoull(sv, &end, 10) : 0;
    if (!sv || errno || end == sv || *end) {
        snprintf(err, errlen, "%s: __metadata__ \"rng.seed\" is %s; expected an unsigned integer",
                 st->path, sv ? sv : "missing");
        return -1;
    }
    if (left < 1 || left > RNG_MT_N + 1 || next < 0 || next > RNG_MT_N) {
        snprintf(err, errlen,
                 "%s: __metadata__ rng.left %ld / rng.next %ld out of range (1..%d / 0..%d)",
                 st->path, left, next, RNG_MT_N + 1, RNG_MT_N);
        return -1;
    }
    memcpy(rng->state, e->data, sizeof rng->state);
    rng->left = (int)left;
    rng->next = (int)next;
    rng->has_f64 = has != 0;
    rng->next_f64 = next_f64;
    rng->seed = (uint64_t)seed;
    return 0;
}

int smp_checkpoint_load(const char *path, SmpModel *m, SmpAdamW *opt, TorchRng *rng, long *step,
                        char *err, size_t errlen) {
    SafeTensors st;
    if (st_open(&st, path, err, errlen)) return -1;
    SmpConfig fc;
    int rc = read_config(&st, &fc, err, errlen);
    if (rc == 0) {
        // Every config key that differs from the model's, in one message.
        const SmpConfig *c = &m->cfg;
        int problems = 0;
        snprintf(err, errlen, "%s: the checkpoint was made for another model: ", path);
        const char *names[] = {"layers",    "width",  "heads",       "mlp_ratio",
                               "embed_dim", "frames", "token_inputs"};
        int a[] = {fc.layers,    fc.width,  fc.heads,       fc.mlp_ratio,
                   fc.embed_dim, fc.frames, fc.token_inputs};
        int b[] = {c->layers,    c->width,  c->heads,       c->mlp_ratio,
                   c->embed_dim, c->frames, c->token_inputs};
        for (int i = 0; i < 7; i++)
            if (a[i] != b[i])
                add_problem(err, errlen, &problems, "%s is %d, the model has %d", names[i], a[i],
                            b[i]);
        if (fc.ln_eps != c->ln_eps)
            add_problem(err, errlen, &problems, "ln_eps is %g, the model has %g", fc.ln_eps,
                        c->ln_eps);
        if (fc.endpoint_weight != c->endpoint_weight)
            add_problem(err, errlen, &problems, "endpoint_weight is %g, the model has %g",
                        fc.endpoint_weight, c->endpoint_weight);
        rc = problems ? -1 : 0;
    }
    if (rc == 0) rc = load_params(m, &st, 1, err, errlen);
    if (rc == 0 && step) {
        long s;
        rc = meta_long(&st, "step", &s, err, errlen);
        if (rc == 0) *step = s;
    }
    if (rc == 0 && opt) {
        long s;
        STORY_CHECK(opt->n == m->num_params, "optimizer for %zu parameters, model has %zu", opt->n,
                    m->num_params);
        rc = meta_long(&st, "adamw.step", &s, err, errlen);
        if (rc == 0) rc = load_flat(&st, "optimizer.exp_avg", opt->m, opt->n, err, errlen);
        if (rc == 0) rc = load_flat(&st, "optimizer.exp_avg_sq", opt->v, opt->n, err, errlen);
        if (rc == 0) opt->step = s;
    }
    if (rc == 0 && rng) rc = load_rng(&st, rng, err, errlen);
    st_close(&st);
    return rc;
}
