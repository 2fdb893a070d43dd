// models/scheduler_config.c: scheduler kinds and configs (diffusers' scheduler_config.json
// keys, the families' published configs, from_config's defaulting).
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "models/scheduler.h"

static const char *const kind_names[SCHED_KIND_COUNT] = {"ddim", "euler", "euler_a", "dpmpp_2m"};
static const char *const kind_classes[SCHED_KIND_COUNT] = {
    "DDIMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler"};

const char *sched_kind_name(SchedKind k) {
    return (int)k >= 0 && k < SCHED_KIND_COUNT ? kind_names[k] : "unknown";
}

int sched_kind_from_class(const char *class_name) {
    for (int k = 0; k < SCHED_KIND_COUNT; k++)
        if (class_name && !strcmp(class_name, kind_classes[k])) return k;
    return -1;
}

int sched_kind_parse(const char *name, SchedKind *k, int *karras) {
    if (karras) *karras = 0;
    if (!name) return -1;
    for (int i = 0; i < SCHED_KIND_COUNT; i++)
        if (!strcmp(name, kind_names[i]) || !strcmp(name, kind_classes[i])) {
            *k = (SchedKind)i;
            return 0;
        }
    if (karras && !strcmp(name, "dpmpp_2m_karras")) {
        *k = SCHED_DPMPP_2M;
        *karras = 1;
        return 0;
    }
    return -1;
}

void sched_config_unset(SchedConfig *c) {
    c->num_train_timesteps = -1;
    c->beta_start = c->beta_end = NAN;
    c->beta_schedule = c->prediction_type = c->timestep_spacing = c->steps_offset = -1;
    c->rescale_betas_zero_snr = c->set_alpha_to_one = c->clip_sample = -1;
    c->interpolation_type = -1;
    c->sigma_min = c->sigma_max = NAN;
    c->use_karras_sigmas = c->final_sigmas_type = -1;
    c->solver_order = c->solver_type = c->lower_order_final = c->euler_at_final = -1;
    c->lambda_min_clipped = NAN;
}

void sched_config_family(SchedConfig *c, ModelFamily f) {
    sched_config_unset(c);
    if (f != FAMILY_SD1 && f != FAMILY_SD2 && f != FAMILY_SDXL) return;
    // the keys every published SD config has
    c->num_train_timesteps = 1000;
    c->beta_start = 0.00085;
    c->beta_end = 0.012;
    c->beta_schedule = SCHED_BETA_SCALED_LINEAR;
    c->set_alpha_to_one = 0;
    c->steps_offset = 1;
    c->clip_sample = 0;
    if (f == FAMILY_SD2) c->prediction_type = SCHED_PRED_V;  // the 768-v models
    if (f == FAMILY_SDXL) {
        c->prediction_type = SCHED_PRED_EPSILON;
        c->timestep_spacing = SCHED_SPACING_LEADING;
        c->interpolation_type = SCHED_INTERP_LINEAR;
        c->use_karras_sigmas = 0;
    }
}

// ---- JSON ---------------------------------------------------------------------------------

// The value of key, or NULL when absent or null (null is diffusers' "None": not given).
static const JsonValue *cfg_value(const JsonValue *obj, const char *key) {
    const JsonValue *v = json_get(obj, key);
    return v && v->type != JSON_NULL ? v : NULL;
}

static int cfg_enum(const JsonDoc *doc, const JsonValue *obj, const char *key,
                    const char *const *names, int count, int *out, char *err, size_t errlen) {
    const JsonValue *v = cfg_value(obj, key);
    if (!v) return 0;
    const char *s;
    char what[64];
    snprintf(what, sizeof what, "\"%s\"", key);
    if (json_as_string(doc, v, what, &s, err, errlen) < 0) return -1;
    for (int i = 0; i < count; i++)
        if (names[i] && !strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    char list[256] = "";
    for (int i = 0; i < count; i++)
        if (names[i])
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", *list ? ", " : "",
                     names[i]);
    return json_errat(doc, v->pos, err, errlen,
                      "\"%s\": \"%s\" is not supported (storyrun knows %s)", key, s, list);
}

static int cfg_bool(const JsonDoc *doc, const JsonValue *obj, const char *key, int *out, char *err,
                    size_t errlen) {
    const JsonValue *v = cfg_value(obj, key);
    if (!v) return 0;
    bool b;
    char what[64];
    snprintf(what, sizeof what, "\"%s\"", key);
    if (json_as_bool(doc, v, what, &b, err, errlen) < 0) return -1;
    *out = b;
    return 0;
}

static int cfg_int(const JsonDoc *doc, const JsonValue *obj, const char *key, int64_t lo,
                   int64_t hi, int *out, char *err, size_t errlen) {
    const JsonValue *v = cfg_value(obj, key);
    if (!v) return 0;
    int64_t x;
    char what[64];
    snprintf(what, sizeof what, "\"%s\"", key);
    if (json_as_int(doc, v, what, lo, hi, &x, err, errlen) < 0) return -1;
    *out = (int)x;
    return 0;
}

