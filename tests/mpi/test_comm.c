// tests/mpi/test_comm.c: the comm layer on host buffers, run under mpirun -np 1/2/3
// and as a singleton (no mpirun). Every value is checked against what it must be;
// all data are small integers, so sums are exact in fp32 in any order (tolerance 0).
//
//   test_comm EXPECTED_RANKS LOG_DIR
//
// The collectives are checked twice: with the default message size and with messages
// split into pieces of a few bytes (the path taken by buffers above 1 GiB).
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/cuda_runtime_api.h"
#include "runner/comm.h"
#include "runner/log.h"

static int g_rank = 0;
static int g_checks = 0;
static int g_failures = 0;

#define EXPECT(cond, ...)                                                         \
    do {                                                                          \
        g_checks++;                                                               \
        if (!(cond)) {                                                            \
            g_failures++;                                                         \
            fprintf(stderr, "rank %d: FAIL %s:%d: ", g_rank, __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

static uint8_t pattern(int rank, size_t i) { return (uint8_t)(rank * 37 + (int)i * 11 + 1); }

// Rank r's node-local rank is the number of lower ranks with the same host name.
static void check_topology(Comm *c, int expected_size) {
    int world_rank, world_size, cmp;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    EXPECT(c->size == expected_size, "size %d, expected %d", c->size, expected_size);
    EXPECT(c->size == world_size && c->rank == world_rank, "rank %d/%d vs world %d/%d", c->rank,
           c->size, world_rank, world_size);
    MPI_Comm_compare(c->world, MPI_COMM_WORLD, &cmp);
    EXPECT(cmp == MPI_CONGRUENT, "comm world should be a duplicate of MPI_COMM_WORLD");

    char name[MPI_MAX_PROCESSOR_NAME] = {0};
    int len = 0;
    MPI_Get_processor_name(name, &len);
    char *names = calloc((size_t)c->size, MPI_MAX_PROCESSOR_NAME);
    comm_all_gather(c, name, MPI_MAX_PROCESSOR_NAME, names);
    int local_rank = 0, local_size = 0;
    for (int r = 0; r < c->size; r++) {
        if (strcmp(names + (size_t)r * MPI_MAX_PROCESSOR_NAME, name) != 0) continue;
        local_size++;
        if (r < c->rank) local_rank++;
    }
    free(names);
    EXPECT(c->local_rank == local_rank && c->local_size == local_size,
           "local rank %d of %d, expected %d of %d", c->local_rank, c->local_size, local_rank,
           local_size);

    int devices = story_cuda_device_count(NULL);
    int expected_device = devices > 0 ? local_rank % devices : -1;
    EXPECT(c->device_count == (devices > 0 ? devices : 0) && c->device == expected_device,
           "device %d of %d, expected %d", c->device, c->device_count, expected_device);
}

static void check_broadcast(Comm *c) {
    enum { N = 37, NF = 300 };
    for (int root = 0; root < c->size; root++) {
        uint8_t buf[N];
        for (size_t i = 0; i < N; i++) buf[i] = c->rank == root ? pattern(root, i) : 0xAA;
        comm_broadcast(c, buf, N, root);
        int bad = 0;
        for (size_t i = 0; i < N; i++) bad += buf[i] != pattern(root, i);
        EXPECT(bad == 0, "broadcast from %d: %d of %d bytes wrong", root, bad, N);

        float f[NF];
        for (int i = 0; i < NF; i++) f[i] = c->rank == root ? (float)(root * 1000 + i) : -1.0f;
        comm_broadcast(c, f, sizeof f, root);
        bad = 0;
        for (int i = 0; i < NF; i++) bad += f[i] != (float)(root * 1000 + i);
        EXPECT(bad == 0, "float broadcast from %d: %d of %d wrong", root, bad, NF);
    }
    comm_broadcast(c, NULL, 0, c->size - 1);  // nothing to send: a no-op, not a crash
}

static void check_all_reduce(Comm *c) {
    enum { N = 1001 };
    float *buf = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) buf[i] = (float)((c->rank + 1) * (i % 97)) + 0.5f * (float)c->rank;
    comm_all_reduce_f32(c, buf, N);
    // sum over r of (r + 1) * (i % 97) + r / 2
    double s1 = c->size * (c->size + 1) / 2.0, s0 = c->size * (c->size - 1) / 2.0;
    int bad = 0, first = -1;
    for (int i = 0; i < N; i++) {
        float want = (float)(s1 * (i % 97) + 0.5 * s0);
        if (buf[i] != want) {
            bad++;
            if (first < 0) first = i;
        }
    }
    EXPECT(bad == 0, "all_reduce: %d of %d sums wrong (first at %d: %g)", bad, N, first,
           first >= 0 ? buf[first] : 0.0);
    free(buf);
}

static void check_all_gather(Comm *c, int in_place) {
    enum { B = 13 };
    uint8_t *recv = malloc((size_t)c->size * B);
    memset(recv, 0xAA, (size_t)c->size * B);
    uint8_t mine[B];
    uint8_t *send = in_place ? recv + (size_t)c->rank * B : mine;
    for (size_t i = 0; i < B; i++) send[i] = pattern(c->rank, i);
    comm_all_gather(c, send, B, recv);
    int bad = 0;
    for (int r = 0; r < c->size; r++)
        for (size_t i = 0; i < B; i++) bad += recv[(size_t)r * B + i] != pattern(r, i);
    EXPECT(bad == 0, "all_gather (in place %d): %d bytes wrong", in_place, bad);
    free(recv);
}

// count(r) per pattern: 0 = rank 1 sends nothing, 1 = rank 0 sends nothing, 2 = no one sends.
static size_t gather_count(int pattern_id, int r) {
    switch (pattern_id) {
    case 0: return r == 1 ? 0 : (size_t)(5 * (r + 1) + 3);
    case 1: return r == 0 ? 0 : (size_t)(7 * r);
    default: return 0;
    }
}

static void check_all_gather_v(Comm *c, int pattern_id, int in_place) {
    size_t total = 0, mine = gather_count(pattern_id, c->rank), my_displ = 0;
    for (int r = 0; r < c->size; r++) {
        if (r == c->rank) my_displ = total;
        total += gather_count(pattern_id, r);
    }
    enum { SENTINEL = 16 };  // bytes past the end that must stay untouched
    uint8_t *recv = malloc(total + SENTINEL);
    memset(recv, 0xAA, total + SENTINEL);
    uint8_t *send = NULL;
    if (in_place)
        send = recv + my_displ;
    else if (mine)
        send = malloc(mine);
    for (size_t i = 0; i < mine; i++) send[i] = pattern(c->rank, i);

    size_t *counts = malloc(2 * (size_t)c->size * sizeof(size_t));
    size_t *displs = counts + c->size;
    size_t got = comm_all_gather_v(c, send, mine, recv, total, counts, displs);
    EXPECT(got == total, "all_gather_v pattern %d: total %zu, expected %zu", pattern_id, got,
           total);
    size_t at = 0;
    int bad = 0;
    for (int r = 0; r < c->size; r++) {
        size_t n = gather_count(pattern_id, r);
        EXPECT(counts[r] == n && displs[r] == at,
               "pattern %d rank %d: count %zu displ %zu, "
               "expected %zu %zu",
               pattern_id, r, counts[r], displs[r], n, at);
        for (size_t i = 0; i < n; i++) bad += recv[at + i] != pattern(r, i);
        at += n;
    }
    for (size_t i = 0; i < SENTINEL; i++) bad += recv[total + i] != 0xAA;
    EXPECT(bad == 0, "all_gather_v pattern %d (in place %d): %d bytes wrong", pattern_id, in_place,
           bad);
    if (!in_place) free(send);
    free(counts);
    free(recv);
}

static void check_gather_size(Comm *c) {
    size_t *all = malloc((size_t)c->size * sizeof(size_t));
    size_t mine = ((size_t)1 << 40) + (size_t)c->rank * 3;  // above 32 bits on purpose
    comm_all_gather_size(c, mine, all);
    int bad = 0;
    for (int r = 0; r < c->size; r++) bad += all[r] != ((size_t)1 << 40) + (size_t)r * 3;
    EXPECT(bad == 0, "all_gather_size: %d wrong", bad);
    free(all);
}

static void check_collectives(Comm *c) {
    check_broadcast(c);
    check_all_reduce(c);
    check_all_gather(c, 0);
    check_all_gather(c, 1);
    for (int p = 0; p < 3; p++) {
        check_all_gather_v(c, p, 0);
        check_all_gather_v(c, p, 1);
    }
    check_gather_size(c);
}

// Every rank logs a line with a run id from rank 0; after the barrier rank 0 finds each
// line in each rank's file (files are appended to, so the id tells this run apart).
static void check_logs(Comm *c, const char *dir) {
    unsigned long long run = 0;
    if (c->rank == 0) run = ((unsigned long long)time(NULL) << 20) ^ (unsigned long long)getpid();
    comm_broadcast(c, &run, sizeof run, 0);
    EXPECT(log_init(dir, c->rank) == 0, "log_init(%s) failed", dir);
    LOG_INFO("hello from rank %d of %d, run %llx", c->rank, c->size, run);
    comm_barrier(c);
    if (c->rank != 0) return;
    for (int r = 0; r < c->size; r++) {
        char path[4096], want[128], line[4096];
        snprintf(path, sizeof path, "%s/rank%d.log", dir, r);
        snprintf(want, sizeof want, "hello from rank %d of %d, run %llx", r, c->size, run);
        FILE *f = fopen(path, "r");
        int found = 0;
        while (f && fgets(line, sizeof line, f))
            if (strstr(line, want)) found = 1;
        if (f) fclose(f);
        EXPECT(found, "%s lacks \"%s\"", path, want);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s EXPECTED_RANKS LOG_DIR\n", argv[0]);
        return 2;
    }
    Comm *c = comm_init(&argc, &argv);
    g_rank = c->rank;
    check_topology(c, atoi(argv[1]));
    check_collectives(c);
    comm_set_max_message(c, 8);  // every message above 8 bytes is split
    check_collectives(c);
    comm_set_max_message(c, 3);  // smaller than one float: one element per message
    check_collectives(c);
    comm_set_max_message(c, 0);
    check_logs(c, argv[2]);

    int failures = g_failures;
    MPI_Allreduce(MPI_IN_PLACE, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (c->rank == 0)
        printf("test_comm: %d ranks, %d checks per rank, %d failures\n", c->size, g_checks,
               failures);
    log_close();
    comm_finalize(c);
    return failures == 0 ? 0 : 1;
}
