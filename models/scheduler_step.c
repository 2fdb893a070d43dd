// models/scheduler_step.c: one denoising step of each sampler, classifier-free guidance.
//
// Every step of these samplers is linear in its tensor inputs, so each is written as
//   out = a * sample + b * model_output (+ c * noise) (+ d * previous x0)
// with the scalars derived below (in double, from the f32 schedule) and applied with
// op_scale / op_add: the same code serves host and device tensors. The derivations keep
// diffusers' formulas; comments give the algebra.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "kernels/ops.h"
#include "models/scheduler.h"
#include "runner/check.h"

#define MAX_TERMS 4

// out = sum_k c[k] * t[k]. Safe when out aliases any input: the sum is built in scratch
// and only the last add writes out. ws provides two tensors shaped like out.
static void lincomb(Tensor *out, int n, const double *c, const Tensor *const *t, Arena *ws) {
    // drop zero terms (e.g. sigma_up = 0 at the last ancestral step)
    double cc[MAX_TERMS];
    const Tensor *tt[MAX_TERMS];
    int m = 0;
    for (int k = 0; k < n; k++)
        if (c[k] != 0.0) {
            cc[m] = c[k];
            tt[m++] = t[k];
        }
    if (m == 0) {
        op_scale(out, t[0], 0.0f, 0.0f);
        return;
    }
    if (m == 1) {
        op_scale(out, tt[0], (float)cc[0], 0.0f);
        return;
    }
    size_t mark = arena_mark(ws);
    Tensor acc = arena_tensor(ws, out->dtype, out->ndim, out->shape);
    Tensor tmp = arena_tensor(ws, out->dtype, out->ndim, out->shape);
    op_scale(&acc, tt[0], (float)cc[0], 0.0f);
    for (int k = 1; k < m; k++) {
        op_scale(&tmp, tt[k], (float)cc[k], 0.0f);
        op_add(k == m - 1 ? out : &acc, &acc, &tmp);
    }
    arena_release(ws, mark);
}

static void check_like(const char *what, const Tensor *t, const Tensor *sample) {
    STORY_CHECK(t && tensor_numel(t) == tensor_numel(sample) && t->dev == sample->dev &&
                    t->dtype == sample->dtype,
                "sched_step: %s must match the sample in size, device and dtype", what);
}

size_t sched_state_bytes(const Scheduler *s, const Tensor *like) {
    return s->kind == SCHED_DPMPP_2M ? tensor_nbytes(like) + 256 : 0;
}

void sched_state_alloc(Scheduler *s, Arena *a, const Tensor *like) {
    if (s->kind != SCHED_DPMPP_2M) return;
    s->prev_x0 = arena_tensor(a, like->dtype, like->ndim, like->shape);
    s->have_state = 1;
    s->lower_order_nums = 0;
    s->next_step = 0;
}

int sched_needs_noise(const Scheduler *s) {
    return s->kind == SCHED_EULER_A || (s->kind == SCHED_DDIM && s->eta > 0);
}

void sched_scale_noise(const Scheduler *s, Tensor *out, const Tensor *noise) {
    op_scale(out, noise, s->init_noise_sigma, 0.0f);
}

void sched_scale_model_input(const Scheduler *s, int i, Tensor *out, const Tensor *sample) {
    STORY_CHECK(i >= 0 && i < s->num_steps, "step %d of %d", i, s->num_steps);
    if (s->kind == SCHED_EULER || s->kind == SCHED_EULER_A) {
        float sg = s->sigmas[i];
        float c = sqrtf(sg * sg + 1.0f);  // (sigma**2 + 1) ** 0.5, f32
        op_scale(out, sample, (float)(1.0 / (double)c), 0.0f);
    } else if (out->data != sample->data) {
        op_scale(out, sample, 1.0f, 0.0f);
    }
}

// x0 = p * sample + q * model_output for a VP model at (alpha_t, sigma_t) = (a, s).
static void x0_coefs(int pred, double a, double s, double *p, double *q) {
    if (pred == SCHED_PRED_EPSILON) {  // x0 = (x - s eps) / a
        *p = 1.0 / a;
        *q = -s / a;
    } else if (pred == SCHED_PRED_V) {  // x0 = a x - s v
        *p = a;
        *q = -s;
    } else {  // the model predicts x0
        *p = 0;
        *q = 1;
    }
}

