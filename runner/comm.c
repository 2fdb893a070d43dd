// runner/comm.c: MPI start-up, rank -> node-local rank -> CUDA device, and the host
// collectives. Device buffers are handed to runner/comm_nccl.c in builds with NCCL.
#include "runner/comm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_runtime_api.h"
#include "runner/check.h"
#include "runner/comm_nccl.h"

// MPI counts are int: stay well below INT_MAX so byte offsets never overflow either.
#define COMM_DEFAULT_MAX_MESSAGE ((size_t)1 << 30)

void comm_mpi_check_(int rc, const char *what, const char *file, int line) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", rc);
    fprintf(stderr, "storyrun: MPI error at %s:%d: %s: %s\n", file, line, what, msg);
    MPI_Abort(MPI_COMM_WORLD, 1);
    abort();  // not reached
}

Comm *comm_init(int *argc, char ***argv) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (finalized) STORY_FATAL("comm_init called after MPI was finalized");
    Comm *c = calloc(1, sizeof *c);
    if (!c) STORY_FATAL("out of memory");
    if (!initialized) {
        // Without mpirun this makes a singleton (rank 0 of 1), so `storyrun render x.yaml`
        // and `mpirun -np 4 storyrun render x.yaml` run the same code.
        int provided = MPI_THREAD_SINGLE;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            fprintf(stderr,
                    "storyrun: MPI could not start (MPI_Init_thread returned %d). As root, "
                    "Open MPI needs OMPI_ALLOW_RUN_AS_ROOT=1 and "
                    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 (see docs/install.md).\n",
                    rc);
            exit(1);
        }
        if (provided < MPI_THREAD_FUNNELED)
            fprintf(stderr, "storyrun: warning: MPI gives thread level %d < FUNNELED\n", provided);
        c->owns_mpi = 1;
    }
    COMM_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &c->world));
    // Errors come back as codes and COMM_MPI_CHECK prints where they happened.
    COMM_MPI_CHECK(MPI_Comm_set_errhandler(c->world, MPI_ERRORS_RETURN));
    COMM_MPI_CHECK(MPI_Comm_rank(c->world, &c->rank));
    COMM_MPI_CHECK(MPI_Comm_size(c->world, &c->size));
    // Ranks that share memory share a node; their order there picks the GPU.
    COMM_MPI_CHECK(
        MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &c->local));
    COMM_MPI_CHECK(MPI_Comm_rank(c->local, &c->local_rank));
    COMM_MPI_CHECK(MPI_Comm_size(c->local, &c->local_size));

    const char *why = NULL;
    c->device_count = story_cuda_device_count(&why);
    if (c->device_count < 0) c->device_count = 0;
    c->device = -1;
    if (c->device_count > 0) {
        c->device = c->local_rank % c->device_count;
        if (story_cuda_set_device(c->device) != 0)
            STORY_FATAL("rank %d: cannot select CUDA device %d", c->rank, c->device);
    }
    c->max_message = COMM_DEFAULT_MAX_MESSAGE;
    c->nccl = NULL;
    return c;
}

void comm_finalize(Comm *c) {
    if (!c) return;
#ifdef STORY_HAVE_NCCL
    comm_nccl_destroy(c);
#endif
    MPI_Comm_free(&c->local);
    MPI_Comm_free(&c->world);
    if (c->owns_mpi) MPI_Finalize();
    free(c);
}

void comm_abort(Comm *c, int code) {
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(c ? c->world : MPI_COMM_WORLD, code);
    exit(code);  // not reached
}

void comm_set_max_message(Comm *c, size_t bytes) {
    c->max_message = bytes ? bytes : COMM_DEFAULT_MAX_MESSAGE;
    if (c->max_message > COMM_DEFAULT_MAX_MESSAGE) c->max_message = COMM_DEFAULT_MAX_MESSAGE;
}

void comm_barrier(Comm *c) { COMM_MPI_CHECK(MPI_Barrier(c->world)); }

// ---- host (MPI) collectives --------------------------------------------------------

void comm_mpi_broadcast(Comm *c, void *buf, size_t bytes, int root) {
    char *p = buf;
    for (size_t off = 0; off < bytes; off += c->max_message) {
        size_t n = bytes - off < c->max_message ? bytes - off : c->max_message;
        COMM_MPI_CHECK(MPI_Bcast(p + off, (int)n, MPI_BYTE, root, c->world));
    }
}

void comm_mpi_all_reduce_f32(Comm *c, float *buf, size_t n) {
    size_t step = c->max_message / sizeof(float);
    if (step == 0) step = 1;
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        COMM_MPI_CHECK(
            MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)k, MPI_FLOAT, MPI_SUM, c->world));
    }
}

// Fallback for blocks too large for one MPI message: each rank's block is broadcast
// from its owner in pieces. recv already holds this rank's block at displs[rank].
static void gather_by_broadcasts(Comm *c, char *recv, const size_t *counts, const size_t *displs) {
    for (int r = 0; r < c->size; r++) comm_mpi_broadcast(c, recv + displs[r], counts[r], r);
}

