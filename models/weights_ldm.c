// models/weights_ldm.c: single-file checkpoints with the original (LDM / SGM) key names.
//
// Family from the names:
//   SD1.x  cond_stage_model.transformer.*     (HF CLIPTextModel inside: ViT-L/14)
//   SD2.x  cond_stage_model.model.*           (OpenCLIP ViT-H/14)
//   SDXL   conditioner.embedders.0.transformer.* (CLIP ViT-L) + .1.model.* (OpenCLIP bigG)
// and the UNet under model.diffusion_model.*, the VAE under first_stage_model.* (or vae.*).
//
// The name map is the one diffusers' single-file loader applies
// (diffusers/loaders/single_file_utils.py: convert_ldm_unet_checkpoint,
// convert_ldm_vae_checkpoint, convert_ldm_clip_checkpoint, convert_open_clip_checkpoint):
//   UNet: time_embed.{0,2} -> time_embedding.linear_{1,2}; label_emb.0.{0,2} ->
//     add_embedding.linear_{1,2} (SDXL); input_blocks.0.0 -> conv_in; out.{0,2} ->
//     conv_norm_out / conv_out; input_blocks.i (i >= 1; b = (i-1) / (L+1), l = (i-1) % (L+1),
//     L = layers_per_block): .0 -> down_blocks.b.resnets.l, .0.op ->
//     down_blocks.b.downsamplers.0.conv, .1 -> down_blocks.b.attentions.l; middle_block.{0,1,2} ->
//     mid_block.{resnets.0, attentions.0, resnets.1}; output_blocks.i (b = i / (L+1), l = i %
//     (L+1)): .0 -> up_blocks.b.resnets.l, .1 -> attentions.l, .1.conv / .2.conv ->
//     upsamplers.0.conv. Resnet parts: in_layers.{0,2} -> norm1/conv1, out_layers.{0,3} ->
//     norm2/conv2, emb_layers.1 -> time_emb_proj, skip_connection -> conv_shortcut. Transformer
//     blocks keep their names.
//   VAE: {encoder,decoder}.norm_out -> conv_norm_out; encoder.down.i.block.j ->
//     encoder.down_blocks.i.resnets.j; .downsample.conv -> .downsamplers.0.conv;
//     decoder.up.i -> decoder.up_blocks.(n-1-i) (LDM counts up blocks from the bottom);
//     mid.block_{1,2} -> mid_block.resnets.{0,1}; mid.attn_1.{norm,q,k,v,proj_out} ->
//     mid_block.attentions.0.{group_norm,to_q,to_k,to_v,to_out.0} with the conv 1x1
//     weights (C, C, 1, 1) seen as linear (C, C); nin_shortcut -> conv_shortcut.
//   CLIP: the prefix is dropped (text_model.* stays).
//   OpenCLIP: token_embedding, positional_embedding, ln_final, transformer.resblocks.N.
//     {ln_1, ln_2, attn.out_proj, mlp.c_fc, mlp.c_proj} -> text_model.embeddings.*,
//     final_layer_norm, encoder.layers.N.{layer_norm1, layer_norm2, self_attn.out_proj,
//     mlp.fc1, mlp.fc2}; attn.in_proj_{weight,bias} (3C rows) -> rows [0,C) q_proj,
//     [C,2C) k_proj, [2C,3C) v_proj; text_projection (C, P) -> text_projection.weight, its
//     transpose (P, C). SD2.x's text encoder is the tower without its last block and
//     projection (SD2 conditions on the penultimate layer; diffusers' config has 23 layers).
// Everything else (EMA copies, schedule buffers, logit_scale) is left unused.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/weights_impl.h"

#define UNET "model.diffusion_model."
#define SD1_TE "cond_stage_model.transformer."
#define SD2_TE "cond_stage_model.model."
#define XL_TE1 "conditioner.embedders.0.transformer."
#define XL_TE2 "conditioner.embedders.1.model."
#define XL_REFINER "conditioner.embedders.0.model."

