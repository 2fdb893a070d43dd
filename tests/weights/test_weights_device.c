// tests/weights/test_weights_device.c: weights_load into a device arena gives the bytes a
// host load gives, for every tensor of both layouts of the tiny SDXL model (plain, sliced
// q/k/v, transposed projection, reshaped VAE attention; f32, f16 and bf16). Linked with
// the CUDA emulation runtime (story_emu), whose device memory is host memory behind the
// same story_cuda_* calls, so the device path runs on any machine.
//
//   test_weights_device MODELS_DIR
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "models/weights.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODELS_DIR\n", argv[0]);
        return 2;
    }
    Arena host, dev;
    if (arena_init(&host, DEV_CPU, 16u << 20) || arena_init(&dev, DEV_CUDA, 16u << 20)) return 1;
    int failures = 0, loads = 0;
    const char *names[] = {"tiny_sdxl", "tiny_sdxl.safetensors"};
    for (int m = 0; m < 2; m++) {
        char path[4096], err[2048];
        snprintf(path, sizeof path, "%s/%s", argv[1], names[m]);
        Weights *w;
        if (weights_open(&w, path, err, sizeof err)) {
            printf("FAIL: %s\n", err);
            return 1;
        }
        for (int c = 0; c < weights_component_count(w); c++) {
            const char *comp = weights_component(w, c);
            for (int i = 0; i < weights_tensor_count(w, comp); i++) {
                WeightInfo info;
                weights_tensor_info(w, comp, i, &info);
                for (int d = 0; d < 3; d++) {
                    DType dt = (DType)d;
                    Tensor h, g;
                    int rc = weights_load(w, comp, info.name, info.ndim, info.shape, &host, dt, &h,
                                          err, sizeof err);
                    rc |= weights_load(w, comp, info.name, info.ndim, info.shape, &dev, dt, &g, err,
                                       sizeof err);
                    size_t n = tensor_nbytes(&h);
                    char *back = malloc(n ? n : 1);
                    if (!rc) story_cuda_memcpy(back, g.data, n, 1);
                    if (rc || g.dev != DEV_CUDA || memcmp(back, h.data, n)) {
                        printf("FAIL %s: %s/%s as %s: %s\n", path, comp, info.name, dtype_name(dt),
                               rc ? err : "device bytes differ");
                        failures++;
                    }
                    free(back);
                    loads++;
                    arena_release(&host, 0);
                    arena_release(&dev, 0);
                }
            }
        }
        weights_close(w);
    }
    arena_free(&host);
    arena_free(&dev);
    if (failures) {
        printf("weights_device: %d of %d loads FAILED\n", failures, loads);
        return 1;
    }
    printf("weights_device: all %d checks passed (device loads equal host loads)\n", loads);
    return 0;
}
