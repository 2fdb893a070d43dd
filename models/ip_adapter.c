// models/ip_adapter.c: IP-Adapter's image projection and decoupled cross-attention (see
// ip_adapter.h).
#include "models/ip_adapter.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "runner/check.h"

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static size_t round256(size_t n) { return (n + 255) / 256 * 256; }

// ---- layers and their numbers ------------------------------------------------------------

// The transformers holding attn2 layers, in storyrun's forward order (down, mid, up), each
// repeated once per transformer block, with the part of the UNet it is in.
typedef struct {
    const UnetTransformer *t;
    UnetBlockKind kind;
} Layer;

static int layers(const Unet *u, Layer *out) {
    int n = 0;
    for (int i = 0; i < u->cfg.nblocks; i++)
        for (int j = 0; u->down[i].cross && j < u->down[i].nlayers; j++)
            for (int d = 0; d < u->down[i].attn[j].depth; d++, n++)
                if (out) out[n] = (Layer){&u->down[i].attn[j], UNET_DOWN};
    for (int d = 0; d < u->mid_attn.depth; d++, n++)
        if (out) out[n] = (Layer){&u->mid_attn, UNET_MID};
    for (int i = 0; i < u->cfg.nblocks; i++)
        for (int j = 0; u->up[i].cross && j < u->up[i].nlayers; j++)
            for (int d = 0; d < u->up[i].attn[j].depth; d++, n++)
                if (out) out[n] = (Layer){&u->up[i].attn[j], UNET_UP};
    return n;
}

int ip_adapter_layer_numbers(const Unet *unet, int *index) {
    const int n = layers(unet, NULL);
    Layer *l = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *l);
    layers(unet, l);
    int ndown = 0, nup = 0;
    for (int i = 0; i < n; i++) ndown += l[i].kind == UNET_DOWN, nup += l[i].kind == UNET_UP;
    // diffusers' unet.attn_processors lists down_blocks, up_blocks, then mid_block (the
    // order the modules are registered in); its loader numbers the k-th attn2 2k + 1.
    for (int i = 0, kd = 0, km = 0, ku = 0; i < n; i++) {
        const int k = l[i].kind == UNET_DOWN ? kd++
                      : l[i].kind == UNET_UP ? ndown + ku++
                                             : ndown + nup + km++;
        index[i] = 2 * k + 1;
    }
    free(l);
    return n;
}

// ---- loading ---------------------------------------------------------------------------------

size_t ip_adapter_weight_bytes(const Unet *unet, int embed_dim, DType dt) {
    const size_t es = dtype_size(dt), X = (size_t)unet->cfg.cross_dim[0];
    const int n = layers(unet, NULL);
    Layer *l = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *l);
    layers(unet, l);
    size_t b = round256(IP_ADAPTER_TOKENS * X * (size_t)embed_dim * es) +
               round256(IP_ADAPTER_TOKENS * X * es) + 2 * round256(X * es);
    for (int i = 0; i < n; i++) b += 2 * round256((size_t)l[i].t->channels * X * es);
    free(l);
    return b + 256;  // the arena may start unaligned
}

static char *shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    int k = snprintf(buf, len, "(");
    for (int i = 0; i < ndim && k < (int)len; i++)
        k += snprintf(buf + k, len - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < (int)len) snprintf(buf + k, len - k, ")");
    return buf;
}

// Tensor `name` of exactly `ndim` dims `shape` from st into an arena tensor.
static int load_one(const SafeTensors *st, const char *name, int ndim, const int64_t *shape,
                    const char *why, Arena *a, DType dt, Tensor *t, char *err, size_t errlen) {
    const SafeTensorsEntry *e = st_find(st, name);
    char got[96], want[96];
    shape_str(want, sizeof want, ndim, shape);
    if (!e) return fail(err, errlen, "%s: no tensor %s; expected %s%s", st->path, name, want, why);
    int ok = e->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = e->shape[i] == shape[i];
    if (!ok)
        return fail(err, errlen, "%s: %s is %s; expected %s%s", st->path, name,
                    shape_str(got, sizeof got, e->ndim, e->shape), want, why);
    *t = arena_tensor(a, dt, ndim, shape);
    const size_t bytes = tensor_nbytes(t);
    void *buf = a->dev == DEV_CPU ? t->data : mallocCheck(bytes);
    int rc = 0;
    if (st_load_as(e, dt, buf))
        rc = fail(err, errlen, "%s: %s: cannot convert %s to %s", st->path, name,
                  st_dtype_name(e->dtype), dtype_name(dt));
    if (a->dev != DEV_CPU) {
        if (!rc) story_cuda_memcpy(t->data, buf, bytes, 0);
        free(buf);
    }
    return rc;
}

