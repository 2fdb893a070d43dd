// models/scheduler.c: the schedules (betas, alphas_cumprod, timesteps, sigmas) of the
// four samplers, computed the way diffusers' torch/numpy code computes them: f32 where
// torch works on f32 tensors, double where numpy works on float64 arrays, numpy's
// round-half-to-even, np.arange's fill rule and torch.linspace's FMA form. No operation
// below may be contracted into an FMA unless it says fmaf.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/scheduler.h"
#include "runner/check.h"

// ---- class defaults ---------------------------------------------------------------------

#define SET_DEFAULT(field, v) \
    if ((field) < 0) (field) = (v)
#define SET_DEFAULT_D(field, v) \
    if (isnan(field)) (field) = (v)

static void resolve_config(SchedConfig *c, SchedKind kind) {
    // keys every class shares, with every class's defaults
    SET_DEFAULT(c->num_train_timesteps, 1000);
    SET_DEFAULT_D(c->beta_start, 0.0001);
    SET_DEFAULT_D(c->beta_end, 0.02);
    SET_DEFAULT(c->beta_schedule, SCHED_BETA_LINEAR);
    SET_DEFAULT(c->prediction_type, SCHED_PRED_EPSILON);
    SET_DEFAULT(c->timestep_spacing,
                kind == SCHED_DDIM ? SCHED_SPACING_LEADING : SCHED_SPACING_LINSPACE);
    SET_DEFAULT(c->steps_offset, 0);
    SET_DEFAULT(c->rescale_betas_zero_snr, 0);
    SET_DEFAULT(c->set_alpha_to_one, 1);
    c->clip_sample = 0;  // StableDiffusionPipeline sets it to False
    SET_DEFAULT(c->interpolation_type, SCHED_INTERP_LINEAR);
    SET_DEFAULT(c->use_karras_sigmas, 0);
    SET_DEFAULT(c->final_sigmas_type, SCHED_FINAL_ZERO);
    SET_DEFAULT(c->solver_order, 2);
    SET_DEFAULT(c->solver_type, SCHED_SOLVER_MIDPOINT);
    SET_DEFAULT(c->lower_order_final, 1);
    SET_DEFAULT(c->euler_at_final, 0);
    SET_DEFAULT_D(c->lambda_min_clipped, -INFINITY);
    // keys a class does not have are ignored by from_config: neutralise them
    if (kind != SCHED_EULER) {
        c->interpolation_type = SCHED_INTERP_LINEAR;
        c->sigma_min = c->sigma_max = NAN;
    }
    if (kind != SCHED_EULER && kind != SCHED_DPMPP_2M) {
        c->use_karras_sigmas = 0;
        c->final_sigmas_type = SCHED_FINAL_ZERO;
    }
}

// ---- numpy / torch building blocks ------------------------------------------------------

// torch.linspace(start, end, n, dtype=float32) on the CPU: a float step and one FMA per
// value, counting from whichever end is nearer.
static void torch_linspace_f32(float *out, double start_d, double end_d, int n) {
    float start = (float)start_d, end = (float)end_d;
    if (n == 1) {
        out[0] = start;
        return;
    }
    float step = (end - start) / (float)(n - 1);
    int half = n / 2;
    for (int i = 0; i < n; i++)
        out[i] = i < half ? fmaf(step, (float)i, start) : fmaf(-step, (float)(n - 1 - i), end);
}

// np.linspace(start, stop, n) (float64): i * step + start, the last value exactly stop.
static double np_linspace_at(double start, double stop, int n, int i) {
    if (n == 1) return start;
    if (i == n - 1) return stop;
    double step = (stop - start) / (double)(n - 1);
    return (double)i * step + start;
}

// np.arange(start, stop, step) for floats: ceil((stop - start) / step) values
// start + i * delta, delta = (start + step) - start. Returns the count; out may be NULL.
static int np_arange(double start, double stop, double step, double *out, int cap) {
    double len = ceil((stop - start) / step);
    int n = len > 0 ? (int)len : 0;
    double delta = (start + step) - start;
    for (int i = 0; i < n && out && i < cap; i++)
        out[i] = i == 0 ? start : start + (double)i * delta;
    return n;
}

// np.interp(x, arange(len(fp)), fp) for x in [0, len - 1].
static double np_interp_index(double x, const float *fp, int len) {
    if (x <= 0) return fp[0];
    if (x >= len - 1) return fp[len - 1];
    int j = (int)floor(x);
    if ((double)j == x) return fp[j];
    double slope = (double)fp[j + 1] - (double)fp[j];  // / (xp[j + 1] - xp[j]) = 1
    return slope * (x - (double)j) + (double)fp[j];
}

