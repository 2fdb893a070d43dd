// kernels/ops.c: op_<name> dispatches to cpu_<name> or cuda_<name> by device.
#include "ops.h"

#include "../runner/check.h"

#ifdef STORY_HAVE_CUDA
#define STORY_CUDA_CALL(name, args) cuda_##name args
#else
#define STORY_CUDA_CALL(name, args) \
    STORY_FATAL("op_%s: tensor on a CUDA device, but this build has no CUDA", #name)
#endif

#define STORY_DEFINE_DISPATCH_(name, params, args, sel)              \
    void op_##name params {                                        \
        if ((sel)->dev == DEV_CPU)                                 \
            cpu_##name args;                                       \
        else                                                       \
            STORY_CUDA_CALL(name, args);                           \
    }
STORY_OPS(STORY_DEFINE_DISPATCH_)