// A key of the file that this architecture does not use: what it most likely belongs to.
static const char *foreign_what(const char *name) {
    if (!strncmp(name, "image_proj.latents", 18) || strstr(name, "perceiver") ||
        !strncmp(name, "image_proj.layers", 17) || !strncmp(name, "image_proj.proj_in", 18))
        return "IP-Adapter Plus / FaceID Plus (a Resampler image projection)";
    if (strstr(name, "_lora")) return "IP-Adapter FaceID (LoRA weights on the UNet)";
    if (!strncmp(name, "image_proj.proj.", 16)) return "IP-Adapter full-face / FaceID (an MLP)";
    return "another architecture";
}

int ip_adapter_load_st(IpAdapter *ip, const Unet *unet, const SafeTensors *st, Arena *arena,
                       DType dt, char *err, size_t errlen) {
    memset(ip, 0, sizeof *ip);
    const int64_t X = unet->cfg.cross_dim[0], T = IP_ADAPTER_TOKENS;
    for (int i = 1; i < unet->cfg.nblocks; i++)
        if (unet->cfg.cross_dim[i] != X)
            return fail(err, errlen,
                        "%s: the UNet's cross_attention_dim differs between blocks (%lld, %d): "
                        "IP-Adapter needs one width",
                        st->path, (long long)X, unet->cfg.cross_dim[i]);
    const int n = layers(unet, NULL);
    Layer *l = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *l);
    layers(unet, l);
    ip->num_tokens = (int)T, ip->cross_dim = (int)X, ip->nlayers = n, ip->dtype = dt;
    ip->dev = arena->dev;
    ip->to_k_ip = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *ip->to_k_ip);
    ip->to_v_ip = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *ip->to_v_ip);
    ip->file_index = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *ip->file_index);
    memset(ip->to_k_ip, 0, (size_t)(n > 0 ? n : 1) * sizeof *ip->to_k_ip);
    memset(ip->to_v_ip, 0, (size_t)(n > 0 ? n : 1) * sizeof *ip->to_v_ip);
    ip_adapter_layer_numbers(unet, ip->file_index);

    // every key must be one this architecture reads: anything else is another adapter
    int nkeys = 0, maxn = -1;
    for (int i = 0; i < st_count(st); i++) {
        const char *name = st_entry(st, i)->name;
        int num, len = 0;
        char what[16];
        if (!strcmp(name, "image_proj.proj.weight") || !strcmp(name, "image_proj.proj.bias") ||
            !strcmp(name, "image_proj.norm.weight") || !strcmp(name, "image_proj.norm.bias"))
            continue;
        if (sscanf(name, "ip_adapter.%d.to_%1[kv]_ip.weight%n", &num, what, &len) == 2 &&
            name[len] == '\0' && num >= 0) {
            nkeys++;
            if (num > maxn) maxn = num;
            continue;
        }
        ip_adapter_free(ip);
        free(l);
        return fail(err, errlen,
                    "%s: unexpected tensor %s (%s); storyrun reads the plain IP-Adapter layout "
                    "(image_proj.proj/norm + ip_adapter.N.to_k_ip/to_v_ip, e.g. "
                    "ip-adapter_sd15.safetensors)",
                    st->path, name, foreign_what(name));
    }
    if (nkeys != 2 * n) {
        ip_adapter_free(ip);
        free(l);
        return fail(err, errlen,
                    "%s: %d to_k_ip/to_v_ip weights (ip_adapter.N up to N = %d); this UNet has %d "
                    "cross-attention layers, so expected %d (N = 1, 3, ..., %d): an adapter for "
                    "another base model?",
                    st->path, nkeys, maxn, n, 2 * n, 2 * n - 1);
    }

    const SafeTensorsEntry *pw = st_find(st, "image_proj.proj.weight");
    if (!pw || pw->ndim != 2) {
        ip_adapter_free(ip);
        free(l);
        return fail(err, errlen, "%s: no 2-dim image_proj.proj.weight (4 * cross_attention_dim, D)",
                    st->path);
    }
    ip->embed_dim = (int)pw->shape[1];
    const int64_t D = ip->embed_dim;
    char why[160];
    snprintf(why, sizeof why, " (4 tokens x cross_attention_dim %lld of this UNet)", (long long)X);
    int rc =
        load_one(st, "image_proj.proj.weight", 2, SHAPE(T * X, D), why, arena, dt, &ip->proj.w, err,
                 errlen) ||
        load_one(st, "image_proj.proj.bias", 1, SHAPE(T * X), why, arena, dt, &ip->proj.b, err,
                 errlen) ||
        load_one(st, "image_proj.norm.weight", 1, SHAPE(X), why, arena, dt, &ip->norm.w, err,
                 errlen) ||
        load_one(st, "image_proj.norm.bias", 1, SHAPE(X), why, arena, dt, &ip->norm.b, err, errlen);
    for (int i = 0; !rc && i < n; i++) {
        const int64_t C = l[i].t->channels;
        char kname[64], vname[64];
        snprintf(kname, sizeof kname, "ip_adapter.%d.to_k_ip.weight", ip->file_index[i]);
        snprintf(vname, sizeof vname, "ip_adapter.%d.to_v_ip.weight", ip->file_index[i]);
        snprintf(why, sizeof why,
                 " (channels %lld x cross_attention_dim %lld of the UNet's %s "
                 "cross-attention layer %d)",
                 (long long)C, (long long)X,
                 l[i].kind == UNET_DOWN  ? "down"
                 : l[i].kind == UNET_MID ? "mid"
                                         : "up",
                 i);
        rc = load_one(st, kname, 2, SHAPE(C, X), why, arena, dt, &ip->to_k_ip[i].w, err, errlen) ||
             load_one(st, vname, 2, SHAPE(C, X), why, arena, dt, &ip->to_v_ip[i].w, err, errlen);
    }
    free(l);
    if (rc) ip_adapter_free(ip);
    return rc ? -1 : 0;
}