void comm_mpi_all_gather(Comm *c, const void *send, size_t bytes, void *recv) {
    if (bytes == 0) return;
    char *own = (char *)recv + (size_t)c->rank * bytes;
    if (bytes <= c->max_message) {
        const void *s = send == own ? MPI_IN_PLACE : send;
        COMM_MPI_CHECK(
            MPI_Allgather(s, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, c->world));
        return;
    }
    if (send != own) memmove(own, send, bytes);
    size_t *counts = mallocCheck(2 * (size_t)c->size * sizeof(size_t));
    size_t *displs = counts + c->size;
    for (int r = 0; r < c->size; r++) counts[r] = bytes, displs[r] = (size_t)r * bytes;
    gather_by_broadcasts(c, recv, counts, displs);
    free(counts);
}

void comm_mpi_all_gather_v(Comm *c, const void *send, void *recv, const size_t *counts,
                           const size_t *displs) {
    size_t total = displs[c->size - 1] + counts[c->size - 1];
    if (total == 0) return;
    char *own = (char *)recv + displs[c->rank];
    size_t mine = counts[c->rank];
    if (total <= c->max_message) {
        int *ic = mallocCheck(2 * (size_t)c->size * sizeof(int));
        int *id = ic + c->size;
        for (int r = 0; r < c->size; r++) ic[r] = (int)counts[r], id[r] = (int)displs[r];
        const void *s = (send == own || mine == 0) ? MPI_IN_PLACE : send;
        COMM_MPI_CHECK(MPI_Allgatherv(s, (int)mine, MPI_BYTE, recv, ic, id, MPI_BYTE, c->world));
        free(ic);
        return;
    }
    if (mine && send != own) memmove(own, send, mine);
    gather_by_broadcasts(c, recv, counts, displs);
}

// ---- public collectives: pick the back end by where the buffer lives ---------------

#ifdef STORY_HAVE_NCCL
// Every rank of a collective must pass buffers of the same kind (all host or all device).
static int on_device(const Comm *c, const void *p) {
    return p != NULL && c->device >= 0 && comm_nccl_is_device(p);
}
#endif

void comm_broadcast(Comm *c, void *buf, size_t bytes, int root) {
    if (root < 0 || root >= c->size)
        STORY_FATAL("broadcast from root %d, but there are %d ranks", root, c->size);
    if (bytes == 0) return;
#ifdef STORY_HAVE_NCCL
    if (on_device(c, buf)) {
        comm_nccl_broadcast(c, buf, bytes, root);
        return;
    }
#endif
    comm_mpi_broadcast(c, buf, bytes, root);
}

void comm_all_reduce_f32(Comm *c, float *buf, size_t n) {
    if (n == 0) return;
#ifdef STORY_HAVE_NCCL
    if (on_device(c, buf)) {
        comm_nccl_all_reduce_f32(c, buf, n);
        return;
    }
#endif
    comm_mpi_all_reduce_f32(c, buf, n);
}

void comm_all_gather(Comm *c, const void *send, size_t bytes, void *recv) {
    if (bytes == 0) return;
#ifdef STORY_HAVE_NCCL
    if (on_device(c, recv)) {
        comm_nccl_all_gather(c, send, bytes, recv);
        return;
    }
#endif
    comm_mpi_all_gather(c, send, bytes, recv);
}

void comm_all_gather_size(Comm *c, size_t mine, size_t *out) {
    uint64_t m = mine;
    uint64_t *all = mallocCheck((size_t)c->size * sizeof(uint64_t));
    COMM_MPI_CHECK(MPI_Allgather(&m, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, c->world));
    for (int r = 0; r < c->size; r++) out[r] = (size_t)all[r];
    free(all);
}

size_t comm_all_gather_v(Comm *c, const void *send, size_t bytes, void *recv, size_t recv_cap,
                         size_t *counts, size_t *displs) {
    size_t *cnt = mallocCheck(2 * (size_t)c->size * sizeof(size_t));
    size_t *dsp = cnt + c->size;
    comm_all_gather_size(c, bytes, cnt);
    size_t total = 0;
    for (int r = 0; r < c->size; r++) dsp[r] = total, total += cnt[r];
    if (total > recv_cap)
        STORY_FATAL("rank %d: all_gather_v needs %zu bytes but the receive buffer has %zu", c->rank,
                    total, recv_cap);
    if (total > 0) {
#ifdef STORY_HAVE_NCCL
        if (on_device(c, recv))
            comm_nccl_all_gather_v(c, send, recv, cnt, dsp);
        else
#endif
            comm_mpi_all_gather_v(c, send, recv, cnt, dsp);
    }
    if (counts) memcpy(counts, cnt, (size_t)c->size * sizeof(size_t));
    if (displs) memcpy(displs, dsp, (size_t)c->size * sizeof(size_t));
    free(cnt);
    return total;
}

int comm_any(Comm *c, int flag) {
    float v = flag ? 1.0f : 0.0f;
    comm_all_reduce_f32(c, &v, 1);
    return v > 0.5f;
}
