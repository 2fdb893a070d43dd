// models/motion_internal.h: what the motion predictor's source files share and users do
// not need. Private to models/motion_*.c.
#pragma once
#include "motion_predictor.h"

// Loops over fewer elements than this run on one thread: a parallel region costs more than
// the work (and much more when the cores are shared with other processes).
#define SMP_PAR_MIN 32768

// d loss / d P of the last forward: dout (N, D) = 2 w_t (P - target) / (B D sum_t w_t).
void smp_loss_backward(SmpModel *m, float *dout);
