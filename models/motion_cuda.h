// models/motion_cuda.h: the motion predictor's training path on a CUDA device, the twin of
// the CPU model (motion_predictor.h) with the same call sequence:
//     smp_cuda_zero_grad(d); smp_cuda_forward_clips(d, clips, B, T); smp_cuda_backward(d);
//     comm_all_reduce_f32(comm, d->grads, d->host->num_params);   // device buffer: NCCL
//     smp_cuda_scale_grads(d, 1.0f / ranks);
//     norm = smp_cuda_clip_grad_norm(d, clip); smp_cuda_adamw_step(d, &opt, lr);
//
// Precision (what torch.autocast(device_type="cuda", dtype=torch.bfloat16) does, written
// out): the master weights, their gradients and AdamW's moments are f32 on the device in
// the CPU model's flat layout. Every matmul (the linear layers, forward and both backward
// products) multiplies bf16 operands with f32 accumulation on cuBLAS; its output stays
// f32 (autocast would round it to bf16: keeping it is slightly more accurate and costs
// nothing here). The weights' bf16 copy is refreshed by the AdamW kernel; activations are
// cast to bf16 where a matmul reads them. LayerNorm, GELU, attention (scores, softmax and
// the weighted sum over the few frames of a clip), the residual stream, the loss and the
// optimizer are f32. bf16 has f32's exponent range, so no loss scaling is needed (f16
// would need a scaler; it is not offered).
//
// The host model d->host owns the config, the tensor layout and the host buffers
// (checkpoints, P for validation): smp_cuda_upload / smp_cuda_download move weights and
// optimizer state between the two. Without a CUDA build or device, smp_cuda_init fails
// with a message.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "motion_predictor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    SmpModel *host;                 // not owned
    float *params, *grads, *m, *v;  // device, host->num_params each
    uint16_t *wbf;                  // device bf16 copy of params (the matmuls' weights)
    // activations (device), the CPU model's names and shapes for (max_batch, L)
    float *acts, *K, *x0, *lnf, *lnf_mean, *lnf_rstd, *out;
    SmpBlockActs *blk;
    // bf16 copies of the matmul inputs: K, per block ln1 / atty / ln2 / fcg, lnf
    uint16_t *hacts, *hK, *hlnf, **hln1, **hatty, **hln2, **hfcg;
    // backward scratch (device), as the CPU model's, and a bf16 copy of the gradient a
    // matmul backward reads: (N, max(C, 3C, F, D))
    float *scratch, *d_res, *d_ln, *d_atty, *d_qkv, *d_att, *d_fcg, *d_fc, *d_out;
    uint16_t *hgrad;
    float *clips;          // (max_batch, L, D) device copy of the batch
    double *rows, *parts;  // device: loss per row (N), grad-norm partial sums
    double *host_rows;     // host mirror of rows / parts
    size_t nparts;
    int B, T;
    float loss;
} SmpCuda;

// Builds the device copy of host (weights uploaded). Returns 0, or -1 with a message
// (no CUDA in this build, no device, out of device memory).
int smp_cuda_init(SmpCuda *d, SmpModel *host, char *err, size_t errlen);
void smp_cuda_free(SmpCuda *d);
// host->params (and opt's moments when opt is not NULL) -> device.
void smp_cuda_upload(SmpCuda *d, const SmpAdamW *opt);
// device params and grads -> host->params / host->grads (and moments -> opt when not NULL).
void smp_cuda_download(SmpCuda *d, SmpAdamW *opt);

// Forward over B clips (host (B, T, D), the target); returns the loss. P is copied to
// host->out (B, T, D) and the loss to host->loss.
float smp_cuda_forward_clips(SmpCuda *d, const float *clips, int B, int T);
void smp_cuda_zero_grad(SmpCuda *d);
// Adds d loss / d params of the last forward to d->grads.
void smp_cuda_backward(SmpCuda *d);
void smp_cuda_scale_grads(SmpCuda *d, float s);
// smp_clip_grad_norm on the device grads (partial sums in double per 16384 floats).
double smp_cuda_clip_grad_norm(SmpCuda *d, double max_norm);
// smp_adamw_step on the device: opt gives the hyperparameters and counts the step; its
// host moments are only touched by smp_cuda_upload / smp_cuda_download.
void smp_cuda_adamw_step(SmpCuda *d, SmpAdamW *opt, double lr);

#ifdef __cplusplus
}
#endif
