// models/unet_video.c: AnimateDiff motion adapters (both key layouts) and the video UNet's
// forward through the UNet's layer seam (see unet_video.h).
#include "models/unet_video.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/cuda_runtime_api.h"
#include "models/unet_internal.h"
#include "runner/check.h"
#include "runner/json.h"

// ---- names ------------------------------------------------------------------------------------

static int ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

// The original AnimateDiff key of a diffusers MotionAdapter name (see unet_video.h); 0, or -1
// when the name is not a motion-module name.
static int original_name(const char *name, char *out, size_t cap) {
    const char *mm = strstr(name, ".motion_modules.");
    if (!mm) return -1;
    const char *dot = strchr(mm + strlen(".motion_modules."), '.');  // after M
    if (!dot) return -1;
    const char *rest = dot + 1;
    char tail[320];
    int k;
    int used = 0;
    if (sscanf(rest, "transformer_blocks.%d.%n", &k, &used) == 1 && used > 0) {
        static const char *const sub[][2] = {{"attn1.", "attention_blocks.0."},
                                             {"attn2.", "attention_blocks.1."},
                                             {"norm1.", "norms.0."},
                                             {"norm2.", "norms.1."},
                                             {"norm3.", "ff_norm."},
                                             {"pos_embed.", "attention_blocks.0.pos_encoder."}};
        const char *part = rest + used;
        const char *to = NULL;
        size_t skip = 0;
        for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++)
            if (!strncmp(part, sub[i][0], strlen(sub[i][0])))
                to = sub[i][1], skip = strlen(sub[i][0]);
        snprintf(tail, sizeof tail, "transformer_blocks.%d.%s%s", k, to ? to : "", part + skip);
    } else {
        snprintf(tail, sizeof tail, "%s", rest);
    }
    const int n = snprintf(out, cap, "%.*s.temporal_transformer.%s", (int)(dot - name), name, tail);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static const SafeTensorsEntry *
