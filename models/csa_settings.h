// models/csa_settings.h: the knobs of Consistent Self-Attention (DESIGN.md 2.1), with the
// reference defaults. Plain data: the render config fills it (jobs/render_config.c),
// models/csa.c reads it, the character bank store records it.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CSA_MODE_OFF = 0,     // plain self-attention everywhere (a baseline for comparisons)
    CSA_MODE_BANK = 1,    // id passes build character banks; other frames read them
    CSA_MODE_WINDOW = 2,  // symmetric sliding window over the whole story
} CsaMode;

// Which UNet block kinds get CSA (bits of UnetBlockKind: 1 << UNET_DOWN, ...).
#define CSA_BLOCKS_DOWN 1u
#define CSA_BLOCKS_MID 2u
#define CSA_BLOCKS_UP 4u

typedef struct {
    CsaMode mode;     // default CSA_MODE_BANK
    unsigned blocks;  // default CSA_BLOCKS_UP (the decoder only)
    // Sampling rate (fraction of an image's tokens it contributes) by token grid: the grid
    // of image/32 (sa32), of image/16 (sa64), any other grid (sa_other). Names as the
    // reference code has them (at 1024 px: 32x32 and 64x64 tokens). Defaults 0.5 each.
    float sa32, sa64, sa_other;
    int warmup_steps;  // steps [0, warmup_steps) use plain self-attention; default 1
    // Probability that a (step, layer) uses CSA: gate_early for steps < gate_switch,
    // gate_late from there on; 1.0 = always (gating off). Defaults 0.7, 0.9, 20.
    float gate_early, gate_late;
    int gate_switch;
    int window;         // window mode: W frames per window; default 4 (clamped to the story)
    float window_rate;  // window mode: sampling rate of the window's pool; default 0.5
} CsaSettings;

static inline CsaSettings csa_settings_default(void) {
    CsaSettings s = {CSA_MODE_BANK, CSA_BLOCKS_UP, 0.5f, 0.5f, 0.5f, 1, 0.7f, 0.9f, 20, 4, 0.5f};
    return s;
}

#ifdef __cplusplus
}
#endif