static bool starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static bool any_prefix(const SafeTensors *st, const char *p) {
    for (int i = 0; i < st_count(st); i++)
        if (starts(st_entry(st, i)->name, p)) return true;
    return false;
}

// "a.b.c" -> groups of the first two dotted parts with counts, for messages.
static void describe_keys(const SafeTensors *st, char *out, size_t n) {
    enum { MAXG = 10 };
    char group[MAXG][96];
    int count[MAXG] = {0}, ng = 0, other = 0;
    for (int i = 0; i < st_count(st); i++) {
        const char *k = st_entry(st, i)->name, *d = strchr(k, '.');
        if (d && strchr(d + 1, '.')) d = strchr(d + 1, '.');
        size_t len = d ? (size_t)(d - k) : strlen(k);
        if (len >= sizeof group[0]) len = sizeof group[0] - 1;
        int g = 0;
        while (g < ng && (strlen(group[g]) != len || strncmp(group[g], k, len))) g++;
        if (g == ng) {
            if (ng == MAXG) {
                other++;
                continue;
            }
            memcpy(group[ng], k, len);
            group[ng++][len] = '\0';
        }
        count[g]++;
    }
    size_t o = 0;
    for (int g = 0; g < ng && o < n; g++)
        o += (size_t)snprintf(out + o, n - o, "%s%s.* (%d)", g ? ", " : "", group[g], count[g]);
    if (other && o < n) snprintf(out + o, n - o, ", %d more", other);
    if (!ng && n) snprintf(out, n, "no tensors");
}

int ldm_detect(const SafeTensors *st, ModelFamily *family, char *err, size_t errlen) {
    *family = FAMILY_UNKNOWN;
    bool unet = any_prefix(st, UNET), sd1 = any_prefix(st, SD1_TE), sd2 = any_prefix(st, SD2_TE),
         xl1 = any_prefix(st, XL_TE1), xl2 = any_prefix(st, XL_TE2),
         refiner = any_prefix(st, XL_REFINER);
    char found[700];
    describe_keys(st, found, sizeof found);
    if (refiner && !xl1)
        return w_err(err, errlen,
                     "%s: an SDXL refiner checkpoint (conditioner.embedders.0.model.*): storyrun "
                     "runs SD1.x, SD2.x and SDXL base models",
                     st->path);
    if (unet && xl1 && xl2 && !sd1 && !sd2)
        *family = FAMILY_SDXL;
    else if (unet && sd1 && !sd2 && !xl1 && !xl2)
        *family = FAMILY_SD1;
    else if (unet && sd2 && !sd1 && !xl1 && !xl2)
        *family = FAMILY_SD2;
    if (*family != FAMILY_UNKNOWN) return 0;
    const char *hint = "";
    if (any_prefix(st, "down_blocks.") || any_prefix(st, "text_model.") ||
        any_prefix(st, "encoder.down_blocks."))
        hint =
            " (diffusers names: this is one component of a diffusers folder; give storyrun "
            "the folder with model_index.json)";
    else if (!unet)
        hint = " (no UNet: model.diffusion_model.* is missing)";
    return w_err(err, errlen,
                 "%s: unknown model layout%s. Expected a Stable Diffusion checkpoint: "
                 "model.diffusion_model.* plus cond_stage_model.transformer.* (SD1.x), "
                 "cond_stage_model.model.* (SD2.x), or conditioner.embedders.0.transformer.* and "
                 ".1.model.* (SDXL). Found: %s",
                 st->path, hint, found);
}

// ---- helpers ------------------------------------------------------------------------

typedef struct {
    Weights *w;
    int file;
    char *err;
    size_t errlen;
} Ctx;