find(const MotionAdapterFile *f, const char *fmt, ...) {
    char name[320], key[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (!f->original) return st_find(&f->st, name);
    return original_name(name, key, sizeof key) ? NULL : st_find(&f->st, key);
}

// ---- opening ---------------------------------------------------------------------------------

static int is_dir(const char *p) {
    struct stat s;
    return !stat(p, &s) && S_ISDIR(s.st_mode);
}

// Transformer blocks of the module at prefix (0 if none).
static int module_depth(const MotionAdapterFile *f, const char *prefix) {
    int k = 0;
    while (find(f, "%s.transformer_blocks.%d.norm1.weight", prefix, k)) k++;
    return k;
}

// config.json values that matter: heads (int or per block), max frames; the rest must agree
// with the file or be one storyrun computes.
static int read_config(MotionAdapterFile *f, const JsonDoc *doc, int *heads, int *max_frames,
                       char *err, size_t errlen) {
    const JsonValue *root = json_root(doc), *v;
    MotionAdapterConfig *c = &f->cfg;
    int rc = -1;
    if ((v = json_get(root, "conv_in_channels")) && v->type != JSON_NULL) {
        json_errat(doc, v->pos, err, errlen,
                   "\"conv_in_channels\": PIA-style adapters (an extra conv_in) are not "
                   "supported; expected null");
        goto out;
    }
    if ((v = json_get(root, "motion_mid_block_layers_per_block")) &&
        !(v->type == JSON_NUMBER && v->d == 1)) {
        json_errat(doc, v->pos, err, errlen,
                   "\"motion_mid_block_layers_per_block\": only 1 is supported (as "
                   "UNetMotionModel builds the mid block)");
        goto out;
    }
    if ((v = json_get(root, "motion_num_attention_heads"))) {
        if (v->type == JSON_ARRAY) {
            if ((int)json_count(v) != c->nblocks) {
                json_errat(doc, v->pos, err, errlen,
                           "\"motion_num_attention_heads\": %zu values for %d blocks",
                           json_count(v), c->nblocks);
                goto out;
            }
            for (int i = 0; i < c->nblocks; i++) {
                int64_t x;
                if (json_as_int(doc, json_at(v, i), "\"motion_num_attention_heads\"", 1, 4096, &x,
                                err, errlen))
                    goto out;
                heads[i] = (int)x;
            }
        } else {
            int64_t x;
            if (json_as_int(doc, v, "\"motion_num_attention_heads\"", 1, 4096, &x, err, errlen))
                goto out;
            for (int i = 0; i < c->nblocks; i++) heads[i] = (int)x;
        }
    }
    if ((v = json_get(root, "motion_max_seq_length"))) {
        int64_t x;
        if (json_as_int(doc, v, "\"motion_max_seq_length\"", 1, 1 << 16, &x, err, errlen)) goto out;
        *max_frames = (int)x;
    }
    if ((v = json_get(root, "use_motion_mid_block")) && v->type == JSON_BOOL &&
        v->boolean != (c->mid != 0)) {
        json_errat(doc, v->pos, err, errlen,
                   "\"use_motion_mid_block\" is %s but the weights %s a mid-block module",
                   v->boolean ? "true" : "false", c->mid ? "have" : "lack");
        goto out;
    }
    rc = 0;
out:
    return rc;
}

// The config of f->st's names and shapes, with doc (config.json, may be NULL) over them.
static int derive(MotionAdapterFile *f, const JsonDoc *doc, char *err, size_t errlen) {
    char e2[900];
    MotionAdapterConfig *c = &f->cfg;
    f->original =
        st_find(&f->st, "down_blocks.0.motion_modules.0.temporal_transformer.norm.weight") != NULL;
    if (!f->original && !st_find(&f->st, "down_blocks.0.motion_modules.0.norm.weight"))
        return snprintf(err, errlen,
                        "%s: not an AnimateDiff motion adapter: neither "
                        "down_blocks.0.motion_modules.0.norm.weight (diffusers MotionAdapter) nor "
                        "down_blocks.0.motion_modules.0.temporal_transformer.norm.weight "
                        "(original) is in it",
                        f->path),
               -1;
    if (st_find(&f->st, "conv_in.weight"))
        return snprintf(err, errlen, "%s: conv_in.weight: PIA-style adapters are not supported",
                        f->path),
               -1;
    // structure from the names and shapes
    const SafeTensorsEntry *e;
    while (c->nblocks < UNET_MAX_BLOCKS &&
           (e = find(f, "down_blocks.%d.motion_modules.0.norm.weight", c->nblocks))) {
        const int i = c->nblocks++;
        c->channels[i] = (int)e->shape[0];
        while (c->layers[i] < UNET_MAX_LAYERS - 1 &&
               find(f, "down_blocks.%d.motion_modules.%d.norm.weight", i, c->layers[i])) {
            char p[96];
            snprintf(p, sizeof p, "down_blocks.%d.motion_modules.%d", i, c->layers[i]);
            c->down_depth[i][c->layers[i]++] = module_depth(f, p);
        }
    }
    for (int i = 0; i < c->nblocks; i++) {
        const int r = c->nblocks - 1 - i;
        for (int j = 0; j <= c->layers[r]; j++) {
            char p[96];
            snprintf(p, sizeof p, "up_blocks.%d.motion_modules.%d", i, j);
            e = find(f, "%s.norm.weight", p);
            if (!e || e->shape[0] != c->channels[r])
                return snprintf(err, errlen,
                                "%s: %s.norm.weight: %s; expected %d channels (the up block "
                                "mirroring down block %d has %d motion modules)",
                                f->path, p, e ? "another width" : "missing", c->channels[r], r,
                                c->layers[r] + 1),
                       -1;
            c->up_depth[i][j] = module_depth(f, p);
        }
    }
    c->mid = find(f, "mid_block.motion_modules.0.norm.weight") != NULL;
    if (c->mid) c->mid_depth = module_depth(f, "mid_block.motion_modules.0");
    // heads and max frames: config.json, metadata, stored tables, defaults
    int heads[UNET_MAX_BLOCKS], max_frames = 32;
    for (int i = 0; i < UNET_MAX_BLOCKS; i++) heads[i] = 8;
    if ((e = find(f, "down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed.pe")) &&
        e->ndim == 3)
        max_frames = (int)e->shape[1];
    const char *meta = st_meta(&f->st, "storyrun.config.motion_adapter");
    if (meta) {
        JsonError je;
        JsonDoc *d = json_parse("storyrun.config.motion_adapter", meta, strlen(meta), NULL, &je);
        int64_t x = 8;
        const int got = d ? json_get_int(d, json_root(d), "motion_num_attention_heads", 1, 4096, &x,
                                         e2, sizeof e2)
                          : -1;
        json_free(d);
        if (got < 0) return snprintf(err, errlen, "%s: metadata: %s", f->path, d ? e2 : je.msg), -1;
        for (int i = 0; i < UNET_MAX_BLOCKS; i++) heads[i] = (int)x;
    }
    if (doc && read_config(f, doc, heads, &max_frames, err, errlen)) return -1;
    c->max_frames = max_frames;
    for (int i = 0; i < c->nblocks; i++) c->heads[i] = heads[i];
    return 0;
}

int motion_adapter_open(MotionAdapterFile *f, const char *path, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    char cfg_path[1100] = "";
    if (is_dir(path)) {
        snprintf(f->path, sizeof f->path, "%s/diffusion_pytorch_model.safetensors", path);
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", path);
    } else {
        snprintf(f->path, sizeof f->path, "%s", path);
        const char *slash = strrchr(path, '/');
        if (ends_with(path, "diffusion_pytorch_model.safetensors"))
            snprintf(cfg_path, sizeof cfg_path, "%.*sconfig.json",
                     slash ? (int)(slash - path + 1) : 0, path);
    }
    if (st_open(&f->st, f->path, err, errlen)) return -1;
    JsonDoc *doc = NULL;
    struct stat sb;
    if (cfg_path[0] && !stat(cfg_path, &sb)) {
        JsonError je;
        if (!(doc = json_parse_file(cfg_path, NULL, &je))) {
            snprintf(err, errlen, "%s", je.msg);
            st_close(&f->st);
            return -1;
        }
    }
    const int rc = derive(f, doc, err, errlen);
    json_free(doc);
    if (rc) st_close(&f->st);
    return rc;
}

int motion_adapter_open_memory(MotionAdapterFile *f, const void *bytes, size_t size,
                               const char *name, const JsonDoc *config, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", name);
    if (st_open_memory(&f->st, bytes, size, name, err, errlen)) return -1;
    const int rc = derive(f, config, err, errlen);
    if (rc) st_close(&f->st);
    return rc;
}

void motion_adapter_close(MotionAdapterFile *f) { st_close(&f->st); }

int motion_adapter_source(void *ctx, const char *name, int ndim, const int64_t *shape, Arena *arena,
                          DType dt, Tensor *out, char *err, size_t errlen) {
    const MotionAdapterFile *f = ctx;
    if (ends_with(name, ".pos_embed.pe"))
        return motion_pe_tensor(arena, dt, ndim, shape, out, err, errlen);
    char key[400];
    const char *k = name;
    if (f->original) {
        if (original_name(name, key, sizeof key))
            return snprintf(err, errlen, "%s: %s is no motion-module name", f->path, name), -1;
        k = key;
    }
    const SafeTensorsEntry *e = st_find(&f->st, k);
    int ok = e && e->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = e->shape[i] == shape[i];
    if (!ok) {
        char want[96] = "", got[96] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "",
                     (long long)shape[i]);
        for (int i = 0; e && i < e->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)e->shape[i]);
        if (!e)
            return snprintf(err, errlen, "%s: %s: missing; expected a tensor of shape (%s)",
                            f->path, k, want),
                   -1;
        return snprintf(err, errlen, "%s: %s: shape (%s), expected (%s)", f->path, k, got, want),
               -1;
    }
    *out = arena_tensor(arena, dt, ndim, shape);
    const size_t bytes = tensor_nbytes(out);
    void *host = arena->dev == DEV_CUDA ? malloc(bytes) : out->data;
    if (!host) return snprintf(err, errlen, "%s: %s: out of memory", f->path, k), -1;
    const int rc = st_load_as(e, dt, host);
    if (!rc && arena->dev == DEV_CUDA) story_cuda_memcpy(out->data, host, bytes, 0);
    if (host != out->data) free(host);
    return rc ? (snprintf(err, errlen, "%s: %s: cannot read", f->path, k), -1) : 0;
}

