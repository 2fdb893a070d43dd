// models/clip_vision.c: CLIPVisionModelWithProjection (see clip_vision.h): its config, its
// weights (transformers folders and single files, read with models/safetensors.h) and the
// forward pass built from kernels/ops.h.
#include "models/clip_vision.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/safetensors.h"
#include "runner/check.h"
#include "runner/json.h"

#define VISION_META_KEY "storyrun.config.image_encoder"
#define VISION_MAX_SHARDS 64

// ---- the weights on disk ----------------------------------------------------------------

// The files of one model: a folder's config.json and its (possibly sharded) safetensors, or
// a single safetensors file with its metadata config.
typedef struct {
    const char *path;
    SafeTensors files[VISION_MAX_SHARDS];
    int nfiles;
    JsonDoc *config;  // config.json, or the metadata JSON of a single file (NULL: none)
    int single;
} VisionSource;

static int verr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int verr(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = mallocCheck(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int is_file(const char *path) {
    struct stat s;
    return stat(path, &s) == 0 && S_ISREG(s.st_mode);
}

static void source_close(VisionSource *s) {
    for (int i = 0; i < s->nfiles; i++) st_close(&s->files[i]);
    s->nfiles = 0;
    json_free(s->config);
    s->config = NULL;
}

static int add_file(VisionSource *s, const char *path, char *err, size_t errlen) {
    if (s->nfiles == VISION_MAX_SHARDS)
        return verr(err, errlen, "%s: more than %d shards", s->path, VISION_MAX_SHARDS);
    memset(&s->files[s->nfiles], 0, sizeof s->files[0]);
    if (st_open(&s->files[s->nfiles], path, err, errlen)) return -1;
    s->nfiles++;
    return 0;
}

// index.json {"weight_map": {name: shard file}}: opens every shard it names once.
static int add_sharded(VisionSource *s, const char *dir, const char *index, char *err,
                       size_t errlen) {
    JsonError je;
    JsonDoc *doc = json_parse_file(index, NULL, &je);
    if (!doc) return verr(err, errlen, "%s", je.msg);
    const JsonValue *map = json_get(json_root(doc), "weight_map");
    int rc = -1;
    if (!map || map->type != JSON_OBJECT || !map->len) {
        verr(err, errlen,
             "%s: expected a non-empty object \"weight_map\" (tensor name -> shard file)", index);
        goto done;
    }
    for (size_t i = 0; i < map->len; i++) {
        const char *shard;
        if (json_as_string(doc, &map->members[i].value, map->members[i].key, &shard, err, errlen))
            goto done;
        if (!*shard || strchr(shard, '/') || !strcmp(shard, "..")) {
            json_errat(doc, map->members[i].value.pos, err, errlen,
                       "shard \"%s\" must be a file name in %s", shard, dir);
            goto done;
        }
        int seen = 0;
        for (int f = 0; f < s->nfiles && !seen; f++)
            seen = !strcmp(strrchr(s->files[f].path, '/') + 1, shard);
        if (seen) continue;
        char *p = path_join(dir, shard);
        int r = add_file(s, p, err, errlen);
        free(p);
        if (r) goto done;
    }
    rc = 0;
done:
    json_free(doc);
    return rc;
}

static int source_open(VisionSource *s, const char *path, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->path = path;
    struct stat st;
    if (stat(path, &st) != 0) return verr(err, errlen, "%s: %s", path, strerror(errno));
    JsonError je;
    if (!S_ISDIR(st.st_mode)) {  // one safetensors file; its config is metadata or derived
        s->single = 1;
        if (add_file(s, path, err, errlen)) return -1;
        const char *meta = st_meta(&s->files[0], VISION_META_KEY);
        if (meta) {
            char name[600];
            snprintf(name, sizeof name, "%s: metadata %s", path, VISION_META_KEY);
            s->config = json_parse(name, meta, strlen(meta), NULL, &je);
            if (!s->config) return source_close(s), verr(err, errlen, "%s", je.msg);
            if (json_root(s->config)->type != JSON_OBJECT)
                return source_close(s), verr(err, errlen, "%s: metadata %s: expected a JSON object",
                                             path, VISION_META_KEY);
        }
        return 0;
    }
    char *cfg = path_join(path, "config.json");
    if (!is_file(cfg)) {
        free(cfg);
        return verr(
            err, errlen,
            "%s: no config.json: expected a transformers CLIP vision model folder (config.json + "
            "model.safetensors, e.g. IP-Adapter's image_encoder/) or one .safetensors file",
            path);
    }
    s->config = json_parse_file(cfg, NULL, &je);
    free(cfg);
    if (!s->config) return verr(err, errlen, "%s", je.msg);
    static const char *singles[] = {"model.safetensors", "model.fp16.safetensors"};
    for (int i = 0; i < 2; i++) {
        char *p = path_join(path, singles[i]);
        if (is_file(p)) {
            int r = add_file(s, p, err, errlen);
            free(p);
            if (r) source_close(s);
            return r;
        }
        free(p);
    }
    char *index = path_join(path, "model.safetensors.index.json");
    int r = -1;
    if (is_file(index)) {
        r = add_sharded(s, path, index, err, errlen);
    } else {
        char *bin = path_join(path, "pytorch_model.bin");
        int pickle = is_file(bin);
        free(bin);
        verr(
            err, errlen,
            "%s: no weights: expected model.safetensors, a sharded model.safetensors.index.json or "
            "model.fp16.safetensors%s",
            path,
            pickle ? " (only pytorch_model.bin, a PyTorch pickle, which storyrun does not read: "
                     "convert "
                     "it with save_pretrained(..., safe_serialization=True))"
                   : "");
    }
    free(index);
    if (r) source_close(s);
    return r;
}

// The entry of "vision_model.<name>", else "<name>" (files written without the prefix, and
// visual_projection.weight, a sibling of vision_model). *file gets the file's path.
static const SafeTensorsEntry *source_find(const VisionSource *s, const char *name,
                                           const char **file) {
    char full[300];
    snprintf(full, sizeof full, "vision_model.%s", name);
    for (int pass = 0; pass < 2; pass++)
        for (int f = 0; f < s->nfiles; f++) {
            const SafeTensorsEntry *e = st_find(&s->files[f], pass ? name : full);
            if (e) {
                if (file) *file = s->files[f].path;
                return e;
            }
        }
    return NULL;
}

static const char *shape_str(int ndim, const int64_t *s, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (o < n) snprintf(buf + o, n - o, ndim == 1 ? ",)" : ")");
    return buf;
}

// The entry `name` with exactly `ndim` dims of `shape` (dims < 0: any, filled in).
static const SafeTensorsEntry *source_get(const VisionSource *s, const char *name, int ndim,
                                          int64_t *shape, char *err, size_t errlen) {
    const char *file = s->path;
    const SafeTensorsEntry *e = source_find(s, name, &file);
    if (!e) {
        verr(err, errlen,
             "%s: missing tensor vision_model.%s (expected the keys of transformers' "
             "CLIPVisionModelWithProjection%s)",
             s->path, name,
             source_find(s, "visual.conv1.weight", NULL)
                 ? "; this looks like an original OpenCLIP checkpoint: use the transformers "
                   "conversion, "
                   "e.g. IP-Adapter's image_encoder/ folder"
                 : "");
        return NULL;
    }
    int same = e->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] < 0 || shape[i] == e->shape[i];
    if (!same) {
        char a[160], b[160];
        verr(err, errlen, "%s: tensor %s: expected shape %s, found %s", file, e->name,
             shape_str(ndim, shape, a, sizeof a), shape_str(e->ndim, e->shape, b, sizeof b));
        return NULL;
    }
    for (int i = 0; i < ndim; i++) shape[i] = e->shape[i];
    return e;
}

// ---- config -----------------------------------------------------------------------------

static int cfg_int(const JsonDoc *doc, const JsonValue *obj, const char *key, int lo, int hi,
                   int *v, char *err, size_t errlen) {
    int64_t x = *v;
    if (json_get_int(doc, obj, key, lo, hi, &x, err, errlen) < 0) return -1;
    *v = (int)x;
    return 0;
}

// hidden_act and layer_norm_eps of obj, where present (defaults left otherwise).
static int cfg_act_eps(ClipVisionConfig *c, const JsonDoc *doc, const JsonValue *obj, char *err,
                       size_t errlen) {
    const char *act = NULL;
    if (json_get_string(doc, obj, "hidden_act", &act, err, errlen) < 0) return -1;
    if (!act) {
    } else if (!strcmp(act, "quick_gelu")) {
        c->act = CLIP_ACT_QUICK_GELU;
    } else if (!strcmp(act, "gelu")) {
        c->act = CLIP_ACT_GELU;
    } else if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh")) {
        c->act = CLIP_ACT_GELU_TANH;
    } else {
        return verr(err, errlen,
                    "%s: \"hidden_act\": \"%s\" is not supported (quick_gelu, gelu, gelu_new, "
                    "gelu_pytorch_tanh)",
                    json_file(doc), act);
    }
    double eps = c->layer_norm_eps;
    if (json_get_number(doc, obj, "layer_norm_eps", &eps, err, errlen) < 0) return -1;
    if (!(eps > 0 && eps < 1))
        return verr(err, errlen, "%s: \"layer_norm_eps\": expected a number in (0, 1), found %g",
                    json_file(doc), eps);
    c->layer_norm_eps = (float)eps;
    return 0;
}

