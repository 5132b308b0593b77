/* An LD_PRELOAD shim that makes bash lose the races a loaded machine makes it lose.
 *
 * Whenever the process it is loaded into (not its forks, not what they exec: it removes itself
 * from LD_PRELOAD before main) is about to unblock SIGCHLD, it sleeps PREEMPT_SHIM_US
 * microseconds first (default 5000). Pausing only the supervisor keeps its children's timing
 * natural, so they die while it is paused.
 *
 * Unblocking SIGCHLD is the moment bash's `wait -n` (bash 5.2, jobs.c wait_for_any_job) goes
 * from its scan for dead jobs, made with SIGCHLD blocked, to blocking in waitpid: a child that
 * dies in the pause is reaped by bash's SIGCHLD handler as soon as the signal is unblocked, and
 * the scan never sees it. Every other unblock of SIGCHLD is paused too, as a preempted process
 * would be. Built by tests/helpers/oneshot_stress.py with the system cc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static pid_t paused_pid;
static long pause_us = 5000;
static long pauses;
static const char *count_file; /* PREEMPT_SHIM_COUNT_FILE: where the pause count goes at exit */

__attribute__((constructor)) static void setup(void) {
    const char *value = getenv("PREEMPT_SHIM_US");
    if (value != NULL)
        pause_us = atol(value);
    paused_pid = getpid();
    count_file = getenv("PREEMPT_SHIM_COUNT_FILE");
    unsetenv("LD_PRELOAD"); /* before bash copies its environment: no child loads the shim */
}

/* So a test can tell that the shim did pause (a shim that never loads would prove nothing). */
__attribute__((destructor)) static void report(void) {
    FILE *out;
    if (count_file == NULL || getpid() != paused_pid || (out = fopen(count_file, "w")) == NULL)
        return;
    fprintf(out, "%ld\n", pauses);
    fclose(out);
}

typedef int (*sigprocmask_fn)(int, const sigset_t *, sigset_t *);

static int unblocks_sigchld(sigprocmask_fn real, int how, const sigset_t *set) {
    sigset_t current;
    if (set == NULL || how == SIG_BLOCK)
        return 0;
    if (how == SIG_UNBLOCK)
        return sigismember(set, SIGCHLD) == 1;
    /* SIG_SETMASK: it unblocks SIGCHLD if SIGCHLD is blocked now and not in the new mask. */
    if (real(SIG_BLOCK, NULL, &current) != 0)
        return 0;
    return sigismember(&current, SIGCHLD) == 1 && sigismember(set, SIGCHLD) == 0;
}

int sigprocmask(int how, const sigset_t *set, sigset_t *oldset) {
    static sigprocmask_fn real;
    if (real == NULL)
        real = (sigprocmask_fn)dlsym(RTLD_NEXT, "sigprocmask");
    if (pause_us > 0 && getpid() == paused_pid && unblocks_sigchld(real, how, set)) {
        struct timespec pause = {pause_us / 1000000, (pause_us % 1000000) * 1000};
        nanosleep(&pause, NULL);
        pauses++;
    }
    return real(how, set, oldset);
}
