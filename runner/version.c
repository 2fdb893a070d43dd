// runner/version.c: what this binary is and what was compiled in.
#include "runner/version.h"

#include <cblas.h>
#include <string.h>
#include <hdf5.h>
#include <mpi.h>
#include <omp.h>
#include <png.h>
#include <yaml.h>

#include "kernels/cuda_runtime_api.h"

const char *story_version(void) { return STORY_VERSION; }
const char *story_git_commit(void) { return STORY_GIT_COMMIT; }

void story_print_version(FILE *f) {
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(mpi, &len);
    char *nl = strchr(mpi, ',');
    if (nl) *nl = 0;
    unsigned hmaj, hmin, hrel;
    H5get_libversion(&hmaj, &hmin, &hrel);
    const char *why = NULL;
#ifdef STORY_HAVE_CUDA
    const int cuda = 1;
#else
    const int cuda = 0;
#endif
#ifdef STORY_HAVE_NCCL
    const int nccl = 1;
#else
    const int nccl = 0;
#endif
    (void)why;
    fprintf(f, "storyrun %s (commit %s)\n", STORY_VERSION, STORY_GIT_COMMIT);
    fprintf(f, "features:\n");
    fprintf(f, "  ✓ MPI            %s\n", mpi);
    fprintf(f, "  ✓ parallel HDF5  %u.%u.%u\n", hmaj, hmin, hrel);
    fprintf(f, "  ✓ libyaml        %s\n", yaml_get_version_string());
    fprintf(f, "  ✓ OpenBLAS       %s\n", openblas_get_config());
    fprintf(f, "  ✓ libpng         %s\n", png_get_libpng_ver(NULL));
    fprintf(f, "  ✓ OpenMP         %d threads\n", omp_get_max_threads());
    fprintf(f, "  %s CUDA           %s\n", cuda ? "✓" : "✗", cuda ? "compiled in (see `storyrun devices`)" : "not compiled in");
    fprintf(f, "  %s cuBLAS\n", cuda ? "✓" : "✗");
    fprintf(f, "  %s NCCL\n", nccl ? "✓" : "✗");
}
