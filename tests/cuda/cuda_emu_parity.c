// tests/cuda/cuda_emu_parity.c: every hand-written CUDA kernel, run through the emulation
// runtime (kernels/emu: blocks on CPU threads, threads as fibers), against the CPU
// reference in f32, f16 and bf16. Device memory is host memory here; the cuBLAS ops
// (linear, matmul, conv2d's GEMM) are not emulated and are covered by cuda_gpu_parity.
#define PARITY_OP(name) cuda_##name
#include "parity_cases.h"

int main(void) {
    const DType dts[3] = {DT_F32, DT_F16, DT_BF16};
    for (int i = 0; i < 3; i++) {
        printf("== %s\n", dtype_name(dts[i]));
        pc_run_all(dts[i], 1000 + (uint64_t)i);
    }
    printf("%d of %d checks passed\n", pu_checks - pu_failures, pu_checks);
    return pu_failures ? 1 : 0;
}
