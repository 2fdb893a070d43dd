// jobs/animate_config.c: the animate job's config, and its inputs checked against it and
// each other: the rendered story (its manifest.json) and the transitions store of
// `storyrun predict` (see jobs/animate.h).
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700  // realpath
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/animate.h"
#include "runner/check.h"
#include "runner/version.h"

static const char *const k_top[] = {"model",  "motion_adapter", "ip_adapter", "ip_scale",
                                    "story",  "transitions",    "output",     "frames",
                                    "steps",  "guidance",       "sampler",    "seed",
                                    "negative", "keep_ends",    "video",      NULL};
static const char *const k_video[] = {"fps", "codec", "crf", "hold", NULL};

static void opt_string(CfgDoc *d, const CfgNode *map, const char *name, const char *key,
                       const char **out) {
    const CfgNode *n = cfg_get(map, name);
    if (n && !cfg_is_null(n)) cfg_as_string(d, n, key, out);
}

static int read_config(CfgDoc *d, AnimateConfig *c) {
    c->frames = 8, c->steps = 20, c->hold = 8, c->crf = -1, c->keep_ends = 1;
    c->fps = 8.0, c->guidance = 7.5, c->ip_scale = 0.6, c->seed = 0;
    c->sampler_name = "euler";
    if (!d->root || d->root->kind != CFG_MAP)
        return cfg_error(d, d->root,
                         "expected a mapping with keys model, story, transitions, frames, ...");
    cfg_check_keys(d, d->root, "", k_top);
    const CfgNode *r = d->root;
    if (cfg_get_string(d, r, "model", "model", &c->model) == 0)
        cfg_error(d, NULL,
                  "key 'model': missing; expected SD1.5 weights (a diffusers folder or a "
                  ".safetensors file) or builtin:tiny-animate");
    opt_string(d, r, "motion_adapter", "motion_adapter", &c->motion_adapter);
    opt_string(d, r, "ip_adapter", "ip_adapter", &c->ip_adapter);
    if (cfg_get_string(d, r, "story", "story", &c->story) == 0)
        cfg_error(d, NULL, "key 'story': missing; expected the output folder of storyrun render");
    opt_string(d, r, "transitions", "transitions", &c->transitions);
    opt_string(d, r, "output", "output", &c->output);
    opt_string(d, r, "negative", "negative", &c->negative);
    long long v;
    if (cfg_get_int(d, r, "frames", "frames", 2, 1024, &v) == 1) c->frames = (int)v;
    if (cfg_get_int(d, r, "steps", "steps", 1, 1000, &v) == 1) c->steps = (int)v;
    cfg_get_double(d, r, "guidance", "guidance", 0, 100, &c->guidance);
    cfg_get_double(d, r, "ip_scale", "ip_scale", 0, 10, &c->ip_scale);
    const CfgNode *n = cfg_get(r, "seed");
    if (n) cfg_as_u64(d, n, "seed", &c->seed);
    n = cfg_get(r, "keep_ends");
    if (n) cfg_as_bool(d, n, "keep_ends", &c->keep_ends);
    n = cfg_get(r, "sampler");
    if (n && cfg_as_string(d, n, "sampler", &c->sampler_name) == 0) {
        char e2[512];
        if (pipeline_sampler_parse(c->sampler_name, &c->sampler, e2, sizeof e2))
            cfg_error(d, n, "key 'sampler': %s", e2);
    } else if (!n) {
        pipeline_sampler_parse(c->sampler_name, &c->sampler, NULL, 0);
    }
    const CfgNode *vid = cfg_get(r, "video");
    if (cfg_as_map(d, vid, "video") == 1) {
        cfg_check_keys(d, vid, "video", k_video);
        cfg_get_double(d, vid, "fps", "video.fps", 0.1, 240, &c->fps);
        opt_string(d, vid, "codec", "video.codec", &c->codec);
        if (cfg_get_int(d, vid, "crf", "video.crf", 0, 51, &v) == 1) c->crf = (int)v;
        if (cfg_get_int(d, vid, "hold", "video.hold", 1, 10000, &v) == 1) c->hold = (int)v;
    }
    return cfg_errors(d) ? -1 : 0;
}

