// tests/sched/emu_stubs.c: what test_sched_emu needs besides the scheduler and the
// emulated kernels. The loop mode it runs uses three ops, dispatched here like
// kernels/ops.c does (ops.c itself also names the cuBLAS ops, which are not emulated);
// the weights.h functions belong to the config mode, which this build does not run.
#include <stdlib.h>

#include "kernels/ops.h"
#include "models/weights.h"

void op_scale(Tensor *out, const Tensor *x, float alpha, float beta) {
    if (out->dev == DEV_CPU)
        cpu_scale(out, x, alpha, beta);
    else
        cuda_scale(out, x, alpha, beta);
}

void op_add(Tensor *out, const Tensor *a, const Tensor *b) {
    if (out->dev == DEV_CPU)
        cpu_add(out, a, b);
    else
        cuda_add(out, a, b);
}

void op_lerp(Tensor *out, const Tensor *a, const Tensor *b, float t) {
    if (out->dev == DEV_CPU)
        cpu_lerp(out, a, b, t);
    else
        cuda_lerp(out, a, b, t);
}

int cuda_available(void) { return 1; }  // the emulation is always there

const JsonDoc *weights_config_doc(const Weights *w, const char *component) {
    (void)w;
    (void)component;
    abort();
}

ModelFamily weights_family(const Weights *w) {
    (void)w;
    abort();
}

int weights_open(Weights **w, const char *path, char *err, size_t errlen) {
    (void)w, (void)path, (void)err, (void)errlen;
    abort();
}

void weights_close(Weights *w) {
    (void)w;
    abort();
}