// Adds component/name <- entry, with rows/transpose/reshape already decided.
static int put(Ctx *x, const char *comp, const char *name, const SafeTensorsEntry *e, int64_t row0,
               int64_t rows, bool transpose, int ndim, const int64_t *shape) {
    WComponent *c = w_component(x->w, comp, true);
    WTensor *t = w_add(c, name, x->file, e);
    t->row0 = row0;
    t->rows = rows;
    t->transpose = transpose;
    if (w_set_view(t, ndim, shape))
        return w_err(x->err, x->errlen, "%s: tensor %s (%d dims) cannot be seen as %s/%s",
                     x->w->files[x->file].path, e->name, e->ndim, comp, name);
    return 0;
}

static int put_plain(Ctx *x, const char *comp, const char *name, const SafeTensorsEntry *e) {
    return put(x, comp, name, e, 0, -1, false, 0, NULL);
}

// Replaces a leading `from` of s by `to` (s is a dotted remainder like "in_layers.0.weight").
static bool swap_head(char *out, size_t n, const char *s, const char *from, const char *to) {
    size_t k = strlen(from);
    if (strncmp(s, from, k) || (s[k] != '.' && s[k] != '\0')) return false;
    snprintf(out, n, "%s%s", to, s + k);
    return true;
}

static void resnet_part(char *out, size_t n, const char *rest) {
    static const char *map[][2] = {
        {"in_layers.0", "norm1"},          {"in_layers.2", "conv1"},
        {"out_layers.0", "norm2"},         {"out_layers.3", "conv2"},
        {"emb_layers.1", "time_emb_proj"}, {"skip_connection", "conv_shortcut"}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (swap_head(out, n, rest, map[i][0], map[i][1])) return;
    snprintf(out, n, "%s", rest);
}

// Parses "N.rest" at s: returns N (>= 0) and sets *rest, or -1.
static int index_at(const char *s, const char **rest) {
    *rest = s;
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '.' || v < 0 || v > 100000) return -1;
    *rest = end + 1;
    return (int)v;
}

// ---- UNet ---------------------------------------------------------------------------

static int map_unet(Ctx *x, const SafeTensors *st, bool *used) {
    // layers_per_block: the first downsampler sits at input_blocks.(L+1).0.op
    int first_op = -1, max_in = 0;
    for (int i = 0; i < st_count(st); i++) {
        const char *k = st_entry(st, i)->name, *r;
        if (!starts(k, UNET "input_blocks.")) continue;
        int b = index_at(k + strlen(UNET "input_blocks."), &r);
        if (b > max_in) max_in = b;
        if (b > 0 && starts(r, "0.op.") && (first_op < 0 || b < first_op)) first_op = b;
    }
    int L1 = first_op > 0 ? first_op : max_in + 1;  // L + 1
    bool xl = x->w->family == FAMILY_SDXL;
    for (int i = 0; i < st_count(st); i++) {
        const SafeTensorsEntry *e = st_entry(st, i);
        if (!starts(e->name, UNET)) continue;
        const char *k = e->name + strlen(UNET), *r = "", *r2 = "";
        char name[512], part[400];
        name[0] = '\0';
        if (swap_head(name, sizeof name, k, "time_embed.0", "time_embedding.linear_1") ||
            swap_head(name, sizeof name, k, "time_embed.2", "time_embedding.linear_2") ||
            swap_head(name, sizeof name, k, "input_blocks.0.0", "conv_in") ||
            swap_head(name, sizeof name, k, "out.0", "conv_norm_out") ||
            swap_head(name, sizeof name, k, "out.2", "conv_out") ||
            (xl && swap_head(name, sizeof name, k, "label_emb.0.0", "add_embedding.linear_1")) ||
            (xl && swap_head(name, sizeof name, k, "label_emb.0.2", "add_embedding.linear_2"))) {
        } else if (starts(k, "input_blocks.")) {
            int blk = index_at(k + 13, &r), j = blk > 0 ? index_at(r, &r2) : -1;
            int b = (blk - 1) / L1, l = (blk - 1) % L1;
            if (j == 0 && starts(r2, "op."))
                snprintf(name, sizeof name, "down_blocks.%d.downsamplers.0.conv.%s", b, r2 + 3);
            else if (j == 0) {
                resnet_part(part, sizeof part, r2);
                snprintf(name, sizeof name, "down_blocks.%d.resnets.%d.%s", b, l, part);
            } else if (j == 1)
                snprintf(name, sizeof name, "down_blocks.%d.attentions.%d.%s", b, l, r2);
        } else if (starts(k, "middle_block.")) {
            int j = index_at(k + 13, &r);
            resnet_part(part, sizeof part, r);
            if (j == 0 || j == 2)
                snprintf(name, sizeof name, "mid_block.resnets.%d.%s", j / 2, part);
            else if (j == 1)
                snprintf(name, sizeof name, "mid_block.attentions.0.%s", r);
        } else if (starts(k, "output_blocks.")) {
            int blk = index_at(k + 14, &r), j = blk >= 0 ? index_at(r, &r2) : -1;
            int b = blk / L1, l = blk % L1;
            if (j == 0) {
                resnet_part(part, sizeof part, r2);
                snprintf(name, sizeof name, "up_blocks.%d.resnets.%d.%s", b, l, part);
            } else if ((j == 1 || j == 2) && starts(r2, "conv."))
                snprintf(name, sizeof name, "up_blocks.%d.upsamplers.0.conv.%s", b, r2 + 5);
            else if (j == 1)
                snprintf(name, sizeof name, "up_blocks.%d.attentions.%d.%s", b, l, r2);
        }
        if (!name[0]) continue;
        if (put_plain(x, "unet", name, e)) return -1;
        used[i] = true;
    }
    return 0;
}