// config.json: a CLIPVisionConfig, or a CLIPConfig's "vision_config" + "projection_dim".
// Defaults are CLIPVisionConfig's, used only where a key is absent.
static int config_from_json(ClipVisionConfig *c, const JsonDoc *doc, char *err, size_t errlen) {
    const JsonValue *root = json_root(doc), *obj = root;
    if (root->type != JSON_OBJECT)
        return verr(err, errlen, "%s: expected a JSON object", json_file(doc));
    const JsonValue *vc = json_get(root, "vision_config");
    if (vc && vc->type == JSON_OBJECT) obj = vc;
    *c = (ClipVisionConfig){768, 3072, 12, 12, 224, 32, 512, CLIP_ACT_QUICK_GELU, 1e-5f};
    int channels = 3;
    if (cfg_int(doc, obj, "hidden_size", 1, 1 << 16, &c->hidden_size, err, errlen) ||
        cfg_int(doc, obj, "intermediate_size", 1, 1 << 18, &c->intermediate_size, err, errlen) ||
        cfg_int(doc, obj, "num_hidden_layers", 1, 1024, &c->num_hidden_layers, err, errlen) ||
        cfg_int(doc, obj, "num_attention_heads", 1, 1024, &c->num_attention_heads, err, errlen) ||
        cfg_int(doc, obj, "image_size", 1, 1 << 14, &c->image_size, err, errlen) ||
        cfg_int(doc, obj, "patch_size", 1, 1 << 10, &c->patch_size, err, errlen) ||
        cfg_int(doc, obj, "num_channels", 3, 3, &channels, err, errlen) ||
        cfg_int(doc, root, "projection_dim", 1, 1 << 16, &c->projection_dim, err, errlen) ||
        cfg_act_eps(c, doc, obj, err, errlen))
        return -1;
    return 0;
}