// diffusers' _sigma_to_t: the fractional training index whose log-sigma interpolates
// log(sigma) (log_sigmas ascending, f32 as np.log of the f32 sigmas).
static double sigma_to_t(double sigma, const float *log_sigmas, int len) {
    double ls = log(sigma > 1e-10 ? sigma : 1e-10);
    int low = 0;
    for (int j = 0; j < len; j++)
        if (ls - (double)log_sigmas[j] >= 0) low = j;
    if (low > len - 2) low = len - 2;
    double lo = log_sigmas[low], hi = log_sigmas[low + 1];
    double w = (lo - ls) / (lo - hi);
    w = w < 0 ? 0 : w > 1 ? 1 : w;
    return (1 - w) * low + w * (low + 1);
}

// _convert_to_karras: n sigmas from sigma_max down to sigma_min, rho = 7.
static void karras_sigmas(double *out, int n, double sigma_min, double sigma_max) {
    const double rho = 7.0;
    double min_inv = pow(sigma_min, 1.0 / rho), max_inv = pow(sigma_max, 1.0 / rho);
    for (int i = 0; i < n; i++) {
        double ramp = np_linspace_at(0.0, 1.0, n, i);
        out[i] = pow(max_inv + ramp * (min_inv - max_inv), rho);
    }
}

// ---- the training schedule ----------------------------------------------------------------

static void compute_betas(float *betas, const SchedConfig *c) {
    int n = c->num_train_timesteps;
    switch (c->beta_schedule) {
    case SCHED_BETA_LINEAR: torch_linspace_f32(betas, c->beta_start, c->beta_end, n); break;
    case SCHED_BETA_SCALED_LINEAR:
        torch_linspace_f32(betas, sqrt(c->beta_start), sqrt(c->beta_end), n);
        for (int i = 0; i < n; i++) betas[i] = betas[i] * betas[i];
        break;
    default: {  // squaredcos_cap_v2: betas_for_alpha_bar, Python floats
        const double pi = 3.14159265358979323846;
        for (int i = 0; i < n; i++) {
            double t1 = (double)i / n, t2 = (double)(i + 1) / n;
            double a1 = cos((t1 + 0.008) / 1.008 * pi / 2), a2 = cos((t2 + 0.008) / 1.008 * pi / 2);
            double b = 1 - (a2 * a2) / (a1 * a1);
            betas[i] = (float)(b < 0.999 ? b : 0.999);
        }
    }
    }
}

// torch.cumprod on f32: the running product is kept in double, each value rounded.
static void cumprod_f32(float *out, const float *x, int n) {
    double acc = 1.0;
    for (int i = 0; i < n; i++) {
        acc *= (double)x[i];
        out[i] = (float)acc;
    }
}