// ---- VAE ----------------------------------------------------------------------------

static int map_vae(Ctx *x, const SafeTensors *st, const char *prefix, bool *used) {
    int n_up = 0;  // decoder.up.i counts from the lowest resolution
    size_t pl = strlen(prefix);
    for (int i = 0; i < st_count(st); i++) {
        const char *k = st_entry(st, i)->name, *r;
        if (starts(k, prefix) && starts(k + pl, "decoder.up.")) {
            int b = index_at(k + pl + 11, &r);
            if (b + 1 > n_up) n_up = b + 1;
        }
    }
    for (int i = 0; i < st_count(st); i++) {
        const SafeTensorsEntry *e = st_entry(st, i);
        if (!starts(e->name, prefix)) continue;
        const char *k = e->name + pl, *r = "", *r2 = "";
        char name[512], part[400];
        name[0] = '\0';
        const char *coder = starts(k, "encoder.")   ? "encoder"
                            : starts(k, "decoder.") ? "decoder"
                                                    : NULL;
        const char *s = coder ? k + 8 : k;
        bool attn_w = false;
        if (!coder) {
            if (starts(k, "quant_conv.") || starts(k, "post_quant_conv."))
                snprintf(name, sizeof name, "%s", k);
        } else if (starts(s, "conv_in.") || starts(s, "conv_out.")) {
            snprintf(name, sizeof name, "%s", k);
        } else if (swap_head(part, sizeof part, s, "norm_out", "conv_norm_out")) {
            snprintf(name, sizeof name, "%s.%s", coder, part);
        } else if (starts(s, "mid.block_")) {
            int j = index_at(s + 10, &r);
            if (j == 1 || j == 2) {
                if (!swap_head(part, sizeof part, r, "nin_shortcut", "conv_shortcut"))
                    snprintf(part, sizeof part, "%s", r);
                snprintf(name, sizeof name, "%s.mid_block.resnets.%d.%s", coder, j - 1, part);
            }
        } else if (starts(s, "mid.attn_1.")) {
            static const char *map[][2] = {{"norm", "group_norm"},
                                           {"q", "to_q"},
                                           {"k", "to_k"},
                                           {"v", "to_v"},
                                           {"proj_out", "to_out.0"}};
            for (size_t m = 0; m < 5 && !name[0]; m++)
                if (swap_head(part, sizeof part, s + 11, map[m][0], map[m][1])) {
                    snprintf(name, sizeof name, "%s.mid_block.attentions.0.%s", coder, part);
                    attn_w = m > 0 && e->ndim > 2;
                }
        } else if (starts(s, "down.") || starts(s, "up.")) {
            bool down = s[0] == 'd';
            int b = index_at(s + (down ? 5 : 3), &r);
            int nb = down ? b : n_up - 1 - b;
            if (b >= 0 && starts(r, "block.") && index_at(r + 6, &r2) >= 0) {
                int j = index_at(r + 6, &r2);
                if (!swap_head(part, sizeof part, r2, "nin_shortcut", "conv_shortcut"))
                    snprintf(part, sizeof part, "%s", r2);
                snprintf(name, sizeof name, "%s.%s_blocks.%d.resnets.%d.%s", coder,
                         down ? "down" : "up", nb, j, part);
            } else if (b >= 0 && (starts(r, "downsample.conv.") || starts(r, "upsample.conv."))) {
                snprintf(name, sizeof name, "%s.%s_blocks.%d.%s.0.conv.%s", coder,
                         down ? "down" : "up", nb, down ? "downsamplers" : "upsamplers",
                         r + (down ? 16 : 14));
            }
        }
        if (!name[0]) continue;
        if (attn_w) {  // conv 1x1 (C, C, 1, 1) or conv1d (C, C, 1) as linear (C, C)
            int64_t shape[2] = {e->shape[0], e->shape[1]};
            if (put(x, "vae", name, e, 0, -1, false, 2, shape)) return -1;
        } else if (put_plain(x, "vae", name, e)) {
            return -1;
        }
        used[i] = true;
    }
    return 0;
}