int ip_adapter_load(IpAdapter *ip, const Unet *unet, const char *path, Arena *arena, DType dt,
                    char *err, size_t errlen) {
    memset(ip, 0, sizeof *ip);
    SafeTensors st;
    if (st_open(&st, path, err, errlen)) return -1;
    const int rc = ip_adapter_load_st(ip, unet, &st, arena, dt, err, errlen);
    st_close(&st);
    return rc;
}

void ip_adapter_free(IpAdapter *ip) {
    free(ip->to_k_ip);
    free(ip->to_v_ip);
    free(ip->file_index);
    ip->to_k_ip = ip->to_v_ip = NULL;
    ip->file_index = NULL;
}

// ---- compute ---------------------------------------------------------------------------------

void ip_adapter_project(const IpAdapter *ip, Tensor *tokens, const Tensor *image_embeds) {
    const int64_t N = image_embeds->shape[0], T = ip->num_tokens, X = ip->cross_dim;
    STORY_CHECK(image_embeds->ndim == 2 && image_embeds->shape[1] == ip->embed_dim,
                "ip_adapter_project: image_embeds must be (N, %d)", ip->embed_dim);
    STORY_CHECK(tokens->ndim == 3 && tokens->shape[0] == N && tokens->shape[1] == T &&
                    tokens->shape[2] == X,
                "ip_adapter_project: tokens must be (%lld, %lld, %lld)", (long long)N, (long long)T,
                (long long)X);
    // proj: (N, D) -> (N, T * X), the same memory as (N, T, X); LayerNorm over X in place
    Tensor flat = tensor_view(tokens->data, tokens->dtype, tokens->dev, 2, SHAPE(N, T * X));
    op_linear(&flat, image_embeds, &ip->proj.w, &ip->proj.b);
    op_layer_norm(tokens, tokens, &ip->norm.w, &ip->norm.b, 1e-5f);
}