// A single file: everything a shape tells, the rest from metadata or the known widths.
static int config_from_shapes(ClipVisionConfig *c, const VisionSource *s, char *err,
                              size_t errlen) {
    memset(c, 0, sizeof *c);
    int64_t sh[4] = {-1, -1, -1, -1};
    if (!source_get(s, "embeddings.class_embedding", 1, sh, err, errlen)) return -1;
    const int64_t C = sh[0];
    c->hidden_size = (int)C;
    c->layer_norm_eps = 1e-5f;
    static const struct {
        int width, heads;
        ClipAct act;
    } known[] = {{768, 12, CLIP_ACT_QUICK_GELU},
                 {1024, 16, CLIP_ACT_QUICK_GELU},
                 {1280, 16, CLIP_ACT_GELU},
                 {1664, 16, CLIP_ACT_GELU}};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (known[i].width == C) c->num_attention_heads = known[i].heads, c->act = known[i].act;
    if (s->config) {
        if (cfg_int(s->config, json_root(s->config), "num_attention_heads", 1, 1024,
                    &c->num_attention_heads, err, errlen) ||
            cfg_act_eps(c, s->config, json_root(s->config), err, errlen))
            return -1;
    }
    if (!c->num_attention_heads)
        return verr(err, errlen,
                    "%s: hidden size %lld is not one of a known CLIP image encoder (768, 1024, "
                    "1280, 1664): give "
                    "num_attention_heads and hidden_act as safetensors metadata \"%s\" (a JSON "
                    "object), or use "
                    "a transformers folder with its config.json",
                    s->path, (long long)C, VISION_META_KEY);
    int64_t pw[4] = {C, 3, -1, -1}, pos[2] = {-1, C}, fc1[2] = {-1, C}, proj[2] = {-1, C};
    if (!source_get(s, "embeddings.patch_embedding.weight", 4, pw, err, errlen) ||
        !source_get(s, "embeddings.position_embedding.weight", 2, pos, err, errlen))
        return -1;
    if (pw[2] != pw[3])
        return verr(err, errlen,
                    "%s: patch_embedding.weight: patches of %lld x %lld are not square", s->path,
                    (long long)pw[2], (long long)pw[3]);
    int64_t g = (int64_t)llround(sqrt((double)(pos[0] - 1)));
    if (pos[0] < 2 || g * g != pos[0] - 1)
        return verr(
            err, errlen,
            "%s: position_embedding.weight has %lld rows: expected 1 + a square number of patches",
            s->path, (long long)pos[0]);
    c->patch_size = (int)pw[2];
    c->image_size = (int)(g * pw[2]);
    char n[96];
    while (snprintf(n, sizeof n, "encoder.layers.%d.layer_norm1.weight", c->num_hidden_layers),
           source_find(s, n, NULL))
        c->num_hidden_layers++;
    if (!c->num_hidden_layers)
        return verr(err, errlen, "%s: no encoder layers (vision_model.encoder.layers.0.*)",
                    s->path);
    if (!source_get(s, "encoder.layers.0.mlp.fc1.weight", 2, fc1, err, errlen)) return -1;
    c->intermediate_size = (int)fc1[0];
    if (source_find(s, "visual_projection.weight", NULL)) {
        if (!source_get(s, "visual_projection.weight", 2, proj, err, errlen)) return -1;
        c->projection_dim = (int)proj[0];
    }
    return 0;
}