// ---- the video UNet ------------------------------------------------------------------------

typedef struct {
    UnetTensorSource src;
    void *ctx;
} Source;

static int load_all(UnetVideo *v, const Unet *unet, const MotionAdapterConfig *c, Source s,
                    Arena *arena, char *err, size_t errlen) {
    const UnetConfig *u = &unet->cfg;
    const int g = u->norm_num_groups, nb = c->nblocks;
    char p[96];
    memset(v, 0, sizeof *v);
    v->unet = unet, v->cfg = *c;
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < c->layers[i]; j++) {
            snprintf(p, sizeof p, "down_blocks.%d.motion_modules.%d", i, j);
            if (motion_module_load(&v->down[i][j], c->channels[i], c->heads[i], c->down_depth[i][j],
                                   g, c->max_frames, s.src, s.ctx, p, arena, unet->dtype, err,
                                   errlen))
                goto fail;
        }
    for (int i = 0; i < nb; i++) {
        const int r = nb - 1 - i;
        for (int j = 0; j <= c->layers[r]; j++) {
            snprintf(p, sizeof p, "up_blocks.%d.motion_modules.%d", i, j);
            if (motion_module_load(&v->up[i][j], c->channels[r], c->heads[r], c->up_depth[i][j], g,
                                   c->max_frames, s.src, s.ctx, p, arena, unet->dtype, err, errlen))
                goto fail;
        }
    }
    if (c->mid && motion_module_load(&v->mid, c->channels[nb - 1], c->heads[nb - 1], c->mid_depth,
                                     g, c->max_frames, s.src, s.ctx, "mid_block.motion_modules.0",
                                     arena, unet->dtype, err, errlen))
        goto fail;
    return 0;
