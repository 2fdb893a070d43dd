// jobs/inspect.c: `storyrun inspect PATH [--tensors]`, the first thing to run on new
// weights. Prints the detected family and layout, each component with its tensor count,
// parameter count, dtypes and where it comes from, a summary of the configs, and every
// problem models/weights_check.c finds. Exit status: 0 usable, 1 unusable (an error
// among the problems), 2 the weights could not be opened at all.
#include <stdio.h>
#include <string.h>

#include "jobs/jobs.h"
#include "models/safetensors.h"
#include "models/weights.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: storyrun inspect PATH [--tensors]\n"
            "  PATH       a diffusers folder (model_index.json), a .safetensors checkpoint, or\n"
            "             builtin:tiny-sd15 / builtin:tiny-sdxl\n"
            "  --tensors  also list every tensor: diffusers name, shape, dtype, stored name\n");
}

// v as text ("[320, 640]", "true", "gelu") appended at buf[*o], cut at n - 1 bytes.
static void value_text(const JsonValue *v, char *buf, size_t n, size_t *o) {
#define PUT(...) (*o += (*o < n ? (size_t)snprintf(buf + *o, n - *o, __VA_ARGS__) : 0))
    switch (v->type) {
    case JSON_NULL: PUT("null"); break;
    case JSON_BOOL: PUT("%s", v->boolean ? "true" : "false"); break;
    case JSON_NUMBER:
    case JSON_STRING: PUT("%s", v->str); break;
    case JSON_ARRAY:
        PUT("[");
        for (size_t i = 0; i < v->len; i++) {
            if (i) PUT(", ");
            value_text(&v->items[i], buf, n, o);
        }
        PUT("]");
        break;
    case JSON_OBJECT: PUT("{...}"); break;
    }
#undef PUT
}

// The config keys worth a glance, per component kind.
static void print_config(const Weights *w, const char *comp) {
    static const char *unet[] = {"block_out_channels",
                                 "layers_per_block",
                                 "down_block_types",
                                 "cross_attention_dim",
                                 "attention_head_dim",
                                 "transformer_layers_per_block",
                                 "use_linear_projection",
                                 "addition_embed_type",
                                 "projection_class_embeddings_input_dim",
                                 "sample_size",
                                 NULL};
    static const char *vae[] = {"block_out_channels", "layers_per_block", "latent_channels",
                                "scaling_factor",     "sample_size",      NULL};
    static const char *clip[] = {
        "hidden_size", "num_hidden_layers", "num_attention_heads",     "intermediate_size",
        "hidden_act",  "vocab_size",        "max_position_embeddings", "projection_dim",
        NULL};
    static const char *sched[] = {"_class_name", "prediction_type", "beta_schedule",
                                  "timestep_spacing", NULL};
    const char **keys = !strcmp(comp, "unet")                ? unet
                        : !strcmp(comp, "vae")               ? vae
                        : !strncmp(comp, "text_encoder", 12) ? clip
                        : !strcmp(comp, "scheduler")         ? sched
                                                             : NULL;
    const JsonValue *cfg = weights_config(w, comp);
    if (!keys || !cfg) return;
    printf("  %-15s", comp);
    int n = 0, col = 17;
    for (int i = 0; keys[i]; i++) {
        const JsonValue *v = json_get(cfg, keys[i]);
        if (!v) continue;
        char text[256];
        size_t o = 0;
        value_text(v, text, sizeof text, &o);
        int len = (int)(strlen(keys[i]) + 3 + strlen(text));
        if (n && col + len > 100) {  // wrap under the first value
            printf(",\n%17s", "");
            col = 17;
        } else if (n) {
            printf(", ");
        }
        col += len;
        printf("%s %s", keys[i], text);
        n++;
    }
    printf("\n");
}