int animate_config_load(AnimateJob *j, const char *path, char **sets, int n_sets, char *err,
                        size_t errlen) {
    memset(j, 0, sizeof *j);
    if (cfg_load_file(&j->doc, path, err, errlen)) return -1;
    for (int i = 0; i < n_sets; i++) cfg_override(&j->doc, sets[i], NULL);
    if (cfg_errors(&j->doc) || read_config(&j->doc, &j->cfg)) return -1;
    j->cfg.path = path;
    if (!j->cfg.output) {
        snprintf(j->default_output, sizeof j->default_output, "%s/animate", j->cfg.story);
        j->cfg.output = j->default_output;
    }
    if (!j->cfg.transitions) {
        snprintf(j->default_transitions, sizeof j->default_transitions, "%s/transitions.h5",
                 j->cfg.story);
        j->cfg.transitions = j->default_transitions;
    }
    return 0;
}

void animate_job_free(AnimateJob *j) {
    if (j->store) transitions_store_close(j->store);
    for (int i = 0; j->pairs && i < j->n_pairs; i++) free(j->pairs[i].P);
    free(j->pairs);
    free(j->story_rel);
    cfg_free(&j->doc);
    memset(j, 0, sizeof *j);
}

const char *animate_pair_dir(int pair, char *buf, size_t n) {
    snprintf(buf, n, "transitions/pair_%03d", pair);
    return buf;
}

const char *animate_pair_video(int pair, char *buf, size_t n) {
    snprintf(buf, n, "transitions/pair_%03d.mp4", pair);
    return buf;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

// The story's frames from its manifest: frame k's path and prompt. Returns 0, or -1.
static int read_story(AnimateJob *j, Manifest *m, char *err, size_t errlen) {
    const char *dir = j->cfg.story;
    int rc = manifest_load(m, dir, err, errlen);
    if (rc < 0) return -1;
    if (rc == 0)
        return snprintf(err, errlen,
                        "%s: no %s: key 'story' must name the output folder of a finished "
                        "storyrun render",
                        dir, MANIFEST_NAME),
               -1;
    int n = 0;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->entries[i].kind, "frame")) n++;
    if (n < 2)
        return snprintf(err, errlen, "%s/%s: lists %d frame%s; a story needs at least 2 for a "
                        "transition",
                        dir, MANIFEST_NAME, n, n == 1 ? "" : "s"),
               -1;
    j->story_rel = calloc((size_t)n, sizeof *j->story_rel);
    if (!j->story_rel) STORY_FATAL("out of memory");
    j->n_story_frames = n;
    for (int i = 0; i < m->n; i++) {
        const ManifestEntry *e = &m->entries[i];
        if (strcmp(e->kind, "frame")) continue;
        const char *fs = manifest_entry_get(e, "frame");
        char *end = NULL;
        const long k = fs ? strtol(fs, &end, 10) : -1;
        if (!fs || *end || k < 0 || k >= n || j->story_rel[k][0])
            return snprintf(err, errlen,
                            "%s/%s: frame entry %s has frame index '%s'; expected each of 0..%d "
                            "once",
                            dir, MANIFEST_NAME, e->path, fs ? fs : "(none)", n - 1),
                   -1;
        snprintf(j->story_rel[k], sizeof j->story_rel[k], "%s", e->path);
        char e2[1024];
        if (manifest_entry_verify(m, e, e2, sizeof e2))
            return snprintf(err, errlen, "%s (the story's frames changed or were damaged after "
                            "render; render the story again)",
                            e2),
                   -1;
    }
    return 0;
}

// The settings that change the outputs, the store's bytes and the story's frames, hashed.
static int make_hash(AnimateJob *j, const Manifest *m, char *err, size_t errlen) {
    const AnimateConfig *c = &j->cfg;
    char store_sha[65];
    if (file_sha256(c->transitions, store_sha, NULL, err, errlen)) return -1;
    size_t cap = 8192 + (size_t)j->n_story_frames * 80, used = 0;
    char *t = mallocCheck(cap);
    used += (size_t)snprintf(
        t + used, cap - used,
        "animate 1|model %s|motion %s|ip %s %.9g|frames %d|steps %d|guidance %.9g|sampler "
        "%s|seed %llu|negative %s|keep_ends %d|fps %.9g|codec %s|crf %d|hold %d|store %s",
        c->model, c->motion_adapter ? c->motion_adapter : "-", c->ip_adapter ? c->ip_adapter : "-",
        c->ip_scale, c->frames, c->steps, c->guidance, pipeline_sampler_name(c->sampler),
        (unsigned long long)c->seed, c->negative ? c->negative : "-", c->keep_ends, c->fps,
        c->codec ? c->codec : "-", c->crf, c->hold, store_sha);
    for (int k = 0; k < j->n_story_frames && used < cap; k++) {
        const ManifestEntry *e = manifest_find(m, j->story_rel[k]);
        used += (size_t)snprintf(t + used, cap - used, "|%s", e ? e->sha256 : "?");
    }
    sha256_hex(t, strlen(t), j->cfg.hash);
    free(t);
    return 0;
}

