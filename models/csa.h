// models/csa.h: Consistent Self-Attention (DESIGN.md 2.1) behind the UNet's self-attention
// seam (models/unet.h, UnetSelfAttnFn). Each layer's own to_q/to_k/to_v/to_out weights are
// used; only the keys/values change: an image attends to its own tokens plus tokens of
// other images of the story, read as separate KV segments (never a concatenated copy).
//
// Where CSA applies (CsaPlan): the attn1 layers of the block kinds in settings.blocks
// (default: up blocks), at steps >= warmup_steps. A layer at a token grid of image/32
// samples sa32 of an image's tokens, at image/16 sa64, elsewhere sa_other:
// K = round(rate * L) tokens (a fixed count, so buffers and banks have known sizes).
//
// Random choices come from Philox-4x32 streams addressed by what they are for
// (partition/partition.h csa_key), never by rank:
//   gate     one uniform per (call, step, layer): CSA when u < p(step) (p = gate_early below
//            gate_switch, gate_late after; 1.0: always). A call is an id pass (kind
//            CHARACTER, its character) or one frame (kind FRAME, the frame) or one frame's
//            window step (kind FRAME too: the frame owns the call).
//   sample   an image's K tokens at a grid: the K smallest Philox words of the stream
//            (kind, index, step, layer field = grid height, SAMPLE), word j for token j
//            (offset by image position for window pools); ties by index; sorted
//            ascending. Shared by every layer of that grid in the step and by both
//            classifier-free-guidance halves (the reference's one mask per step).
//
// Rows of x_normed: `halves` groups of n images ([uncond images; cond images] with
// guidance, as the pipeline stacks them); each half reads only its own half of other
// images' tokens (banks store both halves).
//
// bank mode
//   id pass of character c (CsaIdPass): the pass's id images are spread over ranks in
//   contiguous slices (partition/); at every CSA layer and step >= warmup each rank
//   samples its images' tokens and all-gathers them (comm_all_gather_v: MPI for host
//   buffers, NCCL for device ones); the gathered samples, per (step, layer), ARE the
//   character's bank (every rank ends with the whole bank). Image i attends to its own
//   tokens + the bank minus its own sample (two segments around it) when the pass's
//   gate says CSA, else to its own tokens.
//   frame (CsaFrame): own tokens + the banks of the characters it names, at the same
//   (step, layer), when the frame's gate says CSA; [NC] frames never get here.
//
// window mode (CsaWindow; the paper's Algorithm 1, made rank- and length-independent):
//   window t covers frames [t, t + W). Frame f at step s, CSA layer l: for each window t
//   containing f, K/V = f's own tokens + the sampled tokens (rate window_rate, stream
//   kind WINDOW index t, offset = position in the window * L) of every other frame of the
//   window; f's output is the mean over those windows (t ascending). Other frames'
//   tokens are those of step s - 1 (the displaced-activation idea of DistriFusion:
//   neighbouring steps' activations are close), which makes every (frame, step) an
//   independent UNet call: device memory holds one frame's activations and its window
//   partners' tokens (set by W, never by the story's length); the previous step's
//   tokens of the frames a rank owns or needs (its halo) live in host memory and only
//   the tokens of frames whose windows cross rank borders move between ranks, once per
//   step.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/tensor.h"
#include "models/csa_settings.h"
#include "models/unet.h"
#include "partition/partition.h"
#include "runner/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- plan: which layers, how many tokens ------------------------------------------------

typedef struct {
    CsaSettings set;
    uint64_t seed;
    int steps;          // denoising steps of the story
    int n_layers;       // attn1 sites of a forward pass
    UnetAttnSite *sites;  // (n_layers) for the story's latent size
    int *csa;             // (n_layers) 1: CSA applies to this layer
    int *k;               // (n_layers) sampled tokens per image (0 when csa is 0 or rate 0)
    int *channels;        // (n_layers) C
    int n_csa;            // layers with csa == 1
    int image_h, image_w;  // pixels
} CsaPlan;

// Builds the plan for images of image_w x image_h pixels (latent latent_w x latent_h).
// Returns 0, or -1 with a message.
int csa_plan_init(CsaPlan *p, const Unet *m, const CsaSettings *set, uint64_t seed, int steps,
                  int image_w, int image_h, int latent_w, int latent_h, char *err, size_t errlen);
void csa_plan_free(CsaPlan *p);
// Whether CSA may run at (step, layer): a CSA layer past the warm-up.
int csa_active(const CsaPlan *p, int step, int layer);
// The sampling rate of a layer (by its grid), before K = round(rate * L).
float csa_rate(const CsaPlan *p, int layer);

// Scratch bytes a CSA hook takes beyond plain self-attention in one UNet call, when it
// reads the tokens of up to n_images other images per layer (PipelineBatch.extra_scratch).
size_t csa_scratch_bytes(const CsaPlan *p, int halves, int n_images, DType dt);

// ---- random choices --------------------------------------------------------------------