static int config_read(ClipVisionConfig *c, const VisionSource *s, char *err, size_t errlen) {
    if (s->single ? config_from_shapes(c, s, err, errlen)
                  : config_from_json(c, s->config, err, errlen))
        return -1;
    const char *where = s->single ? s->path : json_file(s->config);
    if (c->hidden_size % c->num_attention_heads)
        return verr(err, errlen, "%s: hidden_size %d is not a multiple of num_attention_heads %d",
                    where, c->hidden_size, c->num_attention_heads);
    if (c->image_size < c->patch_size)
        return verr(err, errlen, "%s: image_size %d is smaller than patch_size %d", where,
                    c->image_size, c->patch_size);
    // A config that promises a projection the file lacks describes a CLIPVisionModel:
    // it loads without one (image_embeds then unavailable).
    if (!s->single && !source_find(s, "visual_projection.weight", NULL)) c->projection_dim = 0;
    return 0;
}

int clip_vision_tokens(const ClipVisionConfig *cfg) {
    int g = cfg->image_size / cfg->patch_size;
    return 1 + g * g;
}

int clip_vision_config(ClipVisionConfig *cfg, const char *path, char *err, size_t errlen) {
    VisionSource s;
    if (source_open(&s, path, err, errlen)) return -1;
    int rc = config_read(cfg, &s, err, errlen);
    source_close(&s);
    return rc;
}