int job_inspect(int argc, char **argv) {
    const char *path = NULL;
    int list = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tensors"))
            list = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "storyrun inspect: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else
            path = argv[i];
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    Weights *w;
    char err[2048];
    if (weights_open(&w, path, err, sizeof err)) {
        fprintf(stderr, "storyrun inspect: %s\n", err);
        return 2;
    }
    printf("model: %s\n", weights_path(w));
    printf("family: %s\n", family_name(weights_family(w)));
    printf("layout: %s\n", weights_layout(w) == LAYOUT_DIFFUSERS ? "diffusers folder"
                            : weights_layout(w) == LAYOUT_BUILTIN
                                ? "built in (seeded random weights made in memory, no files)"
                                : "single-file checkpoint (LDM names)");
    printf("components:\n");
    double total = 0;
    for (int c = 0; c < weights_component_count(w); c++) {
        const char *comp = weights_component(w, c);
        int n = weights_tensor_count(w, comp);
        if (!n) {
            const char *tok = weights_tokenizer_dir(w, comp);
            const JsonValue *cls = json_get(weights_config(w, comp), "_class_name");
            printf("  %-15s %s\n", comp,
                   tok                               ? tok
                   : cls && cls->type == JSON_STRING ? cls->str
                   : !strncmp(comp, "tokenizer", 9)  ? "(no vocabulary found)"
                                                     : "(no tensors)");
            continue;
        }
        // parameters: floating-point tensors as the model sees them; dtypes as stored
        double params = 0;
        int count[ST_NDTYPES] = {0};
        const char *file = NULL;
        int files = 1;
        for (int i = 0; i < n; i++) {
            WeightInfo info;
            weights_tensor_info(w, comp, i, &info);
            int d = 0;
            while (d < ST_NDTYPES && strcmp(st_dtype_name((StDType)d), info.dtype)) d++;
            if (d < ST_NDTYPES) count[d]++;
            bool fp = !strcmp(info.dtype, "F32") || !strcmp(info.dtype, "F16") ||
                      !strcmp(info.dtype, "BF16") || !strcmp(info.dtype, "F64");
            double numel = 1;
            for (int k = 0; k < info.ndim; k++) numel *= (double)info.shape[k];
            if (fp) params += numel;
            if (!file) file = info.file;
            if (strcmp(file, info.file)) files = 2;  // shards
        }
        total += params;
        printf("  %-15s %5d tensors %10.0f params (%7.3f M)  ", comp, n, params, params / 1e6);
        int k = 0;
        for (int d = 0; d < ST_NDTYPES; d++)
            if (count[d]) printf("%s%s x%d", k++ ? ", " : "", st_dtype_name((StDType)d), count[d]);
        printf("  %s%s\n", file, files > 1 ? " (and other shards)" : "");
    }
    printf("parameters: %.0f (%.3f M)\n", total, total / 1e6);
    printf("config:\n");
    for (int c = 0; c < weights_component_count(w); c++) print_config(w, weights_component(w, c));
    if (list) {
        printf("tensors:\n");
        for (int c = 0; c < weights_component_count(w); c++) {
            const char *comp = weights_component(w, c);
            for (int i = 0; i < weights_tensor_count(w, comp); i++) {
                WeightInfo info;
                weights_tensor_info(w, comp, i, &info);
                printf("  %s/%s (", comp, info.name);
                for (int k = 0; k < info.ndim; k++)
                    printf("%s%lld", k ? ", " : "", (long long)info.shape[k]);
                printf(") %s", info.dtype);
                if (strcmp(info.source, info.name)) printf("  <- %s", info.source);
                printf("\n");
            }
        }
    }
    enum { MAXP = 256 };
    static WeightsProblem probs[MAXP];
    int np = weights_check(w, probs, MAXP), errors = 0;
    static const char *sev[] = {"note", "warning", "error"};
    printf("problems:%s\n", np ? "" : " none");
    for (int i = 0; i < np && i < MAXP; i++) {
        printf("  %s: %s\n", sev[probs[i].severity], probs[i].msg);
        errors += probs[i].severity == WP_ERROR;
    }
    if (np > MAXP) {
        printf("  ... and %d more\n", np - MAXP);
        errors++;  // so many problems: not usable as it is
    }
    printf("%s\n", errors ? "NOT USABLE: see the errors above" : "usable");
    weights_close(w);
    return errors ? 1 : 0;
}