static int cfg_num(const JsonDoc *doc, const JsonValue *obj, const char *key, double *out,
                   char *err, size_t errlen) {
    const JsonValue *v = cfg_value(obj, key);
    if (!v) return 0;
    char what[64];
    snprintf(what, sizeof what, "\"%s\"", key);
    return json_as_number(doc, v, what, out, err, errlen);
}

// An option storyrun does not implement: fine when absent, null, false or its default.
static int cfg_unsupported_true(const JsonDoc *doc, const JsonValue *obj, const char *key,
                                char *err, size_t errlen) {
    const JsonValue *v = cfg_value(obj, key);
    if (!v || (v->type == JSON_BOOL && !v->boolean)) return 0;
    return json_errat(doc, v->pos, err, errlen, "\"%s\": only false (or null) is supported", key);
}

int sched_config_from_json(SchedConfig *c, const JsonDoc *doc, const JsonValue *obj, char *err,
                           size_t errlen) {
    if (!obj || obj->type != JSON_OBJECT)
        return json_errat(doc, obj ? obj->pos : 0, err, errlen,
                          "a scheduler config must be an object");
    static const char *const betas[] = {"linear", "scaled_linear", "squaredcos_cap_v2"};
    static const char *const preds[] = {"epsilon", "v_prediction", "sample"};
    static const char *const spacings[] = {"leading", "trailing", "linspace"};
    static const char *const interps[] = {"linear", "log_linear"};
    static const char *const finals[] = {"zero", "sigma_min"};
    static const char *const solvers[] = {"midpoint", "heun"};
    static const char *const algos[] = {"dpmsolver++"};
    static const char *const ttypes[] = {"discrete"};
    int algo = 0, ttype = 0;
    if (cfg_int(doc, obj, "num_train_timesteps", 2, 100000, &c->num_train_timesteps, err, errlen) ||
        cfg_num(doc, obj, "beta_start", &c->beta_start, err, errlen) ||
        cfg_num(doc, obj, "beta_end", &c->beta_end, err, errlen) ||
        cfg_enum(doc, obj, "beta_schedule", betas, 3, &c->beta_schedule, err, errlen) ||
        cfg_enum(doc, obj, "prediction_type", preds, 3, &c->prediction_type, err, errlen) ||
        cfg_enum(doc, obj, "timestep_spacing", spacings, 3, &c->timestep_spacing, err, errlen) ||
        cfg_int(doc, obj, "steps_offset", 0, 1000, &c->steps_offset, err, errlen) ||
        cfg_bool(doc, obj, "rescale_betas_zero_snr", &c->rescale_betas_zero_snr, err, errlen) ||
        cfg_bool(doc, obj, "set_alpha_to_one", &c->set_alpha_to_one, err, errlen) ||
        cfg_bool(doc, obj, "clip_sample", &c->clip_sample, err, errlen) ||
        cfg_enum(doc, obj, "interpolation_type", interps, 2, &c->interpolation_type, err, errlen) ||
        cfg_num(doc, obj, "sigma_min", &c->sigma_min, err, errlen) ||
        cfg_num(doc, obj, "sigma_max", &c->sigma_max, err, errlen) ||
        cfg_bool(doc, obj, "use_karras_sigmas", &c->use_karras_sigmas, err, errlen) ||
        cfg_enum(doc, obj, "final_sigmas_type", finals, 2, &c->final_sigmas_type, err, errlen) ||
        cfg_int(doc, obj, "solver_order", 1, 2, &c->solver_order, err, errlen) ||
        cfg_enum(doc, obj, "solver_type", solvers, 2, &c->solver_type, err, errlen) ||
        cfg_bool(doc, obj, "lower_order_final", &c->lower_order_final, err, errlen) ||
        cfg_bool(doc, obj, "euler_at_final", &c->euler_at_final, err, errlen) ||
        cfg_enum(doc, obj, "algorithm_type", algos, 1, &algo, err, errlen) ||
        cfg_enum(doc, obj, "timestep_type", ttypes, 1, &ttype, err, errlen))
        return -1;
    // lambda_min_clipped: a number, or absent / null (-inf). JSON has no -Infinity.
    if (cfg_num(doc, obj, "lambda_min_clipped", &c->lambda_min_clipped, err, errlen)) return -1;
    static const char *const off[] = {"thresholding",    "use_exponential_sigmas",
                                      "use_beta_sigmas", "use_lu_lambdas",
                                      "use_flow_sigmas", "use_dynamic_shifting"};
    for (size_t i = 0; i < sizeof off / sizeof *off; i++)
        if (cfg_unsupported_true(doc, obj, off[i], err, errlen)) return -1;
    const JsonValue *tb = cfg_value(obj, "trained_betas");
    if (tb)
        return json_errat(doc, tb->pos, err, errlen, "\"trained_betas\": only null is supported");
    const JsonValue *vt = cfg_value(obj, "variance_type");
    if (vt)
        return json_errat(doc, vt->pos, err, errlen, "\"variance_type\": only null is supported");
    return 0;
}

int sched_config_from_weights(SchedConfig *c, const Weights *w, char *err, size_t errlen) {
    const JsonDoc *doc = weights_config_doc(w, "scheduler");
    if (!doc) {
        sched_config_family(c, weights_family(w));
        return 0;
    }
    sched_config_unset(c);
    return sched_config_from_json(c, doc, json_root(doc), err, errlen);
}