// ---- loading ----------------------------------------------------------------------------

static size_t round256(size_t n) { return (n + 255) & ~(size_t)255; }

size_t clip_vision_weight_bytes(const ClipVisionConfig *cfg, DType dt) {
    size_t es = dtype_size(dt), C = (size_t)cfg->hidden_size, I = (size_t)cfg->intermediate_size;
    size_t p = (size_t)cfg->patch_size, T = (size_t)clip_vision_tokens(cfg);
    size_t per_layer = 4 * round256(C * es) + 4 * (round256(C * C * es) + round256(C * es)) +
                       round256(I * C * es) + round256(I * es) + round256(C * I * es) +
                       round256(C * es);
    size_t n = round256(C * 3 * p * p * es) + round256(C * es) + round256(T * C * es) +
               4 * round256(C * es) + (size_t)cfg->num_hidden_layers * per_layer;
    if (cfg->projection_dim) n += round256((size_t)cfg->projection_dim * C * es);
    return n + 256;  // the arena may start unaligned
}

// Tensor `name` of shape (d0[, d1[, d2, d3]]) into an arena tensor viewed as (v0[, v1]).
static int load_one(const VisionSource *s, Arena *a, DType dt, Tensor *t, const char *name,
                    int ndim, const int64_t *shape, int vdim, const int64_t *view, char *err,
                    size_t errlen) {
    int64_t sh[4];
    memcpy(sh, shape, (size_t)ndim * sizeof *sh);
    const SafeTensorsEntry *e = source_get(s, name, ndim, sh, err, errlen);
    if (!e) return -1;
    *t = arena_tensor(a, dt, vdim, view);
    size_t bytes = tensor_nbytes(t);
    void *buf = a->dev == DEV_CPU ? t->data : mallocCheck(bytes);
    int rc = 0;
    if (st_load_as(e, dt, buf))
        rc = verr(err, errlen, "%s: tensor %s: cannot convert %s to %s", s->path, e->name,
                  st_dtype_name(e->dtype), dtype_name(dt));
    if (a->dev != DEV_CPU) {
        if (!rc) story_cuda_memcpy(t->data, buf, bytes, 0);
        free(buf);
    }
    return rc;
}

