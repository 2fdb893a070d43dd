// tests/sched/emu_weights_absent.c: test_sched_emu runs the scheduler loops on emulated
// device memory (story_emu: kernels + op dispatch). scheduler_config.c also reads configs
// through weights.h, which this build leaves out (it would bring the whole runtime):
// the config mode is not run here, so reaching one of these is a test bug.
#include <stdlib.h>

#include "models/weights.h"

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
