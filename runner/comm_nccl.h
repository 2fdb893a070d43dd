// runner/comm_nccl.h: internal to the comm layer. The host (MPI) collectives that
// runner/comm.c implements, and the device-buffer back end in runner/comm_nccl.c (built
// only with STORY_HAVE_NCCL). Jobs and models include runner/comm.h, never this file.
#pragma once
#include "runner/comm.h"

// Aborts every rank with the MPI error text when rc is not MPI_SUCCESS.
void comm_mpi_check_(int rc, const char *what, const char *file, int line);
#define COMM_MPI_CHECK(call) comm_mpi_check_((call), #call, __FILE__, __LINE__)

// Host-buffer collectives (MPI), split into messages of at most c->max_message bytes.
void comm_mpi_broadcast(Comm *c, void *buf, size_t bytes, int root);
void comm_mpi_all_reduce_f32(Comm *c, float *buf, size_t n);
void comm_mpi_all_gather(Comm *c, const void *send, size_t bytes, void *recv);
// counts/displs (bytes, size entries) already agreed on by every rank.
void comm_mpi_all_gather_v(Comm *c, const void *send, void *recv, const size_t *counts,
                           const size_t *displs);

#ifdef STORY_HAVE_NCCL
// 1 when p points to device (or managed) memory.
int comm_nccl_is_device(const void *p);
// Device-buffer collectives. NCCL wants one rank per GPU: where ranks share a GPU, the
// data goes through host memory and MPI instead (same results, slower).
void comm_nccl_broadcast(Comm *c, void *buf, size_t bytes, int root);
void comm_nccl_all_reduce_f32(Comm *c, float *buf, size_t n);
void comm_nccl_all_gather(Comm *c, const void *send, size_t bytes, void *recv);
void comm_nccl_all_gather_v(Comm *c, const void *send, void *recv, const size_t *counts,
                            const size_t *displs);
void comm_nccl_destroy(Comm *c);
#endif
