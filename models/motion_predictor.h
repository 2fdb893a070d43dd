// models/motion_predictor.h: the Semantic Motion Predictor (DESIGN.md 2.3). A pre-norm
// transformer encoder that maps the linear interpolation between a start and an end CLIP
// image embedding to a predicted path through the embedding space; training (forward,
// backward, AdamW, clipping, the lr schedule) and checkpoints. CPU f32 (OpenMP, OpenBLAS).
// This is the CPU model; models/motion_cuda.h is its device twin (f32 master weights, bf16
// cuBLAS matmuls, the CUDA kernels of kernels/cuda/motion_kernels.h and motion_train.h),
// which `storyrun train` uses with train.device: cuda.
//
// Shapes. B batch, T frames of this batch (2 <= T <= L = cfg.frames), D = cfg.embed_dim
// (the CLIP space, e.g. 1024 for OpenCLIP ViT-H/14), C = cfg.width, H = cfg.heads,
// hd = C / H, F = cfg.mlp_ratio * C, N = B * T rows.
//   start, end      (B, D)
//   K               (B, T, D)   K[b, t] = start[b] + t / (T - 1) * (end[b] - start[b])
//   x               (B, T, C)   K @ in_proj.weight^T + in_proj.bias + pos_emb[t]
//   per block:      x += attn.proj(MHSA(ln1(x)));  x += mlp.proj(gelu(mlp.fc(ln2(x))))
//                   (self-attention over the T frames, not causal, scale 1 / sqrt(hd);
//                   GELU is the exact erf form, torch's nn.GELU())
//   P               (B, T, D)   ln_f(x) @ out_proj.weight^T + out_proj.bias
//   loss            sum_{b,t,d} w_t (P - target)^2 / (B * D * sum_t w_t), with w_t = 1 for
//                   the inner frames and cfg.endpoint_weight for t = 0 and t = T - 1.
// The default endpoint weight is 0: the end frames are the given embeddings themselves
// (K_1 = start, K_L = end), so the loss measures only the frames that must be predicted;
// users of P take the given embeddings at both ends.
//
// Parameters (names are the PyTorch twin's state_dict keys, tests/motion/make_golden.py):
//   in_proj.weight (C, D), in_proj.bias (C), pos_emb (L, C),
//   blocks.i.ln1.{weight,bias} (C), blocks.i.attn.qkv.weight (3C, C), .bias (3C),
//   blocks.i.attn.proj.weight (C, C), .bias (C), blocks.i.ln2.{weight,bias} (C),
//   blocks.i.mlp.fc.weight (F, C), .bias (F), blocks.i.mlp.proj.weight (C, F), .bias (C),
//   ln_f.{weight,bias} (C), out_proj.weight (D, C), out_proj.bias (D).
// All of them live in one float buffer (params) in that order, and their gradients in a
// second buffer with the same layout (grads), so a data-parallel job all-reduces the
// gradients with one call:
//     smp_zero_grad(m); smp_forward(m, ...); smp_backward(m);
//     comm_all_reduce_f32(comm, m->grads, m->num_params); smp_scale_grads(m, 1.0f / ranks);
//     norm = smp_clip_grad_norm(m, clip); smp_adamw_step(&opt, m, smp_lr_at(&sched, step));
// The blocks are laid out in order, and backward finishes them last to first; the
// grad-ready hook reports each finished range of grads, so an all-reduce can start on
// a range while backward goes on (ranges arrive from the end of the buffer to its start).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int layers;             // transformer blocks (8)
    int width;              // C (1024)
    int heads;              // H (16); must divide width
    int mlp_ratio;          // F = mlp_ratio * C (4)
    int embed_dim;          // D, input and output (the CLIP space)
    int frames;             // L, the most frames a clip may have (pos_emb rows)
    float ln_eps;           // LayerNorm epsilon (1e-5, torch's default)
    float endpoint_weight;  // loss weight of the first and last frame (0)
    int token_inputs;       // reserved for token-sequence conditioning; must be 0 for now
} SmpConfig;