// DDIMScheduler.step with eta: x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev - std^2) eps
// + std * noise, x0 and eps from the prediction at alpha_prod a_t.
static void ddim_coefs(const Scheduler *s, int i, double *cx, double *cm, double *cn) {
    int n = s->num_steps, N = s->num_train;
    int t = (int)s->timesteps[i];
    int prev = t - N / n;  // diffusers steps back by N // n whatever the spacing
    double at = s->alphas_cumprod[t];
    double ap = prev >= 0 ? s->alphas_cumprod[prev] : s->final_alpha_cumprod;
    double bt = 1 - at;
    double var = (1 - ap) / bt * (1 - at / ap);
    double std = s->eta * sqrt(var);
    double dir = sqrt(1 - ap - std * std);
    // x0 = px x + pm m ; eps = ex x + em m
    double px, pm, ex, em;
    x0_coefs(s->cfg.prediction_type, sqrt(at), sqrt(bt), &px, &pm);
    if (s->cfg.prediction_type == SCHED_PRED_EPSILON) {
        ex = 0;
        em = 1;
    } else if (s->cfg.prediction_type == SCHED_PRED_V) {  // eps = sqrt(at) v + sqrt(bt) x
        ex = sqrt(bt);
        em = sqrt(at);
    } else {  // eps = (x - sqrt(at) x0) / sqrt(bt)
        ex = 1 / sqrt(bt);
        em = -sqrt(at) / sqrt(bt);
    }
    *cx = sqrt(ap) * px + dir * ex;
    *cm = sqrt(ap) * pm + dir * em;
    *cn = std;
}

// Euler (ancestral) in sigma space: x0 from the prediction at sigma (VE scaling), then
// x_next = x + (x - x0) / sigma * dt (+ sigma_up * noise).
static void euler_coefs(const Scheduler *s, int i, double *cx, double *cm, double *cn) {
    double sg = s->sigmas[i], sn = s->sigmas[i + 1];
    double dt = sn - sg, up = 0;
    if (s->kind == SCHED_EULER_A) {
        up = sqrt(sn * sn * (sg * sg - sn * sn) / (sg * sg));
        double down = sqrt(sn * sn - up * up);
        dt = down - sg;
    }
    double px, pm;  // x0 = px x + pm m
    if (s->cfg.prediction_type == SCHED_PRED_EPSILON) {
        px = 1;
        pm = -sg;
    } else if (s->cfg.prediction_type == SCHED_PRED_V) {  // m * (-sg / sqrt(sg^2+1)) + x / (sg^2+1)
        px = 1 / (sg * sg + 1);
        pm = -sg / sqrt(sg * sg + 1);
    } else {
        px = 0;
        pm = 1;
    }
    *cx = 1 + (1 - px) / sg * dt;
    *cm = -pm / sg * dt;
    *cn = up;
}

// DPMSolverMultistepScheduler (dpmsolver++). With alpha(s) = 1 / sqrt(s^2 + 1) and the VP
// sigma s * alpha(s): lambda = -log(s), so exp(-h) = s_t / s_s0 in raw sigmas.
static void dpm_step(Scheduler *s, int i, const Tensor *m, const Tensor *x, Tensor *out,
                     Arena *ws) {
    STORY_CHECK(s->have_state, "dpmpp_2m: call sched_state_alloc before the first step");
    if (i == 0) s->lower_order_nums = s->next_step = 0;  // a new loop
    STORY_CHECK(i == s->next_step, "dpmpp_2m: steps run in order (expected %d, got %d)",
                s->next_step, i);
    const SchedConfig *c = &s->cfg;
    int n = s->num_steps;
    int lower_final = i == n - 1 && (c->euler_at_final || (c->lower_order_final && n < 15) ||
                                     c->final_sigmas_type == SCHED_FINAL_ZERO);
    int order = (c->solver_order == 1 || s->lower_order_nums < 1 || lower_final) ? 1 : 2;

    double sg0 = s->sigmas[i], sgt = s->sigmas[i + 1];
    double a0 = 1 / sqrt(sg0 * sg0 + 1), at = 1 / sqrt(sgt * sgt + 1);
    double vs0 = sg0 * a0, vst = sgt * at;  // VP sigmas
    double p, q;                            // x0 = p x + q m
    x0_coefs(c->prediction_type, a0, vs0, &p, &q);
    double emh = sgt / sg0;  // exp(-h)
    double A = vst / vs0, B = -at * (emh - 1);
    double b0 = B, ch = 0;  // out = A x + b0 x0 + ch prev_x0
    if (order == 2) {
        double sg1 = s->sigmas[i - 1];
        double h = log(sg0 / sgt), h0 = log(sg1 / sg0);
        double r0 = h0 / h;
        // D1 = (x0 - prev_x0) / r0 enters with weight w1
        double w1 = c->solver_type == SCHED_SOLVER_MIDPOINT ? 0.5 * B : at * ((emh - 1) / h + 1);
        b0 = B + w1 / r0;
        ch = -w1 / r0;
    }
    // Two scratch tensors; out may alias x or m, which are read before out is written, and
    // prev_x0 serves as scratch once read.
    size_t mark = arena_mark(ws);
    Tensor x0 = arena_tensor(ws, x->dtype, x->ndim, x->shape);
    Tensor acc = arena_tensor(ws, x->dtype, x->ndim, x->shape);
    op_scale(&x0, x, (float)p, 0.0f);  // x0 = p x + q m
    op_scale(&acc, m, (float)q, 0.0f);
    op_add(&x0, &x0, &acc);
    op_scale(&acc, x, (float)A, 0.0f);  // acc = A x (+ ch prev_x0)
    if (order == 2) {
        op_scale(&s->prev_x0, &s->prev_x0, (float)ch, 0.0f);
        op_add(&acc, &acc, &s->prev_x0);
    }
    op_scale(&s->prev_x0, &x0, (float)b0, 0.0f);
    op_add(out, &acc, &s->prev_x0);
    op_scale(&s->prev_x0, &x0, 1.0f, 0.0f);  // the history for the next step
    arena_release(ws, mark);
    if (s->lower_order_nums < c->solver_order) s->lower_order_nums++;
    s->next_step = i + 1;
}