// ---- text encoders ------------------------------------------------------------------

static int map_clip(Ctx *x, const SafeTensors *st, const char *prefix, const char *comp,
                    bool *used) {
    for (int i = 0; i < st_count(st); i++) {
        const SafeTensorsEntry *e = st_entry(st, i);
        if (!starts(e->name, prefix)) continue;
        const char *k = e->name + strlen(prefix);
        char name[512];
        snprintf(name, sizeof name, "%s%s", starts(k, "text_model.") ? "" : "text_model.", k);
        if (put_plain(x, comp, name, e)) return -1;
        used[i] = true;
    }
    return 0;
}

// OpenCLIP's text tower. keep_layers < 0: all blocks and the projection; else only blocks
// [0, keep_layers) and no projection (SD2.x).
static int map_openclip(Ctx *x, const SafeTensors *st, const char *prefix, const char *comp,
                        int keep_layers, bool *used) {
    size_t pl = strlen(prefix);
    for (int i = 0; i < st_count(st); i++) {
        const SafeTensorsEntry *e = st_entry(st, i);
        if (!starts(e->name, prefix)) continue;
        const char *k = e->name + pl, *r;
        char name[512], part[400];
        name[0] = '\0';
        if (!strcmp(k, "token_embedding.weight"))
            snprintf(name, sizeof name, "text_model.embeddings.token_embedding.weight");
        else if (!strcmp(k, "positional_embedding"))
            snprintf(name, sizeof name, "text_model.embeddings.position_embedding.weight");
        else if (swap_head(part, sizeof part, k, "ln_final", "final_layer_norm"))
            snprintf(name, sizeof name, "text_model.%s", part);
        else if (!strcmp(k, "text_projection")) {
            if (keep_layers >= 0) continue;
            if (e->ndim != 2)
                return w_err(x->err, x->errlen, "%s: %s: expected 2 dims (C, P), found %d",
                             st->path, e->name, e->ndim);
            if (put(x, comp, "text_projection.weight", e, 0, -1, true, 0, NULL)) return -1;
            used[i] = true;
            continue;
        } else if (starts(k, "transformer.resblocks.")) {
            int l = index_at(k + 22, &r);
            if (l < 0 || (keep_layers >= 0 && l >= keep_layers)) continue;
            char base[64];
            snprintf(base, sizeof base, "text_model.encoder.layers.%d.", l);
            if (!strcmp(r, "attn.in_proj_weight") || !strcmp(r, "attn.in_proj_bias")) {
                bool w = r[13] == 'w';
                if (e->ndim != (w ? 2 : 1) || e->shape[0] % 3)
                    return w_err(
                        x->err, x->errlen,
                        "%s: %s: expected %s with 3C rows (q, k, v), found %d dims of %lld rows",
                        st->path, e->name, w ? "(3C, C)" : "(3C,)", e->ndim,
                        (long long)(e->ndim ? e->shape[0] : 0));
                int64_t C = e->shape[0] / 3;
                for (int q = 0; q < 3; q++) {
                    snprintf(name, sizeof name, "%sself_attn.%c_proj.%s", base, "qkv"[q],
                             w ? "weight" : "bias");
                    if (put(x, comp, name, e, q * C, C, false, 0, NULL)) return -1;
                }
                used[i] = true;
                continue;
            }
            static const char *map[][2] = {{"ln_1", "layer_norm1"},
                                           {"ln_2", "layer_norm2"},
                                           {"attn.out_proj", "self_attn.out_proj"},
                                           {"mlp.c_fc", "mlp.fc1"},
                                           {"mlp.c_proj", "mlp.fc2"}};
            for (size_t m = 0; m < 5 && !name[0]; m++)
                if (swap_head(part, sizeof part, r, map[m][0], map[m][1]))
                    snprintf(name, sizeof name, "%s%s", base, part);
        }
        if (!name[0]) continue;
        if (put_plain(x, comp, name, e)) return -1;
        used[i] = true;
    }
    return 0;
}

