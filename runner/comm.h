// runner/comm.h: the communication layer every job is handed. One MPI rank per GPU (or
// per process on CPU-only machines); collectives move host buffers with MPI and, in
// builds with NCCL, device buffers with NCCL. The same call serves both: the layer looks
// at where the buffer lives.
//
// Every collective is called by all ranks of the communicator with matching arguments
// (the same root, the same byte count where a count is shared), as in MPI. All calls are
// synchronous: when one returns, the data is in place on this rank.
//
// Nothing below jobs/ uses MPI directly; models and partition code get a Comm * only.
#pragma once
#include <mpi.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CommNccl CommNccl;  // NCCL state (runner/comm_nccl.c), NULL until used

typedef struct {
    MPI_Comm world;  // private duplicate of MPI_COMM_WORLD (our traffic never mixes)
    MPI_Comm local;  // ranks on this node (MPI_COMM_TYPE_SHARED)
    int rank, size;
    int local_rank, local_size;
    int device_count;    // CUDA devices visible to this rank (0 on CPU-only machines)
    int device;          // CUDA device this rank uses: local_rank % device_count, or -1
    int owns_mpi;        // comm_init started MPI, so comm_finalize ends it
    size_t max_message;  // largest single MPI message in bytes; bigger ones are split
    CommNccl *nccl;
} Comm;

// Starts MPI (MPI_THREAD_FUNNELED: only the main thread calls MPI; OpenMP threads may
// run between calls) unless it is already running, and works when the binary was
// started without mpirun (a singleton: rank 0 of 1). Picks and selects the CUDA device
// when there is one. Aborts with a message when MPI cannot start.
Comm *comm_init(int *argc, char ***argv);
// Ends NCCL and, when comm_init started it, MPI. Frees c.
void comm_finalize(Comm *c);
// Ends every rank's process with exit code `code` (for fatal errors on one rank).
void comm_abort(Comm *c, int code);

void comm_barrier(Comm *c);
// buf (bytes) on root is copied to buf on every rank.
void comm_broadcast(Comm *c, void *buf, size_t bytes, int root);
// buf (n floats) becomes the element-wise sum over ranks, on every rank.
void comm_all_reduce_f32(Comm *c, float *buf, size_t n);
// Every rank sends `bytes`; recv (size * bytes) holds rank r's block at r * bytes.
// send may alias recv + rank * bytes (in place).
void comm_all_gather(Comm *c, const void *send, size_t bytes, void *recv);
// Like comm_all_gather, but each rank sends its own number of bytes (0 is fine).
// recv holds rank r's block at displs[r] (blocks packed in rank order) and must have room
// for the total (recv_cap bytes; a smaller buffer aborts). counts and displs (size
// entries each, in bytes) are filled in when not NULL. Returns the total byte count.
size_t comm_all_gather_v(Comm *c, const void *send, size_t bytes, void *recv, size_t recv_cap,
                         size_t *counts, size_t *displs);
// 1 on every rank when `flag` is nonzero on any rank (a rank's failure, a stop request), so
// that all ranks take the same way out.
int comm_any(Comm *c, int flag);
// Gathers one size_t per rank into out (size entries), e.g. to size a gather-v buffer.
void comm_all_gather_size(Comm *c, size_t mine, size_t *out);

// Splits MPI messages above `bytes` into several (MPI counts are int). Exposed so tests
// can exercise the split paths with small buffers; bytes == 0 restores the default.
void comm_set_max_message(Comm *c, size_t bytes);

#ifdef __cplusplus
}
#endif
