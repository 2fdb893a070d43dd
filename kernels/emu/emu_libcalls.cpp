// kernels/emu/emu_libcalls.cpp: the CUDA back end's library-call side as the emulation
// sees it. The ops that run on cuBLAS (kernels/cuda/lib_gemm.cu) are not emulated: their
// hand-written parts (im2col, bias add) are tested through the emulation, the cuBLAS calls
// on a real GPU (cuda_gpu_parity). Reaching one here is a test bug, said loudly.
#include <stdio.h>
#include <stdlib.h>

#include "kernels/ops.h"

[[noreturn]] static void emu_not_emulated(const char *op) {
    fprintf(stderr,
            "storyrun emulation: cuda_%s calls cuBLAS, which is not emulated; its device path "
            "is checked on a real GPU (ctest cuda_gpu_parity)\n",
            op);
    abort();
}

extern "C" {
void cuda_linear(Tensor *, const Tensor *, const Tensor *, const Tensor *) {
    emu_not_emulated("linear");
}
void cuda_matmul(Tensor *, const Tensor *, const Tensor *, int, float) {
    emu_not_emulated("matmul");
}
void cuda_conv2d(Tensor *, const Tensor *, const Tensor *, const Tensor *, int, int, Arena *) {
    emu_not_emulated("conv2d");
}
// The emulated device is always there.
int cuda_available(void) { return 1; }
}