// The defaults above for embedding dimension D and L frames.
void smp_config_default(SmpConfig *c, int embed_dim, int frames);
// Returns 0, or -1 with a message naming the bad field and what was expected.
int smp_config_check(const SmpConfig *c, char *err, size_t errlen);
// Whether a batch of T frames can be used (2 <= T <= L; T >= 3 when the end frames have
// weight 0, or no frame would count). Returns 0, or -1 with a message.
int smp_frames_check(const SmpConfig *c, int T, char *err, size_t errlen);

typedef struct {
    char name[48];
    int ndim;  // 1 or 2
    int64_t shape[2];
    size_t offset, numel;  // in floats, into params / grads
    int decay;             // AdamW weight decay applies (the 2-D tensors: matrices, pos_emb)
} SmpTensorInfo;

// Pointers into one of the flat buffers (params or grads).
typedef struct {
    float *ln1_w, *ln1_b;    // (C)
    float *qkv_w, *qkv_b;    // (3C, C), (3C): rows [q; k; v], head h at rows h*hd..
    float *proj_w, *proj_b;  // (C, C), (C)
    float *ln2_w, *ln2_b;    // (C)
    float *fc_w, *fc_b;      // (F, C), (F)
    float *mlp_w, *mlp_b;    // (C, F), (C)  (mlp.proj)
} SmpBlockTensors;

typedef struct {
    float *in_w, *in_b;  // (C, D), (C)
    float *pos;          // (L, C)
    SmpBlockTensors *blocks;
    float *lnf_w, *lnf_b;  // (C)
    float *out_w, *out_b;  // (D, C), (D)
} SmpTensors;

// Activations of one block, kept for backward (all inside SmpModel.acts).
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd;  // (N, C), (N), (N)
    float *qkv;                        // (N, 3C)
    float *att;                        // (B, H, T, T) softmax probabilities
    float *atty;                       // (N, C) attention output before attn.proj
    float *res1;                       // (N, C) x after the attention branch
    float *ln2, *ln2_mean, *ln2_rstd;  // (N, C), (N), (N)
    float *fc;                         // (N, F) before GELU
    float *fcg;                        // (N, F) after GELU
    float *res2;                       // (N, C) x after the MLP branch (the block's output)
} SmpBlockActs;

// Called by smp_backward when grads[offset, offset + count) are final (floats).
typedef void (*SmpGradReadyFn)(void *ctx, size_t offset, size_t count);

typedef struct {
    SmpConfig cfg;
    int max_batch;
    int ntensors;
    SmpTensorInfo *info;  // ntensors entries, in buffer order
    size_t num_params;
    float *params, *grads;  // num_params floats each
    SmpTensors p, g;        // views into params and grads

    // Activations of the last forward, one buffer sized for (max_batch, L).
    float *acts;
    size_t num_acts;
    float *K;                          // (N, D) interpolated input
    float *x0;                         // (N, C) input of block 0
    SmpBlockActs *blk;                 // layers entries
    float *lnf, *lnf_mean, *lnf_rstd;  // (N, C), (N), (N)
    float *out;                        // (N, D) P
    // Backward scratch (one buffer): residual gradient, branch gradients.
    float *scratch;
    float *d_res, *d_ln, *d_atty, *d_qkv, *d_att, *d_fcg, *d_fc, *d_out;

    int B, T;             // shape of the last forward
    const float *target;  // the caller's target of the last forward (NULL: none)
    float loss;           // of the last forward (-1 without a target)

    SmpGradReadyFn grad_ready;
    void *grad_ready_ctx;
} SmpModel;

// Builds the model for batches of up to max_batch clips; weights are zero (see
// smp_init_weights / smp_load_weights / smp_checkpoint_load). Returns 0, or -1 with a
// message when the config is invalid.
int smp_init(SmpModel *m, const SmpConfig *cfg, int max_batch, char *err, size_t errlen);
void smp_free(SmpModel *m);

// Random initialisation from torch's CPU generator seeded with `seed`: linear weights and
// pos_emb N(0, 0.02^2), the two residual-branch projections of each block N(0, (0.02 /
// sqrt(2 layers))^2), biases 0, LayerNorm weight 1 and bias 0. Tensors are drawn in
// buffer order, one randn per tensor.
void smp_init_weights(SmpModel *m, uint64_t seed);

const SmpTensorInfo *smp_find_tensor(const SmpModel *m, const char *name);  // NULL: none

