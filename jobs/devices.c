// jobs/devices.c: `storyrun devices` lists CUDA devices or says why it runs on the CPU.
#include <omp.h>
#include <stdio.h>

#include "jobs/jobs.h"
#include "kernels/cuda_runtime_api.h"

int job_devices(int argc, char **argv) {
    (void)argc;
    (void)argv;
    const char *why = NULL;
    int n = story_cuda_device_count(&why);
    if (n <= 0) {
        printf("no CUDA device: %s\n", why ? why : "unknown reason");
        printf("storyrun runs on the CPU: fp32 reference kernels, %d OpenMP threads\n",
               omp_get_max_threads());
        return 0;
    }
    for (int i = 0; i < n; i++) {
        StoryDeviceInfo info;
        if (story_cuda_device_info(i, &info) != 0) continue;
        printf("cuda:%d  %s  compute %d.%d  %d SMs  %.1f GiB\n", i, info.name, info.cc_major,
               info.cc_minor, info.sm_count, info.total_mem / (1024.0 * 1024.0 * 1024.0));
    }
    return 0;
}
