// jobs/animate.h: what the animate job's files share (jobs/animate_config.c: the config,
// the story and the transitions store, checked against each other; jobs/animate.c: the
// run and its outputs).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "models/pipeline.h"
#include "runner/config.h"
#include "runner/manifest.h"
#include "runner/store_transitions.h"

typedef struct {
    const char *path;  // the config file as given
    const char *model, *motion_adapter, *ip_adapter;  // NULL: the model's own component
    const char *story, *transitions, *output, *negative, *codec;
    int frames, steps, hold, crf, keep_ends;
    double fps, guidance, ip_scale;
    uint64_t seed;
    const char *sampler_name;
    PipelineSampler sampler;
    char hash[65];  // SHA-256 of everything that changes the outputs (store bytes included)
} AnimateConfig;

// One transition to make: story frames a -> b.
typedef struct {
    int64_t a, b;
    char start_rel[256], end_rel[256];  // the frames' paths in the story's manifest
    char prompt[4096];
    float *P;  // (L, D): the store's P_1..P_L
} AnimatePair;

typedef struct {
    CfgDoc doc;  // owns the config's strings
    AnimateConfig cfg;
    TransitionsStore *store;
    const TransitionsInfo *info;
    int n_pairs;
    AnimatePair *pairs;
    int n_story_frames;
    char (*story_rel)[256];  // (n_story_frames) frame k's path in the story folder
    int width, height;       // of the story's frames
    char default_output[4096], default_transitions[4096];  // STORY/animate, STORY/transitions.h5
} AnimateJob;

// Reads CONFIG with its --set overrides. Returns 0, or -1 with every problem in err.
int animate_config_load(AnimateJob *j, const char *path, char **sets, int n_sets, char *err,
                        size_t errlen);
// Opens the story's manifest and the transitions store and checks them against the config
// and each other (L == frames, D == embed_dim when > 0, every pair (i, i+1) of the story's
// frames, the frames intact and of one size). Fills j->pairs and the config hash. Returns 0,
// or -1 with a message naming the file and the mismatch.
int animate_inputs_open(AnimateJob *j, int embed_dim, char *err, size_t errlen);
void animate_job_free(AnimateJob *j);

// "transitions/pair_003" (relative to the output folder), and "transitions/pair_003.mp4".
const char *animate_pair_dir(int pair, char *buf, size_t n);
const char *animate_pair_video(int pair, char *buf, size_t n);
