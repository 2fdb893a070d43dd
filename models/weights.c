// models/weights.c: opening a model (diffusers folder or single file), looking tensors up
// by component and diffusers name, and loading them with shape checks and dtype
// conversion. Single files are mapped by weights_ldm.c; configs a single file lacks are
// derived by weights_config.c; tokenizer folders are weights_tokenizer.c's.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kernels/cuda_runtime_api.h"
#include "models/weights_impl.h"
#include "runner/check.h"

const char *family_name(ModelFamily f) {
    switch (f) {
    case FAMILY_SD1: return "SD1.x";
    case FAMILY_SD2: return "SD2.x";
    case FAMILY_SDXL: return "SDXL";
    default: return "unknown";
    }
}

int w_err(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static char *str_dup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(mallocCheck(n), s, n);
}

char *w_path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = mallocCheck(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static bool is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

bool w_is_file(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

bool w_file_in(const char *dir, const char *name) {
    char *p = w_path_join(dir, name);
    bool ok = w_is_file(p);
    free(p);
    return ok;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

// ---- components and tensors ---------------------------------------------------------

WComponent *w_component(Weights *w, const char *name, bool create) {
    for (int i = 0; i < w->ncomp; i++)
        if (!strcmp(w->comp[i].name, name)) return &w->comp[i];
    if (!create || w->ncomp == W_MAX_COMPONENTS) return NULL;
    WComponent *c = &w->comp[w->ncomp++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

const WComponent *w_component_c(const Weights *w, const char *name) {
    if (!w || !name) return NULL;
    for (int i = 0; i < w->ncomp; i++)
        if (!strcmp(w->comp[i].name, name)) return &w->comp[i];
    return NULL;
}

WTensor *w_add(WComponent *c, const char *name, int file, const SafeTensorsEntry *e) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->t = realloc(c->t, (size_t)c->cap * sizeof *c->t);
        if (!c->t) STORY_FATAL("out of memory (%d tensors)", c->cap);
    }
    WTensor *t = &c->t[c->n++];
    memset(t, 0, sizeof *t);
    t->name = str_dup(name);
    t->file = file;
    t->e = e;
    t->rows = -1;
    return t;
}

static int cmp_wtensor(const void *a, const void *b) {
    return strcmp(((const WTensor *)a)->name, ((const WTensor *)b)->name);
}

void w_sort(WComponent *c) {
    if (c->n) qsort(c->t, (size_t)c->n, sizeof *c->t, cmp_wtensor);
}

const WTensor *w_lookup(const WComponent *c, const char *name) {
    int lo = 0, hi = c->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int r = strcmp(name, c->t[mid].name);
        if (r == 0) return &c->t[mid];
        if (r < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

int w_set_view(WTensor *t, int ndim, const int64_t *shape) {
    const SafeTensorsEntry *e = t->e;
    int64_t s[ST_MAX_DIMS];
    int nd = e->ndim;
    memcpy(s, e->shape, sizeof s);
    if (t->rows >= 0) {
        if (nd < 1 || t->row0 + t->rows > s[0]) return -1;
        s[0] = t->rows;
    }
    if (t->transpose) {
        if (nd != 2) return -1;
        int64_t x = s[0];
        s[0] = s[1];
        s[1] = x;
    }
    if (ndim > 0) {  // a reshape: same element count
        int64_t a = 1, b = 1;
        for (int i = 0; i < nd; i++) a *= s[i];
        for (int i = 0; i < ndim; i++) b *= shape[i];
        if (a != b) return -1;
        nd = ndim;
        for (int i = 0; i < ndim; i++) s[i] = shape[i];
    }
    if (nd > TENSOR_MAX_DIMS) return -1;
    t->ndim = nd;
    for (int i = 0; i < nd; i++) t->shape[i] = s[i];
    return 0;
}

static int add_file(Weights *w, const char *path, char *err, size_t errlen) {
    if (w->nfiles == w->files_cap) {
        w->files_cap = w->files_cap ? 2 * w->files_cap : 8;
        w->files = realloc(w->files, (size_t)w->files_cap * sizeof *w->files);
        if (!w->files) STORY_FATAL("out of memory");
    }
    SafeTensors *st = &w->files[w->nfiles];
    memset(st, 0, sizeof *st);
    if (st_open(st, path, err, errlen)) return -1;
    return w->nfiles++;
}

int w_add_memory(Weights *w, void *bytes, size_t size, const char *name, char *err, size_t errlen) {
    if (w->nmem == W_MAX_COMPONENTS) {
        free(bytes);
        return w_err(err, errlen, "%s: more than %d in-memory files", name, W_MAX_COMPONENTS);
    }
    w->mem[w->nmem++] = bytes;
    if (w->nfiles == w->files_cap) {
        w->files_cap = w->files_cap ? 2 * w->files_cap : 8;
        w->files = realloc(w->files, (size_t)w->files_cap * sizeof *w->files);
        if (!w->files) STORY_FATAL("out of memory");
    }
    SafeTensors *st = &w->files[w->nfiles];
    if (st_open_memory(st, bytes, size, name, err, errlen)) return -1;
    return w->nfiles++;
}

// ---- diffusers folders --------------------------------------------------------------

// Adds every tensor of file f to component c. Text encoders get the "text_model." names
// when the file was written without them (transformers >= 5.6 flattens CLIPTextModel).
static int add_all(Weights *w, WComponent *c, int f, bool clip, char *err, size_t errlen) {
    const SafeTensors *st = &w->files[f];
    bool flat = clip;
    for (int i = 0; clip && i < st_count(st); i++)
        if (!strncmp(st_entry(st, i)->name, "text_model.", 11)) flat = false;
    for (int i = 0; i < st_count(st); i++) {
        const SafeTensorsEntry *e = st_entry(st, i);
        char name[512];
        if (flat && strcmp(e->name, "text_projection.weight"))
            snprintf(name, sizeof name, "text_model.%s", e->name);
        else
            snprintf(name, sizeof name, "%s", e->name);
        WTensor *t = w_add(c, name, f, e);
        if (w_set_view(t, 0, NULL))
            return w_err(err, errlen, "%s: tensor %s has %d dims; storyrun handles at most %d",
                         st->path, e->name, e->ndim, TENSOR_MAX_DIMS);
    }
    return 0;
}

// A sharded component: index.json {"weight_map": {name: shard file}} next to the shards.
static int add_sharded(Weights *w, WComponent *c, const char *index, bool clip, char *err,
                       size_t errlen) {
    JsonError je;
    JsonDoc *doc = json_parse_file(index, NULL, &je);
    if (!doc) return w_err(err, errlen, "%s", je.msg);
    const JsonValue *map = json_get(json_root(doc), "weight_map");
    int rc = -1;
    if (!map || map->type != JSON_OBJECT || !map->len) {
        w_err(err, errlen,
              "%s: expected a non-empty object \"weight_map\" (tensor name -> shard file)", index);
        goto done;
    }
    int first = w->nfiles;
    for (size_t i = 0; i < map->len; i++) {
        const JsonMember *m = &map->members[i];
        const char *shard;
        if (json_as_string(doc, &m->value, m->key, &shard, err, errlen)) goto done;
        if (strchr(shard, '/') || !strcmp(shard, "..") || !*shard) {
            json_errat(doc, m->value.pos, err, errlen, "shard \"%s\" must be a file name in %s",
                       shard, c->dir);
            goto done;
        }
        bool seen = false;
        for (int f = first; f < w->nfiles && !seen; f++)
            seen = !strcmp(strrchr(w->files[f].path, '/') + 1, shard);
        if (!seen) {
            char *p = w_path_join(c->dir, shard);
            int f = add_file(w, p, err, errlen);
            free(p);
            if (f < 0) goto done;
            if (add_all(w, c, f, clip, err, errlen)) goto done;
        }
    }
    w_sort(c);
    for (int i = 1; i < c->n; i++)
        if (!strcmp(c->t[i].name, c->t[i - 1].name)) {
            w_err(err, errlen, "%s: tensor %s is in two shards (%s and %s)", index, c->t[i].name,
                  w->files[c->t[i - 1].file].path, w->files[c->t[i].file].path);
            goto done;
        }
    for (size_t i = 0; i < map->len; i++) {
        const JsonMember *m = &map->members[i];
        char name[512];
        snprintf(
            name, sizeof name, "%s%s",
            clip && strncmp(m->key, "text_model.", 11) && strcmp(m->key, "text_projection.weight")
                ? "text_model."
                : "",
            m->key);
        const WTensor *t = w_lookup(c, name);
        if (!t || strcmp(strrchr(w->files[t->file].path, '/') + 1, m->value.str)) {
            json_errat(doc, m->key_pos, err, errlen, "tensor %s is not in shard %s", m->key,
                       m->value.str);
            goto done;
        }
    }
    rc = 0;
done:
    json_free(doc);
    return rc;
}

// Finds and opens the weights of a component folder.
static int open_component_weights(Weights *w, WComponent *c, char *err, size_t errlen) {
    static const char *bases[] = {"diffusion_pytorch_model", "model"};
    static const char *forms[][2] = {
        {"%s.safetensors", NULL},
        {NULL, "%s.safetensors.index.json"},
        {"%s.fp16.safetensors", NULL},
        {NULL, "%s.safetensors.index.fp16.json"},
    };
    bool clip = !strncmp(c->name, "text_encoder", 12);
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++)
        for (int b = 0; b < 2; b++) {
            char name[128];
            snprintf(name, sizeof name, forms[f][0] ? forms[f][0] : forms[f][1], bases[b]);
            if (!w_file_in(c->dir, name)) continue;
            char *p = w_path_join(c->dir, name);
            int rc;
            if (forms[f][0]) {
                int fi = add_file(w, p, err, errlen);
                rc = fi < 0 ? -1 : add_all(w, c, fi, clip, err, errlen);
                w_sort(c);
            } else {
                rc = add_sharded(w, c, p, clip, err, errlen);
            }
            free(p);
            return rc;
        }
    const char *pickle = NULL;
    static const char *pickles[] = {"diffusion_pytorch_model.bin", "pytorch_model.bin",
                                    "diffusion_pytorch_model.fp16.bin", "pytorch_model.fp16.bin"};
    for (size_t i = 0; i < sizeof pickles / sizeof *pickles && !pickle; i++)
        if (w_file_in(c->dir, pickles[i])) pickle = pickles[i];
    if (pickle)
        return w_err(err, errlen,
                     "%s: only %s, a PyTorch pickle, which storyrun does not read (it can run "
                     "code): convert it to .safetensors (diffusers: save_pretrained(..., "
                     "safe_serialization=True))",
                     c->dir, pickle);
    return w_err(err, errlen,
                 "%s: no weights: expected %s.safetensors, a sharded %s.safetensors.index.json, "
                 "or their fp16 variants",
                 c->dir, bases[clip], bases[clip]);
}

static const char *config_str(const WComponent *c, const char *key) {
    const JsonValue *v = c && c->config ? json_get(json_root(c->config), key) : NULL;
    return v && v->type == JSON_STRING ? v->str : NULL;
}

static int64_t config_int(const WComponent *c, const char *key) {
    const JsonValue *v = c && c->config ? json_get(json_root(c->config), key) : NULL;
    return v && v->type == JSON_NUMBER && v->is_int ? v->i : -1;
}

// The components a pipeline runs: a problem with one of these fails weights_open.
static bool essential(const char *name) {
    static const char *names[] = {"unet",      "vae",         "text_encoder", "text_encoder_2",
                                  "tokenizer", "tokenizer_2", "scheduler"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i])) return true;
    return false;
}

static void free_component(WComponent *c) {
    for (int j = 0; j < c->n; j++) free(c->t[j].name);
    free(c->t);
    free(c->dir);
    free(c->tok_dir);
    json_free(c->config);
    memset(c, 0, sizeof *c);
}

// One member of model_index.json: its folder, config and weights (tokenizers: the folder
// when it has a vocabulary; a missing one falls back to storyrun's, see open_folder).
static int open_folder_component(Weights *w, const JsonDoc *doc, const JsonMember *m, char *err,
                                 size_t errlen) {
    WComponent *c = w_component(w, m->key, true);
    c->dir = w_path_join(w->path, m->key);
    bool tok = !strncmp(m->key, "tokenizer", 9);
    if (tok) {
        if (w_file_in(c->dir, "vocab.json") || w_file_in(c->dir, "vocab.json.gz"))
            c->tok_dir = str_dup(c->dir);
        return 0;
    }
    if (!is_dir(c->dir))
        return json_errat(doc, m->key_pos, err, errlen,
                          "component \"%s\" is listed but %s is missing", m->key, c->dir);
    bool sched = !strcmp(m->key, "scheduler"), fe = !strcmp(m->key, "feature_extractor");
    const char *cfg = sched ? "scheduler_config.json"
                      : fe  ? "preprocessor_config.json"
                            : "config.json";
    if (w_file_in(c->dir, cfg)) {
        JsonError je;
        char *p = w_path_join(c->dir, cfg);
        // configs are written by Python's json: -Infinity appears (lambda_min_clipped)
        const JsonOptions opt = {.nonfinite = true};
        c->config = json_parse_file(p, &opt, &je);
        free(p);
        if (!c->config) return w_err(err, errlen, "%s", je.msg);
    } else if (!sched && !fe) {
        return w_err(err, errlen, "%s: no %s", c->dir, cfg);
    }
    if (sched || fe) return 0;
    return open_component_weights(w, c, err, errlen);
}

static int open_folder(Weights *w, char *err, size_t errlen) {
    char *index = w_path_join(w->path, "model_index.json");
    if (!w_is_file(index)) {
        free(index);
        if (w_file_in(w->path, "config.json"))
            return w_err(err, errlen,
                         "%s: a single diffusers component (config.json, no model_index.json): "
                         "give the pipeline folder above it",
                         w->path);
        return w_err(err, errlen,
                     "%s: not a diffusers folder (no model_index.json); storyrun reads a diffusers "
                     "folder or one .safetensors checkpoint",
                     w->path);
    }
    JsonError je;
    JsonDoc *doc = json_parse_file(index, NULL, &je);
    free(index);
    if (!doc) return w_err(err, errlen, "%s", je.msg);
    const JsonValue *root = json_root(doc);
    int rc = -1;
    if (root->type != JSON_OBJECT) {
        json_errat(doc, root->pos, err, errlen, "expected an object of components");
        goto done;
    }
    for (size_t i = 0; i < root->len; i++) {
        const JsonMember *m = &root->members[i];
        if (m->key[0] == '_' || strlen(m->key) >= sizeof w->comp[0].name || strchr(m->key, '/'))
            continue;
        // ["library", "Class"]; [null, null] marks an absent component
        const JsonValue *lib = json_at(&m->value, 0);
        if (!lib || lib->type == JSON_NULL) continue;
        if (m->value.type != JSON_ARRAY) continue;  // pipeline options (force_zeros...)
        if (w->ncomp == W_MAX_COMPONENTS) {
            json_errat(doc, m->key_pos, err, errlen, "more than %d components", W_MAX_COMPONENTS);
            goto done;
        }
        char why[1024];
        if (!open_folder_component(w, doc, m, why, sizeof why)) continue;
        if (essential(m->key)) {
            w_err(err, errlen, "%s", why);
            goto done;
        }
        // a component storyrun does not run (safety_checker, ...): skipped, noted
        free_component(&w->comp[--w->ncomp]);
        if (w->nskipped < W_MAX_SKIPPED)
            w_err(w->skipped[w->nskipped++], sizeof w->skipped[0], "%s: skipped: %s", m->key, why);
    }
    // family: SDXL has a second text encoder and the text_time additional embedding;
    // SD2's text encoder is OpenCLIP (gelu) where SD1's is CLIP ViT-L (quick_gelu)
    const WComponent *unet = w_component_c(w, "unet"), *te = w_component_c(w, "text_encoder"),
                     *te2 = w_component_c(w, "text_encoder_2");
    const char *add = config_str(unet, "addition_embed_type");
    const char *act = config_str(te, "hidden_act");
    int64_t ctx = config_int(unet, "cross_attention_dim");
    if (!unet) {
        w_err(err, errlen, "%s: unknown model layout: the folder has no unet component", w->path);
        goto done;
    }
    if (te2 && !te) {
        w_err(err, errlen,
              "%s: text_encoder_2 without text_encoder (an SDXL refiner?): storyrun runs SD1.x, "
              "SD2.x and SDXL base models",
              w->path);
        goto done;
    }
    if (te2 && add && !strcmp(add, "text_time"))
        w->family = FAMILY_SDXL;
    else if (!te2 && !add && ((act && !strcmp(act, "gelu")) || (!act && ctx == 1024)))
        w->family = FAMILY_SD2;
    else if (!te2 && !add && ((act && !strcmp(act, "quick_gelu")) || (!act && ctx == 768)))
        w->family = FAMILY_SD1;
    else {
        w_err(err, errlen,
              "%s: unknown model layout: text_encoder_2 %s, unet addition_embed_type %s, "
              "cross_attention_dim %lld, text encoder hidden_act %s (expected SD1.x: quick_gelu "
              "CLIP; SD2.x: gelu OpenCLIP; SDXL: two text encoders + text_time)",
              w->path, te2 ? "present" : "absent", add ? add : "none", (long long)ctx,
              act ? act : "unknown");
        goto done;
    }
    // a tokenizer folder without its vocabulary: storyrun's own CLIP vocabulary, padded as
    // the family's tokenizer of that name is (weights_check warns about it)
    for (int i = 0; i < w->ncomp; i++) {
        WComponent *c = &w->comp[i];
        const char *clip = weights_clip_data_dir();
        bool second = !strcmp(c->name, "tokenizer_2");
        if (c->tok_dir || !clip || (!second && strcmp(c->name, "tokenizer"))) continue;
        c->tok_dir = w_path_join(clip, second || w->family == FAMILY_SD2 ? "sdxl_2" : "sd15");
    }
    rc = 0;
done:
    json_free(doc);
    return rc;
}

// ---- single files -------------------------------------------------------------------

static int open_single(Weights *w, char *err, size_t errlen) {
    static const char *pickle_ext[] = {".ckpt", ".pt", ".pth", ".bin", ".pkl"};
    bool pickle = false;
    for (size_t i = 0; i < sizeof pickle_ext / sizeof *pickle_ext; i++)
        pickle |= ends_with(w->path, pickle_ext[i]);
    FILE *f = fopen(w->path, "rb");
    if (!f) return w_err(err, errlen, "%s: cannot open: %s", w->path, strerror(errno));
    unsigned char magic[9] = {0};
    size_t got = fread(magic, 1, 9, f);
    fclose(f);
    // torch.save writes a zip archive ("PK\3\4"), older versions a raw pickle (0x80, protocol
    // 2-5). A safetensors file has its JSON header's '{' at byte 8, whatever its length's
    // first bytes look like.
    bool zip = magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
    bool raw = magic[0] == 0x80 && magic[1] >= 2 && magic[1] <= 5;
    bool safetensors = got == 9 && magic[8] == '{';
    pickle = !safetensors && (pickle || (got >= 4 && (zip || raw)));
    if (pickle)
        return w_err(
            err, errlen,
            "%s: a PyTorch pickle checkpoint (.ckpt/.pt); storyrun reads only "
            ".safetensors (pickles can run code). Convert it once, e.g.:\n"
            "  python -c \"import torch, safetensors.torch as s; "
            "d = torch.load('IN.ckpt', map_location='cpu', weights_only=True); "
            "d = d.get('state_dict', d); "
            "s.save_file({k: v.contiguous() for k, v in d.items() if hasattr(v, 'contiguous')}, "
            "'OUT.safetensors')\"",
            w->path);
    int fi = add_file(w, w->path, err, errlen);
    if (fi < 0) return -1;
    if (ldm_detect(&w->files[fi], &w->family, err, errlen)) return -1;
    if (ldm_map(w, fi, err, errlen)) return -1;
    for (int i = 0; i < w->ncomp; i++) {
        WComponent *c = &w->comp[i];
        w_sort(c);
        for (int j = 1; j < c->n; j++)
            if (!strcmp(c->t[j].name, c->t[j - 1].name))
                return w_err(err, errlen, "%s: %s and %s both map to %s/%s", w->path,
                             c->t[j - 1].e->name, c->t[j].e->name, c->name, c->t[j].name);
    }
    for (int i = 0; i < w->ncomp; i++) {  // after sorting all: the UNet's reads text_encoder_2
        WComponent *c = &w->comp[i];
        if (!c->n) continue;
        char key[96];
        snprintf(key, sizeof key, "storyrun.config.%s", c->name);
        c->config = wcfg_derive(w, c, st_meta(&w->files[fi], key), err, errlen);
        if (!c->config) return -1;
        c->derived = true;
    }
    const char *clip = weights_clip_data_dir();
    const char *tok1 = w->family == FAMILY_SD2 ? "sdxl_2" : "sd15";
    WComponent *c = w_component(w, "tokenizer", true);
    if (clip) c->tok_dir = w_path_join(clip, tok1);
    if (w->family == FAMILY_SDXL) {
        c = w_component(w, "tokenizer_2", true);
        if (clip) c->tok_dir = w_path_join(clip, "sdxl_2");
    }
    c = w_component(w, "scheduler", true);
    c->config = wcfg_scheduler(w->family);
    c->derived = true;
    return 0;
}

// Components in the order a pipeline uses them; others after, by name.
static int comp_rank(const char *n) {
    static const char *order[] = {"unet",      "vae",         "text_encoder", "text_encoder_2",
                                  "tokenizer", "tokenizer_2", "scheduler"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(n, order[i])) return i;
    return 7;
}

static int cmp_comp(const void *a, const void *b) {
    const WComponent *x = a, *y = b;
    int r = comp_rank(x->name) - comp_rank(y->name);
    return r ? r : strcmp(x->name, y->name);
}

int weights_open(Weights **out, const char *path, char *err, size_t errlen) {
    *out = NULL;
    Weights *w = calloc(1, sizeof *w);
    if (!w) STORY_FATAL("out of memory");
    w->path = str_dup(path);
    size_t n = strlen(w->path);
    while (n > 1 && w->path[n - 1] == '/') w->path[--n] = '\0';
    struct stat s;
    int rc;
    if (!strncmp(path, "builtin:", 8))
        rc = wbuiltin_open(w, path + 8, err, errlen);
    else if (stat(path, &s) != 0)
        rc = w_err(err, errlen, "%s: %s", path, strerror(errno));
    else if (S_ISDIR(s.st_mode)) {
        w->layout = LAYOUT_DIFFUSERS;
        rc = open_folder(w, err, errlen);
    } else {
        w->layout = LAYOUT_SINGLE_FILE;
        rc = open_single(w, err, errlen);
    }
    if (rc) {
        weights_close(w);
        return -1;
    }
    qsort(w->comp, (size_t)w->ncomp, sizeof *w->comp, cmp_comp);
    *out = w;
    return 0;
}

void weights_close(Weights *w) {
    if (!w) return;
    for (int i = 0; i < w->ncomp; i++) free_component(&w->comp[i]);
    for (int i = 0; i < w->nfiles; i++) st_close(&w->files[i]);
    free(w->files);
    for (int i = 0; i < w->nmem; i++) free(w->mem[i]);
    free(w->path);
    free(w);
}

// ---- accessors ----------------------------------------------------------------------

ModelFamily weights_family(const Weights *w) { return w->family; }
WeightsLayout weights_layout(const Weights *w) { return w->layout; }
const char *weights_path(const Weights *w) { return w->path; }
int weights_component_count(const Weights *w) { return w->ncomp; }
const char *weights_component(const Weights *w, int i) {
    return i >= 0 && i < w->ncomp ? w->comp[i].name : NULL;
}
int weights_has(const Weights *w, const char *component) {
    return w_component_c(w, component) != NULL;
}

int weights_tensor_count(const Weights *w, const char *component) {
    const WComponent *c = w_component_c(w, component);
    return c ? c->n : 0;
}

static void fill_info(const Weights *w, const WTensor *t, WeightInfo *info) {
    memset(info, 0, sizeof *info);
    info->name = t->name;
    info->source = t->e->name;
    info->file = w->files[t->file].path;
    info->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) info->shape[i] = t->shape[i];
    info->dtype = st_dtype_name(t->e->dtype);
}

int weights_tensor_info(const Weights *w, const char *component, int i, WeightInfo *info) {
    const WComponent *c = w_component_c(w, component);
    if (!c || i < 0 || i >= c->n) return -1;
    fill_info(w, &c->t[i], info);
    return 0;
}

int weights_find(const Weights *w, const char *component, const char *name, WeightInfo *info) {
    const WComponent *c = w_component_c(w, component);
    const WTensor *t = c ? w_lookup(c, name) : NULL;
    if (!t) return -1;
    if (info) fill_info(w, t, info);
    return 0;
}

const JsonDoc *weights_config_doc(const Weights *w, const char *component) {
    const WComponent *c = w_component_c(w, component);
    return c ? c->config : NULL;
}

const JsonValue *weights_config(const Weights *w, const char *component) {
    const JsonDoc *d = weights_config_doc(w, component);
    return d ? json_root(d) : NULL;
}

int weights_unused(const Weights *w, const char **example) {
    if (example) *example = w->unused ? w->unused_example : NULL;
    return w->unused;
}

// ---- loading ------------------------------------------------------------------------

static const char *shape_str(int ndim, const int64_t *s, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (o < n) snprintf(buf + o, n - o, ndim == 1 ? ",)" : ")");
    return buf;
}

int weights_load(const Weights *w, const char *component, const char *name, int ndim,
                 const int64_t *shape, Arena *a, DType dt, Tensor *out, char *err, size_t errlen) {
    const WComponent *c = w_component_c(w, component);
    if (!c)
        return w_err(err, errlen, "%s: the model has no %s component (it has %d components)",
                     w->path, component, w->ncomp);
    const WTensor *t = w_lookup(c, name);
    if (!t)
        return w_err(err, errlen, "%s: %s: missing tensor %s (the component has %d tensors)",
                     c->dir ? c->dir : w->path, component, name, c->n);
    const char *file = w->files[t->file].path;
    char from[600] = "";
    if (strcmp(t->e->name, name)) snprintf(from, sizeof from, " (stored as %s)", t->e->name);
    bool same = ndim == t->ndim;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i];
    if (!same) {
        char s1[160], s2[160];
        return w_err(err, errlen, "%s: %s/%s%s: expected shape %s, found %s", file, component, name,
                     from, shape_str(ndim, shape, s1, sizeof s1),
                     shape_str(t->ndim, t->shape, s2, sizeof s2));
    }
    SafeTensorsEntry sub = *t->e;
    if (t->rows >= 0) {  // rows of dim 0 are contiguous
        int64_t row = sub.shape[0] ? sub.numel / sub.shape[0] : 0;
        size_t es = st_dtype_size(sub.dtype);
        sub.data = (const uint8_t *)sub.data + (size_t)(t->row0 * row) * es;
        sub.shape[0] = t->rows;
        sub.numel = t->rows * row;
        sub.nbytes = (size_t)sub.numel * es;
    }
    *out = arena_tensor(a, dt, ndim, shape);
    size_t bytes = tensor_nbytes(out), es = dtype_size(dt);
    bool host = a->dev == DEV_CPU && !t->transpose;
    void *buf = host ? out->data : mallocCheck(bytes);
    int rc = 0;
    if (st_load_as(&sub, dt, buf)) {
        rc = w_err(err, errlen, "%s: %s%s: cannot convert %s to %s", file, name, from,
                   st_dtype_name(sub.dtype), dtype_name(dt));
    } else if (t->transpose) {  // (R, C) stored -> (C, R) seen
        int64_t R = sub.shape[0], C = sub.shape[1];
        char *tmp = mallocCheck(bytes);
        for (int64_t r = 0; r < R; r++)
            for (int64_t k = 0; k < C; k++)
                memcpy(tmp + (size_t)(k * R + r) * es, (char *)buf + (size_t)(r * C + k) * es, es);
        memcpy(buf, tmp, bytes);
        free(tmp);
    }
    if (!host) {
        if (!rc) {
            if (a->dev == DEV_CPU)
                memcpy(out->data, buf, bytes);
            else
                story_cuda_memcpy(out->data, buf, bytes, 0);
        }
        free(buf);
    }
    return rc;
}