// 1 when the (step, layer) of call (kind, index) uses CSA (the gate draw), else 0.
int csa_gate(const CsaPlan *p, CsaKind kind, int64_t index, int step, int layer);
// The K of L tokens an image contributes (see the top), ascending, into idx (K entries).
void csa_sample(const CsaPlan *p, CsaKind kind, int64_t index, int step, int grid_h,
                int64_t offset, int L, int K, int32_t *idx);

// ---- character banks ----------------------------------------------------------------------

typedef struct {
    int n_images, k;  // k tokens per image; 0: nothing stored at this (step, layer)
    Tensor tokens;    // (halves, n_images * k, C): image j's tokens at [j*k, (j+1)*k)
    int32_t *index;   // (n_images, k) host: which of the L tokens each image gave
} CsaBankLayer;

typedef struct {
    char name[128];  // the character
    int steps, n_layers, halves, n_images;
    DType dtype;
    Device dev;
    CsaBankLayer *e;  // (steps * n_layers), entry [step * n_layers + layer]
    Arena mem;        // every entry's tokens, on dev
    int32_t *index_mem;
} CsaBank;

// Room for a bank of n_images id images under plan p (halves: 2 with guidance, else 1).
int csa_bank_init(CsaBank *b, const CsaPlan *p, const char *name, int n_images, int halves,
                  DType dt, Device dev, char *err, size_t errlen);
void csa_bank_free(CsaBank *b);
const CsaBankLayer *csa_bank_layer(const CsaBank *b, int step, int layer);
size_t csa_bank_bytes(const CsaPlan *p, int n_images, int halves, DType dt);

// ---- bank mode: the id pass ------------------------------------------------------------

typedef struct {
    const CsaPlan *plan;
    Comm *comm;      // the ranks of the job; every rank calls the pass (see csa_id_pass_idle)
    int character;   // c: the gate stream and the bank's owner
    CsaBank *bank;   // filled during the pass (initialised for the pass's n_images)
    int n_local;     // this rank's id images in the pass
    int first;       // position of its first image in the pass
    const int *frames;  // (n_local) story frame index of each local image (sample streams)
    int halves;
    double comm_seconds;  // time spent in the all-gathers (reported by the job)
} CsaIdPass;

// UnetSelfAttnFn for the UNet call over this rank's id images (rows halves * n_local).
void csa_id_pass_attn(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x_normed,
                      const UnetAttention *attn, Arena *scratch);
// Every image's sample indices of the pass (pass_frames: the pass's n_images story frames),
// on every rank: the pass itself records only the local ones; a stored bank keeps all.
void csa_id_pass_fill_indices(CsaIdPass *ip, const int *pass_frames);
// For a rank with no image in the pass: takes part in the pass's collectives (one per CSA
// layer and active step, in order) and receives the bank.
void csa_id_pass_idle(CsaIdPass *ctx);

// ---- bank mode: other frames -------------------------------------------------------------

typedef struct {
    const CsaPlan *plan;
    int frame;                   // gate stream
    const CsaBank *const *banks;  // banks of the characters the frame names
    int n_banks;
} CsaFrame;

// UnetSelfAttnFn for one frame's UNet call (rows = halves).
void csa_frame_attn(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x_normed,
                    const UnetAttention *attn, Arena *scratch);

// ---- window mode -----------------------------------------------------------------------------

// The previous step's tokens of the frames a rank needs, and this step's being recorded.
typedef struct {
    const CsaPlan *plan;
    const PartWindowPlan *wp;
    Comm *comm;
    int halves;
    DType dtype;
    Device dev;
    int lo, hi;     // frames this rank keeps: [need_lo, need_hi) of its window plan
    size_t frame_elems;  // elements of one frame's tokens over all CSA layers (all halves)
    size_t *layer_off;   // (n_layers) offset of a layer's (halves, L, C) block in a frame
    float *prev, *cur;   // host, (hi - lo) * frame_elems each, in the model's dtype
    int have_prev;       // prev holds step s - 1
    // the call in progress
    int frame, step;
    Tensor stage;       // device staging for partner tokens (frames of a window, one layer)
    Arena mem;
    double comm_seconds;
} CsaWindow;

int csa_window_init(CsaWindow *w, const CsaPlan *p, const PartWindowPlan *wp, Comm *comm, int rank,
                    int halves, DType dt, Device dev, char *err, size_t errlen);
void csa_window_free(CsaWindow *w);
// Host bytes the window store takes on this rank.
size_t csa_window_host_bytes(const CsaWindow *w);
// Before frame f's UNet call at step s (f in this rank's own range).
void csa_window_begin(CsaWindow *w, int frame, int step);
// UnetSelfAttnFn (ctx = CsaWindow *).
void csa_window_attn(void *ctx, const UnetAttnSite *site, Tensor *out, const Tensor *x_normed,
                     const UnetAttention *attn, Arena *scratch);
// After every owned frame has run step s: exchanges the shared frames' tokens (all ranks
// call it) and makes step s's tokens the "previous" ones.
void csa_window_end_step(CsaWindow *w);

#ifdef __cplusplus
}
#endif