int clip_vision_load(ClipVision *m, const char *path, Arena *arena, DType dt, char *err,
                     size_t errlen) {
    memset(m, 0, sizeof *m);
    if (arena->dev == DEV_CPU && dt != DT_F32)
        return verr(err, errlen, "clip_vision_load: the CPU back end computes in f32, not %s",
                    dtype_name(dt));
    VisionSource s;
    if (source_open(&s, path, err, errlen)) return -1;
    if (config_read(&m->cfg, &s, err, errlen)) return source_close(&s), -1;
    const ClipVisionConfig *c = &m->cfg;
    m->dtype = dt;
    m->dev = arena->dev;
    const int64_t C = c->hidden_size, I = c->intermediate_size, p = c->patch_size,
                  T = clip_vision_tokens(c);
    m->layers = calloc((size_t)c->num_hidden_layers, sizeof *m->layers);
    if (!m->layers) STORY_FATAL("out of memory");
#define LOAD(t, name, nd, ...)                                                                   \
    do {                                                                                         \
        if (load_one(&s, arena, dt, (t), (name), nd, SHAPE(__VA_ARGS__), nd, SHAPE(__VA_ARGS__), \
                     err, errlen))                                                               \
            goto fail;                                                                           \
    } while (0)
#define LOAD1(t, name, d0) LOAD(t, name, 1, d0)
#define LOAD2(t, name, d0, d1) LOAD(t, name, 2, d0, d1)
    if (load_one(&s, arena, dt, &m->patch_w, "embeddings.patch_embedding.weight", 4,
                 SHAPE(C, 3, p, p), 2, SHAPE(C, 3 * p * p), err, errlen))
        goto fail;
    LOAD1(&m->class_emb, "embeddings.class_embedding", C);
    LOAD2(&m->pos_emb, "embeddings.position_embedding.weight", T, C);
    LOAD1(&m->pre_ln_w, "pre_layrnorm.weight", C);
    LOAD1(&m->pre_ln_b, "pre_layrnorm.bias", C);
    for (int i = 0; i < c->num_hidden_layers; i++) {
        ClipVisionLayer *l = &m->layers[i];
        char n[160];
#define LAYER(suffix) (snprintf(n, sizeof n, "encoder.layers.%d.%s", i, suffix), n)
#define LAYER1(t, suffix, d0) LOAD1(t, LAYER(suffix), d0)
#define LAYER2(t, suffix, d0, d1) LOAD2(t, LAYER(suffix), d0, d1)
        LAYER1(&l->ln1_w, "layer_norm1.weight", C);
        LAYER1(&l->ln1_b, "layer_norm1.bias", C);
        LAYER2(&l->q_w, "self_attn.q_proj.weight", C, C);
        LAYER1(&l->q_b, "self_attn.q_proj.bias", C);
        LAYER2(&l->k_w, "self_attn.k_proj.weight", C, C);
        LAYER1(&l->k_b, "self_attn.k_proj.bias", C);
        LAYER2(&l->v_w, "self_attn.v_proj.weight", C, C);
        LAYER1(&l->v_b, "self_attn.v_proj.bias", C);
        LAYER2(&l->o_w, "self_attn.out_proj.weight", C, C);
        LAYER1(&l->o_b, "self_attn.out_proj.bias", C);
        LAYER1(&l->ln2_w, "layer_norm2.weight", C);
        LAYER1(&l->ln2_b, "layer_norm2.bias", C);
        LAYER2(&l->fc1_w, "mlp.fc1.weight", I, C);
        LAYER1(&l->fc1_b, "mlp.fc1.bias", I);
        LAYER2(&l->fc2_w, "mlp.fc2.weight", C, I);
        LAYER1(&l->fc2_b, "mlp.fc2.bias", C);
#undef LAYER
#undef LAYER1
#undef LAYER2
    }
    LOAD1(&m->post_ln_w, "post_layernorm.weight", C);
    LOAD1(&m->post_ln_b, "post_layernorm.bias", C);
    if (c->projection_dim) LOAD2(&m->proj_w, "visual_projection.weight", c->projection_dim, C);
#undef LOAD
#undef LOAD1
#undef LOAD2
    source_close(&s);
    return 0;
fail:
    source_close(&s);
    clip_vision_free(m);
    return -1;
}

void clip_vision_free(ClipVision *m) {
    free(m->layers);
    m->layers = NULL;
}

// ---- forward ----------------------------------------------------------------------------

size_t clip_vision_scratch_bytes(const ClipVisionConfig *cfg, DType dt, int B) {
    size_t es = dtype_size(dt), C = (size_t)cfg->hidden_size, p = (size_t)cfg->patch_size;
    size_t T = (size_t)clip_vision_tokens(cfg), N = T - 1, BT = (size_t)B * T;
    return 5 * round256(BT * C * es) + round256(BT * (size_t)cfg->intermediate_size * es) +
           round256((size_t)B * N * 3 * p * p * es) + round256((size_t)B * N * C * es) +
           round256((size_t)B * C * es) + 256;
}

// nbytes from src to dst, both on `dev`.
static void dev_copy(Device dev, void *dst, const void *src, size_t nbytes) {
    if (dev == DEV_CPU)
        memcpy(dst, src, nbytes);
    else
        story_cuda_memcpy(dst, src, nbytes, 2);
}

static void check_out(const ClipVision *m, const Tensor *t, const char *what, int64_t d0,
                      int64_t d1, int64_t d2) {
    char d[96];
    int ok = t->dtype == m->dtype && t->dev == m->dev &&
             tensor_numel(t) == d0 * d1 * (d2 ? d2 : 1) && t->shape[0] == d0;
    if (!ok)
        STORY_FATAL("clip_vision_forward: %s is %s, expected (%lld, %lld%s) %s %s", what,
                    tensor_desc(t, d, sizeof d), (long long)d0, (long long)d1, d2 ? ", C" : "",
                    dtype_name(m->dtype), m->dev == DEV_CPU ? "cpu" : "cuda");
}