void ip_adapter_cross_attn(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x_normed,
                           const UnetAttention *attn, const Tensor *context, Arena *scratch) {
    const IpAdapterRun *run = ctx;
    if (run->scale == 0.0f) {  // diffusers skips the image branch at scale 0
        unet_cross_attn_default(NULL, site, out, x_normed, attn, context, scratch);
        return;
    }
    const IpAdapter *ip = run->ip;
    const Tensor *tok = run->tokens;
    const int64_t B = x_normed->shape[0], Lq = x_normed->shape[1], inner = attn->to_q.w.shape[0];
    STORY_CHECK(site->layer >= 0 && site->layer < ip->nlayers,
                "ip_adapter: attn2 layer %d; the adapter was loaded for %d layers", site->layer,
                ip->nlayers);
    STORY_CHECK(tok->ndim == 3 && (tok->shape[0] == B || tok->shape[0] == 1) &&
                    tok->shape[2] == ip->cross_dim,
                "ip_adapter: image tokens must be (%lld or 1, T, %d)", (long long)B, ip->cross_dim);
    const UnetParam *wk = &ip->to_k_ip[site->layer], *wv = &ip->to_v_ip[site->layer];
    STORY_CHECK(wk->w.shape[0] == inner, "ip_adapter: layer %d has %lld channels, attn2 %lld",
                site->layer, (long long)wk->w.shape[0], (long long)inner);
    const DType dt = x_normed->dtype;
    const size_t mark = arena_mark(scratch);
    // q (B, Lq, inner); the text's keys/values (Bc, Lc, inner); the image's (Bt, T, inner)
    Tensor q = ARENA_TENSOR(scratch, dt, B, Lq, inner);
    Tensor kt = ARENA_TENSOR(scratch, dt, context->shape[0], context->shape[1], inner);
    Tensor vt = ARENA_TENSOR(scratch, dt, context->shape[0], context->shape[1], inner);
    Tensor h = ARENA_TENSOR(scratch, dt, B, Lq, inner);
    Tensor ki = ARENA_TENSOR(scratch, dt, tok->shape[0], tok->shape[1], inner);
    Tensor vi = ARENA_TENSOR(scratch, dt, tok->shape[0], tok->shape[1], inner);
    Tensor hi = ARENA_TENSOR(scratch, dt, B, Lq, inner);
    op_linear(&q, x_normed, &attn->to_q.w, NULL);
    op_linear(&kt, context, &attn->to_k.w, NULL);
    op_linear(&vt, context, &attn->to_v.w, NULL);
    const KVSegment text = {&kt, &vt};
    op_attention(&h, &q, &text, 1, attn->heads, 0, 0.0f);
    op_linear(&ki, tok, &wk->w, NULL);
    op_linear(&vi, tok, &wv->w, NULL);
    const KVSegment image = {&ki, &vi};
    op_attention(&hi, &q, &image, 1, attn->heads, 0, 0.0f);
    // h = h + scale * hi, in diffusers' order (the product rounded first), then to_out.0
    op_scale(&hi, &hi, run->scale, 0.0f);
    op_add(&h, &h, &hi);
    op_linear(out, &h, &attn->to_out.w, attn->to_out.b.data ? &attn->to_out.b : NULL);
    arena_release(scratch, mark);
}

void ip_adapter_bind(IpAdapterRun *run, const IpAdapter *ip, const Tensor *tokens, float scale,
                     UnetInputs *in) {
    run->ip = ip;
    run->tokens = tokens;
    run->scale = scale;
    in->cross_attn = ip_adapter_cross_attn;
    in->cross_attn_ctx = run;
}

size_t ip_adapter_scratch_bytes(const IpAdapter *ip, const Unet *unet, int B, int H, int W, int Bt,
                                int T) {
    // over the plain attn2 (q, k, v, h): the image keys and values and their attention output
    const int n = unet_self_attn_layers(unet);
    UnetAttnSite *s = mallocCheck((size_t)(n > 0 ? n : 1) * sizeof *s);
    const size_t es = dtype_size(ip->dtype);
    size_t most = 0;
    if (unet_self_attn_sites(unet, H, W, s) == n)
        for (int i = 0; i < n && i < ip->nlayers; i++) {
            const size_t C = (size_t)ip->to_k_ip[i].w.shape[0];
            const size_t b = 2 * round256((size_t)Bt * T * C * es) +
                             round256((size_t)B * s[i].height * s[i].width * C * es);
            if (b > most) most = b;
        }
    free(s);
    return most + 256;
}
