// runner/comm_nccl.c: the comm layer's collectives on device buffers (built only with
// STORY_HAVE_NCCL). The NCCL communicator is made on the first device-buffer collective,
// which every rank reaches together: rank 0 draws the unique id, MPI broadcasts it, each
// rank joins with ncclCommInitRank on its own device. Each call waits for its stream, so
// call sites see the same synchronous behaviour as the MPI path.
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>

#include "runner/check.h"
#include "runner/comm_nccl.h"

struct CommNccl {
    int usable;  // 1: NCCL; 0: ranks share a GPU, stage through host memory + MPI
    ncclComm_t comm;
    cudaStream_t stream;
};

#define NCCL_CHECK(call)                                                                  \
    do {                                                                                  \
        ncclResult_t r_ = (call);                                                         \
        if (r_ != ncclSuccess)                                                            \
            STORY_FATAL("%s: NCCL error %d: %s", #call, (int)r_, ncclGetErrorString(r_)); \
    } while (0)
#define CUDA_CHECK(call)                                                                         \
    do {                                                                                         \
        cudaError_t e_ = (call);                                                                 \
        if (e_ != cudaSuccess) STORY_FATAL("%s: CUDA error: %s", #call, cudaGetErrorString(e_)); \
    } while (0)

int comm_nccl_is_device(const void *p) {
    struct cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError();  // a plain host pointer is not an error worth keeping
        return 0;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

static CommNccl *nccl_get(Comm *c) {
    if (c->nccl) return c->nccl;
    CommNccl *n = calloc(1, sizeof *n);
    if (!n) STORY_FATAL("out of memory");
    // NCCL refuses two ranks on one GPU. All ranks must take the same path, so the
    // node-local answers are combined over the whole job.
    int ok = c->local_size <= c->device_count ? 1 : 0;
    COMM_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, c->world));
    n->usable = ok;
    if (ok) {
        ncclUniqueId id;
        if (c->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
        COMM_MPI_CHECK(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, c->world));
        CUDA_CHECK(cudaSetDevice(c->device));
        // A blocking stream: it waits for work queued on the legacy default stream.
        CUDA_CHECK(cudaStreamCreate(&n->stream));
        NCCL_CHECK(ncclCommInitRank(&n->comm, c->size, id, c->rank));
    } else if (c->rank == 0) {
        fprintf(stderr,
                "storyrun: %d ranks on a node with %d GPU(s): device collectives go through "
                "host memory (NCCL wants one rank per GPU)\n",
                c->local_size, c->device_count);
    }
    c->nccl = n;
    return n;
}

static void nccl_wait(CommNccl *n) { CUDA_CHECK(cudaStreamSynchronize(n->stream)); }

static void *host_buffer(size_t bytes) { return mallocCheck(bytes); }
static void copy(void *dst, const void *src, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

void comm_nccl_broadcast(Comm *c, void *buf, size_t bytes, int root) {
    CommNccl *n = nccl_get(c);
    if (!n->usable) {
        void *h = host_buffer(bytes);
        if (c->rank == root) copy(h, buf, bytes);
        comm_mpi_broadcast(c, h, bytes, root);
        copy(buf, h, bytes);
        free(h);
        return;
    }
    NCCL_CHECK(ncclBroadcast(buf, buf, bytes, ncclChar, root, n->comm, n->stream));
    nccl_wait(n);
}

void comm_nccl_all_reduce_f32(Comm *c, float *buf, size_t count) {
    CommNccl *n = nccl_get(c);
    if (!n->usable) {
        float *h = host_buffer(count * sizeof(float));
        copy(h, buf, count * sizeof(float));
        comm_mpi_all_reduce_f32(c, h, count);
        copy(buf, h, count * sizeof(float));
        free(h);
        return;
    }
    NCCL_CHECK(ncclAllReduce(buf, buf, count, ncclFloat32, ncclSum, n->comm, n->stream));
    nccl_wait(n);
}

void comm_nccl_all_gather(Comm *c, const void *send, size_t bytes, void *recv) {
    CommNccl *n = nccl_get(c);
    size_t total = bytes * (size_t)c->size;
    if (!n->usable) {
        char *h = host_buffer(total);
        copy(h + (size_t)c->rank * bytes, send, bytes);
        comm_mpi_all_gather(c, h + (size_t)c->rank * bytes, bytes, h);
        copy(recv, h, total);
        free(h);
        return;
    }
    STORY_CHECK(comm_nccl_is_device(send), "all_gather: recv is on the device but send is not");
    NCCL_CHECK(ncclAllGather(send, recv, bytes, ncclChar, n->comm, n->stream));
    nccl_wait(n);
}

void comm_nccl_all_gather_v(Comm *c, const void *send, void *recv, const size_t *counts,
                            const size_t *displs) {
    CommNccl *n = nccl_get(c);
    size_t total = displs[c->size - 1] + counts[c->size - 1];
    size_t mine = counts[c->rank];
    if (!n->usable) {
        char *h = host_buffer(total);
        copy(h + displs[c->rank], send, mine);
        comm_mpi_all_gather_v(c, h + displs[c->rank], h, counts, displs);
        copy(recv, h, total);
        free(h);
        return;
    }
    if (mine)
        STORY_CHECK(comm_nccl_is_device(send),
                    "all_gather_v: recv is on the device but send is not");
    // One broadcast per sending rank, fused by the group into one NCCL launch. Ranks
    // with nothing to send are skipped (every rank knows the counts, so all skip alike).
    char *r = recv;
    NCCL_CHECK(ncclGroupStart());
    for (int root = 0; root < c->size; root++) {
        if (counts[root] == 0) continue;
        const void *s = root == c->rank ? send : r + displs[root];
        NCCL_CHECK(
            ncclBroadcast(s, r + displs[root], counts[root], ncclChar, root, n->comm, n->stream));
    }
    NCCL_CHECK(ncclGroupEnd());
    nccl_wait(n);
}

void comm_nccl_destroy(Comm *c) {
    CommNccl *n = c->nccl;
    if (!n) return;
    if (n->usable) {
        NCCL_CHECK(ncclCommDestroy(n->comm));
        CUDA_CHECK(cudaStreamDestroy(n->stream));
    }
    free(n);
    c->nccl = NULL;
}