// patches (B, N, 3*p*p) in the model's dtype and device from pixel_values (B, 3, S, S) f32
// host: patch (gy, gx) flattened as (c, ky, kx), the order of the conv weight's (3, p, p).
static void patchify(const ClipVision *m, const float *px, int B, Tensor *patches) {
    const int S = m->cfg.image_size, p = m->cfg.patch_size, G = S / p, K = 3 * p * p;
    const size_t n = (size_t)B * G * G * K;
    float *h = m->dev == DEV_CPU && m->dtype == DT_F32 ? patches->data : mallocCheck(n * sizeof *h);
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++) {
                float *o = h + ((size_t)(b * G + gy) * G + gx) * K;
                for (int c = 0; c < 3; c++)
                    for (int ky = 0; ky < p; ky++)
                        memcpy(o + (c * p + ky) * p,
                               px + (((size_t)b * 3 + c) * S + gy * p + ky) * S + gx * p,
                               (size_t)p * sizeof *o);
            }
    if ((void *)h == patches->data) return;
    void *conv = h;
    if (m->dtype != DT_F32) {  // in place: 2-byte values over the 4-byte ones already read
        uint16_t *u = (uint16_t *)h;
        for (size_t i = 0; i < n; i++)
            u[i] = m->dtype == DT_F16 ? f32_to_f16(h[i]) : f32_to_bf16(h[i]);
    }
    if (m->dev == DEV_CPU)
        memcpy(patches->data, conv, tensor_nbytes(patches));
    else
        story_cuda_memcpy(patches->data, conv, tensor_nbytes(patches), 0);
    free(h);
}