// rescale_zero_terminal_snr (f32 tensor arithmetic), in place on betas.
static void rescale_zero_snr(float *betas, int n) {
    float *a = mallocCheck((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) a[i] = 1.0f - betas[i];
    cumprod_f32(a, a, n);
    for (int i = 0; i < n; i++) a[i] = sqrtf(a[i]);
    float a0 = a[0], aT = a[n - 1];
    float scale = a0 / (a0 - aT);
    for (int i = 0; i < n; i++) {
        a[i] = (a[i] - aT) * scale;
        a[i] = a[i] * a[i];  // alphas_bar
    }
    betas[0] = 1.0f - a[0];
    for (int i = 1; i < n; i++) betas[i] = 1.0f - a[i] / a[i - 1];
    free(a);
}

// ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5, f32.
static float train_sigma(float ac) { return sqrtf((1.0f - ac) / ac); }

// ---- timesteps ---------------------------------------------------------------------------

// The spacing's timesteps (before any Karras conversion), as doubles holding diffusers'
// values; returns how many (numpy's arange can make one more than asked).
static int spaced_timesteps(const Scheduler *s, int n, double *ts, int cap) {
    const SchedConfig *c = &s->cfg;
    int N = c->num_train_timesteps;
    int cnt = 0;
    if (s->kind == SCHED_DPMPP_2M) {
        // lambda_min_clipped: last_timestep = N - searchsorted(flip(lambda_t), clip)
        int clipped = 0;
        if (c->lambda_min_clipped > -INFINITY) {
            for (int j = N - 1; j >= 0; j--) {  // flip(lambda_t) ascends
                float ac = s->alphas_cumprod[j];
                float lam = logf(sqrtf(ac)) - logf(sqrtf(1.0f - ac));
                if ((double)lam < c->lambda_min_clipped)
                    clipped++;
                else
                    break;
            }
        }
        int last = N - clipped;
        if (c->timestep_spacing == SCHED_SPACING_LINSPACE) {
            for (int i = n; i >= 1 && cnt < cap; i--)
                ts[cnt++] = nearbyint(np_linspace_at(0, last - 1, n + 1, i));
        } else if (c->timestep_spacing == SCHED_SPACING_LEADING) {
            int ratio = last / (n + 1);
            for (int i = n; i >= 1 && cnt < cap; i--)
                ts[cnt++] = (double)i * ratio + c->steps_offset;
        } else {
            cnt = np_arange(last, 0, -((double)N / n), ts, cap);
            for (int i = 0; i < cnt && i < cap; i++) ts[i] = nearbyint(ts[i]) - 1;
        }
        return cnt;
    }
    if (c->timestep_spacing == SCHED_SPACING_LINSPACE) {
        for (int i = n - 1; i >= 0 && cnt < cap; i--) {
            double v = np_linspace_at(0, N - 1, n, i);
            // ddim rounds to integers; the Euler classes keep float32 values
            ts[cnt++] = s->kind == SCHED_DDIM ? nearbyint(v) : (double)(float)v;
        }
    } else if (c->timestep_spacing == SCHED_SPACING_LEADING) {
        int ratio = N / n;
        for (int i = n - 1; i >= 0 && cnt < cap; i--)
            ts[cnt++] = (double)i * ratio + c->steps_offset;
    } else {
        cnt = np_arange(N, 0, -((double)N / n), ts, cap);
        for (int i = 0; i < cnt && i < cap; i++) ts[i] = nearbyint(ts[i]) - 1;
    }
    return cnt;
}

static int set_timesteps(Scheduler *s, int n, char *err, size_t errlen) {
    const SchedConfig *c = &s->cfg;
    int N = c->num_train_timesteps;
    int cap = n + 2;
    double *ts = mallocCheck((size_t)cap * sizeof(double));
    int cnt = spaced_timesteps(s, n, ts, cap);
    if (cnt < 1 || cnt > cap) {
        free(ts);
        static const char *const spacing[] = {"leading", "trailing", "linspace"};
        snprintf(err, errlen, "%s: %d steps give %d timesteps with timestep_spacing \"%s\"",
                 sched_kind_name(s->kind), n, cnt, spacing[c->timestep_spacing]);
        return -1;
    }
    // ddim indexes alphas_cumprod[t] (diffusers fails past the end); the sigma samplers
    // interpolate, which clamps (t = N from leading spacing with N steps is usable there)
    int tmax = s->kind == SCHED_DDIM ? N - 1 : N;
    for (int i = 0; i < cnt; i++)
        if (ts[i] < 0 || ts[i] > tmax) {
            snprintf(err, errlen,
                     "%s: %d steps give timestep %g, outside the training range [0, %d] "
                     "(steps_offset %d)",
                     sched_kind_name(s->kind), n, ts[i], tmax, c->steps_offset);
            free(ts);
            return -1;
        }
    s->num_steps = cnt;
    s->timesteps = mallocCheck((size_t)cnt * sizeof(float));
    if (s->kind == SCHED_DDIM) {
        for (int i = 0; i < cnt; i++) s->timesteps[i] = (float)ts[i];
        s->init_noise_sigma = 1.0f;
        free(ts);
        return 0;
    }

    float *tsig = mallocCheck((size_t)N * sizeof(float));  // training sigmas, t ascending
    float *logs = mallocCheck((size_t)N * sizeof(float));
    for (int j = 0; j < N; j++) {
        tsig[j] = train_sigma(s->alphas_cumprod[j]);
        logs[j] = (float)log((double)tsig[j]);
    }
    int ns = cnt + 1;
    if (s->kind == SCHED_EULER && c->interpolation_type == SCHED_INTERP_LOG_LINEAR) ns = cnt + 2;
    s->num_sigmas = ns;
    s->sigmas = mallocCheck((size_t)ns * sizeof(float));
    double *sig = mallocCheck((size_t)ns * sizeof(double));
    for (int i = 0; i < cnt; i++) sig[i] = np_interp_index(ts[i], tsig, N);

    if (s->kind == SCHED_EULER && c->interpolation_type == SCHED_INTERP_LOG_LINEAR) {
        // torch.linspace(log(sigma_max), log(sigma_min), n + 1).exp(): n + 1 values
        float *l = mallocCheck((size_t)(cnt + 1) * sizeof(float));
        torch_linspace_f32(l, (float)log((double)tsig[N - 1]), (float)log((double)tsig[0]),
                           cnt + 1);
        for (int i = 0; i <= cnt; i++) sig[i] = expf(l[i]);
        free(l);
    } else if (c->use_karras_sigmas) {
        double smin, smax;
        if (s->kind == SCHED_EULER) {  // from the spaced sigmas, unless the config bounds them
            smin = isnan(c->sigma_min) ? sig[cnt - 1] : c->sigma_min;
            smax = isnan(c->sigma_max) ? sig[0] : c->sigma_max;
        } else {  // DPM++: the whole training range
            smin = tsig[0];
            smax = tsig[N - 1];
        }
        karras_sigmas(sig, cnt, smin, smax);
        for (int i = 0; i < cnt; i++) {
            double t = sigma_to_t(sig[i], logs, N);
            ts[i] = s->kind == SCHED_DPMPP_2M && c->beta_schedule != SCHED_BETA_SQUAREDCOS
                        ? nearbyint(t)
                        : t;
        }
    }
    int nfinal = ns - 1;
    double last = c->final_sigmas_type == SCHED_FINAL_SIGMA_MIN
                      ? (double)train_sigma(s->alphas_cumprod[0])
                      : 0.0;
    for (int i = 0; i < nfinal; i++) s->sigmas[i] = (float)sig[i];
    s->sigmas[nfinal] = (float)last;
    for (int i = 0; i < cnt; i++)  // DPM++ keeps int64 timesteps: .to(torch.int64) truncates
        s->timesteps[i] = (float)(s->kind == SCHED_DPMPP_2M ? trunc(ts[i]) : ts[i]);
    if (s->kind == SCHED_DPMPP_2M) {
        s->init_noise_sigma = 1.0f;
    } else {
        float mx = 0;
        for (int i = 0; i < ns; i++) mx = s->sigmas[i] > mx ? s->sigmas[i] : mx;
        s->init_noise_sigma =
            c->timestep_spacing == SCHED_SPACING_LEADING ? sqrtf(mx * mx + 1.0f) : mx;
    }
    free(sig);
    free(logs);
    free(tsig);
    free(ts);
    return 0;
}

int sched_init(Scheduler *s, SchedKind kind, const SchedConfig *cfg, int num_inference_steps,
               char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    if ((int)kind < 0 || kind >= SCHED_KIND_COUNT) {
        snprintf(err, errlen, "unknown scheduler kind %d", (int)kind);
        return -1;
    }
    s->kind = kind;
    if (cfg)
        s->cfg = *cfg;
    else
        sched_config_unset(&s->cfg);
    SchedConfig *c = &s->cfg;
    resolve_config(c, kind);
    const char *name = sched_kind_name(kind);
    if (num_inference_steps < 1 || num_inference_steps > c->num_train_timesteps) {
        snprintf(err, errlen, "%s: %d steps: expected 1 to num_train_timesteps (%d)", name,
                 num_inference_steps, c->num_train_timesteps);
        return -1;
    }
    if (!(c->beta_start > 0) || !(c->beta_end > 0) || !(c->beta_end < 1)) {
        snprintf(err, errlen, "%s: beta_start %g / beta_end %g: expected numbers in (0, 1)", name,
                 c->beta_start, c->beta_end);
        return -1;
    }
    if (kind == SCHED_EULER_A && c->prediction_type == SCHED_PRED_SAMPLE) {
        snprintf(err, errlen,
                 "euler_a: prediction_type \"sample\" is not supported (nor by diffusers)");
        return -1;
    }
    int N = c->num_train_timesteps;
    s->num_train = N;
    float *betas = mallocCheck((size_t)N * sizeof(float));
    compute_betas(betas, c);
    if (c->rescale_betas_zero_snr) rescale_zero_snr(betas, N);
    s->alphas_cumprod = mallocCheck((size_t)N * sizeof(float));
    for (int i = 0; i < N; i++) betas[i] = 1.0f - betas[i];  // alphas
    cumprod_f32(s->alphas_cumprod, betas, N);
    free(betas);
    // the Euler and DPM classes keep the last alpha just above 0 so that sigma is finite
    if (c->rescale_betas_zero_snr && kind != SCHED_DDIM) s->alphas_cumprod[N - 1] = 0x1p-24f;
    s->final_alpha_cumprod = c->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    if (set_timesteps(s, num_inference_steps, err, errlen) < 0) {
        sched_free(s);
        return -1;
    }
    return 0;
}

void sched_free(Scheduler *s) {
    free(s->timesteps);
    free(s->sigmas);
    free(s->alphas_cumprod);
    s->timesteps = s->sigmas = s->alphas_cumprod = NULL;
    s->num_steps = s->num_sigmas = 0;
    s->have_state = 0;
}
