// tests/slurm/slurm_ranks.c DIR: one line per rank in DIR/rank<R>.txt saying how this rank
// sees the job: "rank R size S local_rank L local_size N procid P ntasks T". Started by
// `srun --mpi=pmix` inside an sbatch job (tests/slurm/ranks.sbatch), it shows that PMIx
// wires MPI up with Slurm's numbering (rank == SLURM_PROCID) and that the comm layer's
// node-local rank (which picks the GPU) matches SLURM_LOCALID.
#include <stdio.h>
#include <stdlib.h>

#include "runner/comm.h"

static int env_int(const char *name) {
    const char *v = getenv(name);
    return v ? atoi(v) : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: slurm_ranks DIR\n");
        return 2;
    }
    Comm *c = comm_init(&argc, &argv);
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/rank%d.txt", argv[1], c->rank);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "slurm_ranks: rank %d: cannot write %s\n", c->rank, tmp);
        comm_abort(c, 1);
    }
    fprintf(f, "rank %d size %d local_rank %d local_size %d procid %d ntasks %d localid %d\n",
            c->rank, c->size, c->local_rank, c->local_size, env_int("SLURM_PROCID"),
            env_int("SLURM_NTASKS"), env_int("SLURM_LOCALID"));
    int bad = fclose(f) != 0 || rename(tmp, path) != 0;
    comm_barrier(c);  // every rank is up and has written before any leaves
    printf("slurm_ranks: rank %d of %d wrote %s\n", c->rank, c->size, path);
    comm_finalize(c);
    return bad;
}