fail:
    unet_video_free(v);
    return -1;
}

static int check_fit(const Unet *unet, const MotionAdapterFile *f, char *err, size_t errlen) {
    const UnetConfig *u = &unet->cfg;
    const MotionAdapterConfig *c = &f->cfg;
    if (c->nblocks != u->nblocks)
        return snprintf(err, errlen, "%s: %d blocks of motion modules for a UNet of %d blocks",
                        f->path, c->nblocks, u->nblocks),
               -1;
    for (int i = 0; i < c->nblocks; i++)
        if (c->channels[i] != u->block_out_channels[i] || c->layers[i] != unet->down[i].nlayers)
            return snprintf(err, errlen,
                            "%s: down block %d has %d motion modules of %d channels; the UNet's "
                            "block has %d layers of %d channels",
                            f->path, i, c->layers[i], c->channels[i], unet->down[i].nlayers,
                            u->block_out_channels[i]),
                   -1;
    return 0;
}

int unet_video_load(UnetVideo *v, const Unet *unet, const MotionAdapterFile *f, Arena *arena,
                    char *err, size_t errlen) {
    memset(v, 0, sizeof *v);
    if (check_fit(unet, f, err, errlen)) return -1;
    if (arena->dev != unet->dev)
        return snprintf(err, errlen, "%s: the motion modules must go to the UNet's device",
                        f->path),
               -1;
    Source s = {motion_adapter_source, (void *)f};
    if (load_all(v, unet, &f->cfg, s, arena, err, errlen)) {
        const size_t n = strlen(err);
        if (n + 40 < errlen && !strstr(err, f->path))
            snprintf(err + n, errlen - n, " (%s)", f->path);
        return -1;
    }
    return 0;
}