// Forward over B clips of T frames. start/end (B, D); target (B, T, D) or NULL. Returns
// the loss, or -1 without a target. P is m->out (B, T, D) until the next forward. The
// target must stay valid until smp_backward. Shapes beyond what smp_init allowed are a
// programmer error (fatal); check T with smp_frames_check first.
float smp_forward(SmpModel *m, const float *start, const float *end, const float *target, int B,
                  int T);
// The same with start/end taken from the clips' first and last frame: clips (B, T, D)
// are the target.
float smp_forward_clips(SmpModel *m, const float *clips, int B, int T);

void smp_zero_grad(SmpModel *m);
// Adds d loss / d params of the last forward (which needed a target) to m->grads.
void smp_backward(SmpModel *m);
void smp_set_grad_ready_hook(SmpModel *m, SmpGradReadyFn fn, void *ctx);
void smp_scale_grads(SmpModel *m, float s);

// ---- optimisation (motion_optim.c) ------------------------------------------------------

// The global L2 norm of all grads, then grads *= min(1, max_norm / (norm + 1e-6)) as
// torch.nn.utils.clip_grad_norm_ does (max_norm <= 0: no clipping). Returns the norm
// before clipping.
double smp_clip_grad_norm(SmpModel *m, double max_norm);

typedef struct {
    double beta1, beta2, eps, weight_decay;  // torch.optim.AdamW: 0.9, 0.999, 1e-8, 0.01
} SmpAdamWConfig;

typedef struct {
    SmpAdamWConfig cfg;
    size_t n;
    float *m, *v;  // first and second moments, same layout as SmpModel.params
    long step;     // updates done
} SmpAdamW;

void smp_adamw_config_default(SmpAdamWConfig *c);
void smp_adamw_init(SmpAdamW *o, const SmpAdamWConfig *cfg, size_t num_params);
void smp_adamw_free(SmpAdamW *o);
// One update of every parameter with learning rate lr, as torch.optim.AdamW (the
// single-tensor path) with weight decay on the tensors marked decay and none on the rest.
void smp_adamw_step(SmpAdamW *o, SmpModel *m, double lr);

typedef struct {
    double lr, min_lr;   // peak and final learning rate
    long warmup, total;  // steps of linear warm-up, all steps
} SmpSchedule;

// Learning rate of 0-based step s: lr * (s + 1) / warmup during warm-up, then a cosine from
// lr down to min_lr at s = total - 1; min_lr after that.
double smp_lr_at(const SmpSchedule *s, long step);

// ---- checkpoints (motion_checkpoint.c) ---------------------------------------------------

// One .safetensors file, written atomically: every parameter under its name (F32), and,
// when given, "optimizer.exp_avg" / "optimizer.exp_avg_sq" (F32, flat, num_params) and
// "rng.mt" (U32, 624: torch generator state). __metadata__ holds "format"
// ("storyrun.smp.1"), the config (layers, width, heads, mlp_ratio, embed_dim, frames,
// ln_eps, endpoint_weight, token_inputs), "step", and when given the optimizer's
// hyperparameters and update count and the generator's bookkeeping. Floats are written
// as %.9g, so they read back bit-exactly. Returns 0, or -1 with a message.
int smp_checkpoint_save(const char *path, const SmpModel *m, const SmpAdamW *opt,
                        const TorchRng *rng, long step, char *err, size_t errlen);

// Reads a checkpoint into m (built with the same config), and into opt / rng / step when
// not NULL (they must then be in the file). Every mismatch (config key, missing or
// unexpected tensor, shape, dtype) is named in the message. Returns 0, or -1 (m and opt
// may then be partly overwritten).
int smp_checkpoint_load(const char *path, SmpModel *m, SmpAdamW *opt, TorchRng *rng, long *step,
                        char *err, size_t errlen);

// Reads the config stored in a checkpoint's metadata (to build the model before loading).
int smp_checkpoint_config(const char *path, SmpConfig *cfg, char *err, size_t errlen);

// Loads parameters only from any safetensors file holding the parameter names (extra
// tensors are ignored; F32/F16/BF16 accepted). Returns 0, or -1 naming the tensor.
int smp_load_weights(SmpModel *m, const char *path, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