int clip_vision_forward(const ClipVision *m, const Tensor *px, Arena *ws,
                        const ClipVisionOutputs *out, char *err, size_t errlen) {
    const ClipVisionConfig *c = &m->cfg;
    const int64_t C = c->hidden_size, nl = c->num_hidden_layers, T = clip_vision_tokens(c),
                  N = T - 1;
    const int64_t S = c->image_size, p = c->patch_size;
    STORY_CHECK(ws->dev == m->dev, "the scratch arena must be on the model's device");
    char d[96];
    if (px->dtype != DT_F32 || px->dev != DEV_CPU || px->ndim != 4 || px->shape[0] < 1 ||
        px->shape[1] != 3 || px->shape[2] != S || px->shape[3] != S)
        return verr(err, errlen,
                    "clip image encoder: pixel_values is %s, expected (B, 3, %lld, %lld) f32 cpu",
                    tensor_desc(px, d, sizeof d), (long long)S, (long long)S);
    const int64_t B = px->shape[0];
    int hidx = out->hidden_index < 0 ? (int)(nl + 1 + out->hidden_index) : out->hidden_index;
    if (out->hidden_state && (hidx < 0 || hidx > nl))
        return verr(err, errlen, "clip image encoder: hidden_states[%d] of a %lld-layer model",
                    out->hidden_index, (long long)nl);
    if (out->image_embeds && !c->projection_dim)
        return verr(err, errlen,
                    "clip image encoder: image_embeds asked of a model without visual_projection");
    if (out->image_embeds) check_out(m, out->image_embeds, "image_embeds", B, c->projection_dim, 0);
    if (out->pooled) check_out(m, out->pooled, "pooled", B, C, 0);
    if (out->last_hidden_state) check_out(m, out->last_hidden_state, "last_hidden_state", B, T, C);
    if (out->hidden_state) check_out(m, out->hidden_state, "hidden_state", B, T, C);
    const int need_final = out->image_embeds || out->pooled || out->last_hidden_state;
    const int64_t run = need_final ? nl : (out->hidden_state ? hidx : 0);

    const size_t mark = arena_mark(ws);
    const DType dt = m->dtype;
    const size_t row = (size_t)C * dtype_size(dt);
    Tensor x = ARENA_TENSOR(ws, dt, B, T, C);  // the residual stream
    Tensor h = ARENA_TENSOR(ws, dt, B, T, C);
    Tensor q = ARENA_TENSOR(ws, dt, B, T, C);
    Tensor k = ARENA_TENSOR(ws, dt, B, T, C);
    Tensor v = ARENA_TENSOR(ws, dt, B, T, C);
    Tensor f = ARENA_TENSOR(ws, dt, B, T, c->intermediate_size);

    // embeddings: x[b] = [class_embedding; patch_embedding(patches of b)] + position_embedding
    {
        const size_t sub = arena_mark(ws);
        Tensor patches = ARENA_TENSOR(ws, dt, B, N, 3 * p * p);
        Tensor pe = ARENA_TENSOR(ws, dt, B, N, C);
        patchify(m, px->data, (int)B, &patches);
        op_linear(&pe, &patches, &m->patch_w, NULL);
        for (int64_t b = 0; b < B; b++) {
            dev_copy(m->dev, (char *)x.data + (size_t)b * T * row, m->class_emb.data, row);
            dev_copy(m->dev, (char *)x.data + ((size_t)b * T + 1) * row,
                     (char *)pe.data + (size_t)b * N * row, N * row);
        }
        arena_release(ws, sub);
    }
    op_add(&x, &x, &m->pos_emb);  // (T, C) broadcast over B
    op_layer_norm(&x, &x, &m->pre_ln_w, &m->pre_ln_b, c->layer_norm_eps);
    if (out->hidden_state && hidx == 0)
        dev_copy(m->dev, out->hidden_state->data, x.data, tensor_nbytes(&x));

    const KVSegment seg = {&k, &v};
    for (int64_t li = 0; li < run; li++) {
        const ClipVisionLayer *l = &m->layers[li];
        // x += out_proj(attention(layer_norm1(x))): every token sees every token
        op_layer_norm(&h, &x, &l->ln1_w, &l->ln1_b, c->layer_norm_eps);
        op_linear(&q, &h, &l->q_w, &l->q_b);
        op_linear(&k, &h, &l->k_w, &l->k_b);
        op_linear(&v, &h, &l->v_w, &l->v_b);
        op_attention(&h, &q, &seg, 1, c->num_attention_heads, 0, 0.0f);
        op_linear(&q, &h, &l->o_w, &l->o_b);
        op_add(&x, &x, &q);
        // x += fc2(act(fc1(layer_norm2(x))))
        op_layer_norm(&h, &x, &l->ln2_w, &l->ln2_b, c->layer_norm_eps);
        op_linear(&f, &h, &l->fc1_w, &l->fc1_b);
        if (c->act == CLIP_ACT_QUICK_GELU)
            op_quick_gelu(&f, &f);
        else
            op_gelu(&f, &f, c->act == CLIP_ACT_GELU_TANH);
        op_linear(&q, &f, &l->fc2_w, &l->fc2_b);
        op_add(&x, &x, &q);
        if (out->hidden_state && hidx == li + 1)
            dev_copy(m->dev, out->hidden_state->data, x.data, tensor_nbytes(&x));
    }

    if (out->last_hidden_state)
        dev_copy(m->dev, out->last_hidden_state->data, x.data, tensor_nbytes(&x));
    if (out->pooled || out->image_embeds) {
        Tensor pooled = out->pooled ? *out->pooled : ARENA_TENSOR(ws, dt, B, C);
        for (int64_t b = 0; b < B; b++)
            dev_copy(m->dev, (char *)pooled.data + (size_t)b * row,
                     (char *)x.data + (size_t)b * T * row, row);
        op_layer_norm(&pooled, &pooled, &m->post_ln_w, &m->post_ln_b, c->layer_norm_eps);
        if (out->image_embeds) op_linear(out->image_embeds, &pooled, &m->proj_w, NULL);
    }
    arena_release(ws, mark);
    return 0;
}