static int count_resblocks(const SafeTensors *st, const char *prefix) {
    char p[128];
    snprintf(p, sizeof p, "%stransformer.resblocks.", prefix);
    int n = 0;
    for (int i = 0; i < st_count(st); i++) {
        const char *k = st_entry(st, i)->name, *r;
        if (!starts(k, p)) continue;
        int l = index_at(k + strlen(p), &r);
        if (l + 1 > n) n = l + 1;
    }
    return n;
}

int ldm_map(Weights *w, int file, char *err, size_t errlen) {
    const SafeTensors *st = &w->files[file];
    bool *used = calloc((size_t)st_count(st) + 1, sizeof *used);
    if (!used) return w_err(err, errlen, "out of memory");
    Ctx x = {w, file, err, errlen};
    const char *vae = any_prefix(st, "first_stage_model.") ? "first_stage_model." : "vae.";
    int rc = map_unet(&x, st, used);
    if (!rc) rc = map_vae(&x, st, vae, used);
    if (!rc && w->family == FAMILY_SD1) rc = map_clip(&x, st, SD1_TE, "text_encoder", used);
    if (!rc && w->family == FAMILY_SD2) {
        int n = count_resblocks(st, SD2_TE);
        rc = map_openclip(&x, st, SD2_TE, "text_encoder", n > 1 ? n - 1 : n, used);
    }
    if (!rc && w->family == FAMILY_SDXL) {
        rc = map_clip(&x, st, XL_TE1, "text_encoder", used);
        if (!rc) rc = map_openclip(&x, st, XL_TE2, "text_encoder_2", -1, used);
    }
    for (int i = 0; !rc && i < st_count(st); i++)
        if (!used[i] && w->unused++ == 0)
            snprintf(w->unused_example, sizeof w->unused_example, "%s", st_entry(st, i)->name);
    free(used);
    return rc;
}