int animate_inputs_open(AnimateJob *j, int embed_dim, char *err, size_t errlen) {
    AnimateConfig *c = &j->cfg;
    Manifest m;
    memset(&m, 0, sizeof m);
    int rc = -1;
    if (read_story(j, &m, err, errlen)) goto out;
    if (transitions_store_open(c->transitions, NULL, &j->store, err, errlen)) goto out;
    j->info = transitions_store_info(j->store);
    const TransitionsInfo *in = j->info;
    if (in->L != c->frames) {
        snprintf(err, errlen,
                 "%s: the store's transitions have L = %d frames but %s asks for frames: %d; set "
                 "frames: %d, or predict again with a predictor of %d frames",
                 c->transitions, in->L, c->path, c->frames, in->L, c->frames);
        goto out;
    }
    if (embed_dim > 0 && in->D != embed_dim) {
        snprintf(err, errlen,
                 "%s: the store's embeddings are %d wide but the IP-Adapter of %s takes %d-wide "
                 "image embeddings; predict with the CLIP image encoder that IP-Adapter was "
                 "trained with",
                 c->transitions, in->D, c->ip_adapter ? c->ip_adapter : c->model, embed_dim);
        goto out;
    }
    if (strcmp(in->source_kind, "story")) {
        snprintf(err, errlen,
                 "%s: made from %s '%s', not from a story; animate needs the transitions of the "
                 "story in %s (predict with story: %s)",
                 c->transitions, in->source_kind, in->source, c->story, c->story);
        goto out;
    }
    char r1[PATH_MAX], r2[PATH_MAX];
    if (!realpath(in->source, r1) || !realpath(c->story, r2) || strcmp(r1, r2)) {
        snprintf(err, errlen,
                 "%s: made from the story in '%s', not from %s; predict the transitions of this "
                 "story (storyrun predict with story: %s)",
                 c->transitions, in->source, c->story, c->story);
        goto out;
    }
    if (in->n_pairs != j->n_story_frames - 1) {
        snprintf(err, errlen,
                 "%s: holds %lld pairs but the story in %s has %d frames (%d pairs); the store "
                 "was made from another story or an older render: run predict again",
                 c->transitions, (long long)in->n_pairs, c->story, j->n_story_frames,
                 j->n_story_frames - 1);
        goto out;
    }
    j->n_pairs = (int)in->n_pairs;
    j->pairs = calloc((size_t)j->n_pairs, sizeof *j->pairs);
    if (!j->pairs) STORY_FATAL("out of memory");
    TransitionsPairMeta *meta = mallocCheck(sizeof *meta);
    for (int i = 0; i < j->n_pairs; i++) {
        AnimatePair *p = &j->pairs[i];
        p->P = mallocCheck((size_t)in->L * in->D * sizeof *p->P);
        if (transitions_store_read_pair(j->store, i, p->P, NULL, NULL, meta, err, errlen)) {
            free(meta);
            goto out;
        }
        if (meta->start_frame != i || meta->end_frame != i + 1 ||
            strcmp(base_name(meta->start_path), base_name(j->story_rel[i])) ||
            strcmp(base_name(meta->end_path), base_name(j->story_rel[i + 1]))) {
            snprintf(err, errlen,
                     "%s: pair %d is frames %lld -> %lld (%s -> %s), but the story in %s has "
                     "frames %d -> %d as %s -> %s; the store belongs to another story",
                     c->transitions, i, (long long)meta->start_frame, (long long)meta->end_frame,
                     meta->start_path, meta->end_path, c->story, i, i + 1, j->story_rel[i],
                     j->story_rel[i + 1]);
            free(meta);
            goto out;
        }
        p->a = i, p->b = i + 1;
        snprintf(p->start_rel, sizeof p->start_rel, "%s", j->story_rel[i]);
        snprintf(p->end_rel, sizeof p->end_rel, "%s", j->story_rel[i + 1]);
        snprintf(p->prompt, sizeof p->prompt, "%s", meta->prompt);
        if (!p->prompt[0]) {  // the end frame's prompt as render recorded it
            const ManifestEntry *e = manifest_find(&m, j->story_rel[i + 1]);
            const char *pr = e ? manifest_entry_get(e, "prompt") : NULL;
            snprintf(p->prompt, sizeof p->prompt, "%s", pr ? pr : "");
        }
    }
    free(meta);
    rc = make_hash(j, &m, err, errlen);
out:
    manifest_free(&m);
    return rc;
}
