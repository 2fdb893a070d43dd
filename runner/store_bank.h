// runner/store_bank.h: the character bank store (DESIGN.md 5; schema in docs/stores.md).
// One character per HDF5 file, so a story's config can point each character at its own:
//
//   /                       attributes: format (1), storyrun (version), character (name),
//                           model, width, height, steps, sampler, guidance, halves, seed,
//                           n_images, csa_mode, csa_blocks, sa32, sa64, sa_other,
//                           warmup_steps, n_layers
//   /layer_LLL/tokens       f32 [active steps, halves, n_images * k, C]: the sampled
//                           post-LayerNorm tokens of every id image, image j at [j*k, (j+1)*k)
//   /layer_LLL/indices      int32 [active steps, n_images, k]: which of the L tokens they are
//                           attributes: first_step, grid_h, grid_w, channels, k
// for every CSA layer LLL (attn1 index in forward order); steps [first_step, steps).
//
// A bank is tied to what made its tokens: the model, the image size, the number of steps and
// the sampler (which timesteps), guidance on or off (halves), and the CSA layers and rates.
// Loading one under other settings is refused with a message naming the setting, the
// bank's value and the story's. The seed is recorded but may differ (that is the point of
// reusing a character).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "models/csa.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *model;    // as the config names it
    int width, height;    // pixels
    int steps;
    const char *sampler;  // pipeline_sampler_name
    float guidance;
    uint64_t seed;
} BankMeta;

// Writes b (made under plan p) to path atomically (temporary file + rename). Returns 0, or
// -1 with a message.
int store_bank_save(const char *path, const CsaBank *b, const CsaPlan *p, const BankMeta *m,
                    char *err, size_t errlen);
// Loads the bank in path for a story with plan p and meta m into *out (on dev, in dt;
// halves must match). name: the character the story expects (a bank of another name is
// accepted with a note in *renamed = 1; may be NULL). Returns 0, or -1 with a message.
int store_bank_load(const char *path, const CsaPlan *p, const BankMeta *m, int halves, DType dt,
                    Device dev, CsaBank *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
