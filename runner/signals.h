// runner/signals.h: stop requests from the outside world (Slurm's warning before the time
// limit, scancel, Ctrl-C) turned into a flag that jobs poll between units of work.
//
// A handler only records which signal came; the job decides when to look:
//
//   signals_install();
//   int stop = 0;
//   for (int f = first; f < n; f++) {
//       if ((stop = signals_agree(comm))) break;  // every rank breaks at the same frame
//       render_frame(f);
//   }
//   ... flush the manifest ...
//   return stop ? STORY_EXIT_REQUEUE : 0;       // the agreed answer: all ranks exit 75
//
// Who delivers what (checked with Slurm 22.05 and Open MPI 4.1; tests/progress and
// tests/slurm show it):
// - Slurm: `#SBATCH --signal=USR1@120` sends SIGUSR1 to every task of the job's steps
//   (not the batch shell) about two minutes before the time limit; `scancel --signal=USR1
//   JOB` does the same by hand. At the time limit and on a plain scancel, every task gets
//   SIGTERM and, KillWait seconds later (30 by default), SIGKILL; the batch shell is ended
//   too, so only the SIGUSR1 warning leads to a requeue.
// - srun forwards a SIGUSR1 sent to it to every task. A SIGTERM or SIGINT sent to srun
//   itself aborts the step: the tasks are killed without a clean stop.
// - mpirun (Open MPI 4.1) forwards SIGUSR1/SIGUSR2 to every rank at once. SIGTERM/SIGINT
//   sent to mpirun end the job: the ranks get SIGTERM odls_base_sigkill_timeout seconds
//   later (1 by default) and SIGKILL as long again after that, and mpirun exits 1, so
//   under mpirun only SIGUSR1 gives a clean, resumable stop.
// - A signal sent to one rank only (kill PID) reaches that rank only; signals_agree makes
//   the others follow it at the next unit.
#pragma once

#include "runner/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

// Exit code of a job that stopped early on request and can be re-run to resume (the
// outputs so far are complete and recorded). 75 is EX_TEMPFAIL from <sysexits.h>:
// "try again later". The sbatch templates requeue the job when srun returns it.
#define STORY_EXIT_REQUEUE 75

// Installs handlers for SIGTERM, SIGUSR1 and SIGINT (SA_RESTART, so interrupted reads and
// writes carry on) and clears the flag. A second SIGINT restores the default action and
// ends the process at once (Ctrl-C twice: stop now). Calling it again is harmless.
// Returns 0, or -1 after printing which sigaction failed.
int signals_install(void);
// Puts back the handlers that were there before signals_install (tests).
void signals_uninstall(void);

// The signal number that asked this process to stop, or 0. With several, the largest
// number wins (SIGTERM 15 > SIGUSR1 10 > SIGINT 2): SIGTERM means the end is near.
// Async-signal-safe to read; costs one load.
int signals_requested(void);
// Forgets the request (after a job has handled it, and in tests).
void signals_reset(void);

// Collective over c (every rank calls it at the same point): the largest signal number
// requested on any rank, or 0. All ranks get the same answer, so they stop at the same
// unit. Costs one small all-reduce; call it between units, not inside them.
int signals_agree(Comm *c);

// "SIGTERM", "SIGUSR1", "SIGINT", or "signal N" for others (a static string; N is not
// kept beyond the next call).
const char *signals_name(int sig);

#ifdef __cplusplus
}
#endif
