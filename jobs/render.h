// jobs/render.h: state shared by the render job's files (jobs/render.c: the run;
// jobs/render_out.c: frames, comic pages, index.html and the manifest on disk).
#pragma once
#include <stdint.h>

#include "jobs/render_config.h"
#include "models/pipeline.h"
#include "runner/comm.h"
#include "runner/manifest.h"

typedef struct {
    RenderConfig cfg;
    Comm *comm;
    int restart;   // --restart: start over, ignoring outputs of another config
    int force_cpu;
    // filled as the job goes
    int *done;     // (n_frames) 1 when frames/frame_N.png is complete (this config)
    int halves;    // 2 with guidance, else 1
    Manifest man;  // rank 0 only
    char **prompts;  // (n_frames) full prompts (style applied)
    char *negative;
    PipelineSampler sampler;
} Render;

// "frames/frame_007.png" (relative to the output folder) into buf.
const char *render_frame_rel(const Render *r, int f, char *buf, size_t n);
// Writes frame f's image (1, 3, H, W) host f32 as a PNG with its text chunks. Returns 0,
// or -1 with a message.
int render_write_frame(const Render *r, int f, const Tensor *image, char *err, size_t errlen);
// Rank 0: records frames whose flag is set in newly_done into the manifest and writes it.
int render_record_frames(Render *r, const int *newly_done, char *err, size_t errlen);
// Rank 0: comic pages, index.html, the manifest's final entries. Returns 0, or -1.
int render_finish_outputs(Render *r, char *err, size_t errlen);
// Rank 0: reads the manifest of the output folder; fills r->done for this config. Returns 0,
// or -1 with a message (another config's outputs without --restart, a corrupt manifest).
int render_resume_state(Render *r, char *err, size_t errlen);