static int count_source(void *ctx, const char *name, int ndim, const int64_t *shape, Arena *arena,
                        DType dt, Tensor *out, char *err, size_t errlen) {
    (void)ctx, (void)name, (void)err, (void)errlen;
    *out = arena_tensor(arena, dt, ndim, shape);
    return 0;
}

size_t unet_video_weight_bytes(const Unet *unet, const MotionAdapterFile *f) {
    Arena a = unet_counting_arena(unet->dev);
    UnetVideo v;
    char err[512];
    Source s = {count_source, NULL};
    if (load_all(&v, unet, &f->cfg, s, &a, err, sizeof err))
        STORY_FATAL("unet_video: sizing the motion modules failed: %s", err);
    unet_video_free(&v);
    return a.peak + 256;
}

void unet_video_free(UnetVideo *v) {
    for (int i = 0; i < UNET_MAX_BLOCKS; i++)
        for (int j = 0; j < UNET_MAX_LAYERS; j++) {
            motion_module_free(&v->down[i][j]);
            motion_module_free(&v->up[i][j]);
        }
    motion_module_free(&v->mid);
}

typedef struct {
    const UnetVideo *v;
    int frames;
} Hook;

static const MotionModule *module_at(const UnetVideo *v, UnetBlockKind kind, int block, int layer) {
    const MotionModule *m = kind == UNET_DOWN ? &v->down[block][layer]
                            : kind == UNET_UP ? &v->up[block][layer]
                                              : &v->mid;
    return m->blocks ? m : NULL;
}

static void motion_hook(void *ctx, const UnetLayerSite *site, Tensor *h, Arena *scratch) {
    const Hook *k = ctx;
    const MotionModule *m = module_at(k->v, site->kind, site->block, site->layer);
    if (m) motion_module_forward(m, h, k->frames, scratch);
}

int unet_video_forward(const UnetVideo *v, const UnetInputs *in, int frames, Tensor *out, Arena *ws,
                       char *err, size_t errlen) {
    if (frames < 1 || frames > v->cfg.max_frames)
        return snprintf(err, errlen,
                        "unet_video: %d frames; this motion adapter takes 1 .. %d "
                        "(motion_max_seq_length)",
                        frames, v->cfg.max_frames),
               -1;
    if (!in->sample || in->sample->ndim != 4 || in->sample->shape[0] % frames)
        return snprintf(err, errlen,
                        "unet_video: the sample must be (B*F, C, H, W) with rows a multiple of "
                        "F = %d",
                        frames),
               -1;
    if (in->layer_fn)
        return snprintf(err, errlen, "unet_video: the layer seam is the motion modules' own"), -1;
    Hook k = {v, frames};
    UnetInputs vin = *in;
    vin.layer_fn = motion_hook, vin.layer_ctx = &k;
    return unet_forward(v->unet, &vin, out, ws, err, errlen);
}

size_t unet_video_scratch_bytes(const UnetVideo *v, int B, int frames, int H, int W, int L) {
    const int rows = B * frames, nb = v->cfg.nblocks;
    size_t most = 0;
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < UNET_MAX_LAYERS; j++)
            for (int up = 0; up < 2; up++) {
                const MotionModule *m = module_at(v, up ? UNET_UP : UNET_DOWN, i, j);
                const int level = up ? nb - 1 - i : i;  // resolution H >> level
                if (!m) continue;
                const size_t n =
                    motion_module_scratch_bytes(m, rows, H >> level, W >> level, frames);
                if (n > most) most = n;
            }
    if (v->cfg.mid) {
        const size_t n =
            motion_module_scratch_bytes(&v->mid, rows, H >> (nb - 1), W >> (nb - 1), frames);
        if (n > most) most = n;
    }
    return unet_scratch_bytes(v->unet, rows, H, W, L) + most;
}