void sched_step(Scheduler *s, int i, const Tensor *model_output, const Tensor *sample,
                const Tensor *noise, Tensor *out, Arena *ws) {
    STORY_CHECK(i >= 0 && i < s->num_steps, "step %d of %d", i, s->num_steps);
    check_like("model_output", model_output, sample);
    check_like("out", out, sample);
    if (s->kind == SCHED_DPMPP_2M) {
        dpm_step(s, i, model_output, sample, out, ws);
        return;
    }
    double cx, cm, cn;
    if (s->kind == SCHED_DDIM)
        ddim_coefs(s, i, &cx, &cm, &cn);
    else
        euler_coefs(s, i, &cx, &cm, &cn);
    const Tensor *in[3] = {sample, model_output, noise};
    double c[3] = {cx, cm, cn};
    int nt = 2;
    if (sched_needs_noise(s)) {
        check_like("noise", noise, sample);
        nt = 3;
    }
    lincomb(out, nt, c, in, ws);
}

// ---- classifier-free guidance ----------------------------------------------------------

// Unbiased std of n values (torch.std, correction 1), in double.
static double std_unbiased(const float *x, int64_t n) {
    double mean = 0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
    return sqrt(ss / (double)(n > 1 ? n - 1 : 1));
}

// t's values as host f32 (a copy; free it).
static float *host_f32(const Tensor *t) {
    int64_t n = tensor_numel(t);
    float *f = mallocCheck((size_t)n * sizeof(float));
    void *src = t->data;
    void *tmp = NULL;
    if (t->dev != DEV_CPU) {
        tmp = mallocCheck(tensor_nbytes(t));
        story_cuda_memcpy(tmp, t->data, tensor_nbytes(t), 1);
        src = tmp;
    }
    if (t->dtype == DT_F32) {
        memcpy(f, src, (size_t)n * sizeof(float));
    } else {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++)
            f[i] = t->dtype == DT_F16 ? f16_to_f32(h[i]) : bf16_to_f32(h[i]);
    }
    free(tmp);
    return f;
}

void sched_cfg(Tensor *out, const Tensor *uncond, const Tensor *cond, float guidance_scale,
               float guidance_rescale) {
    int64_t B = out->shape[0], n = tensor_numel(out);
    STORY_CHECK(B > 0 && n % B == 0, "sched_cfg: bad batch");
    float *text = NULL;
    if (guidance_rescale > 0) text = host_f32(cond);  // before out may overwrite cond
    op_lerp(out, uncond, cond, guidance_scale);
    if (!text) return;
    float *cfg = host_f32(out);
    int64_t per = n / B;
    size_t esz = dtype_size(out->dtype);
    for (int64_t b = 0; b < B; b++) {
        double ratio = std_unbiased(text + b * per, per) / std_unbiased(cfg + b * per, per);
        double f = guidance_rescale * ratio + (1.0 - guidance_rescale);
        Tensor view = tensor_view((char *)out->data + (size_t)(b * per) * esz, out->dtype, out->dev,
                                  1, (const int64_t[]){per});
        op_scale(&view, &view, (float)f, 0.0f);
    }
    free(cfg);
    free(text);
}
