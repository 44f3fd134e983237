/* Makes the system calls tests/security/test_seccomp.py asks about and prints, for each,
 * NAME=0 when it succeeded or NAME=ERRNO when it failed. Built static at test time
 * (gcc -static) and bind-mounted into a busybox container, which has no such tool. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int result(long rc) { return rc < 0 ? errno : 0; }

/* In a child: unshare and mount change the caller, and the next probe must start clean. */
static int in_child(int (*probe)(void)) {
    int status;
    pid_t pid = fork();
    if (pid < 0) return errno;
    if (pid == 0) _exit(probe());
    if (waitpid(pid, &status, 0) < 0) return errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

static int unshare_user(void) { return result(unshare(CLONE_NEWUSER)); }

static int userns_tmpfs(void) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) return errno;
    return result(mount("none", "/tmp", "tmpfs", 0, NULL));
}

static int keyctl_probe(void) { return result(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -2, 1)); }

static int add_key_probe(void) {
    return result(syscall(SYS_add_key, "user", "skiff-probe", "x", 1, -2 /* the process keyring */));
}

static int perf_probe(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    if (fd >= 0) close((int)fd);
    return result(fd);
}

static int personality_probe(unsigned long persona) { return result(syscall(SYS_personality, persona)); }
static int read_implies_exec(void) { return personality_probe(READ_IMPLIES_EXEC); }
static int per_linux(void) { return personality_probe(PER_LINUX); }

static int kcmp_probe(void) { return result(syscall(SYS_kcmp, getpid(), getpid(), 1 /* KCMP_VM */, 0, 0)); }

static int clone3_probe(void) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return result(pid);
}

static const struct { const char *name; int (*probe)(void); } PROBES[] = {
    {"unshare_user", unshare_user}, {"userns_tmpfs", userns_tmpfs}, {"keyctl", keyctl_probe},
    {"add_key", add_key_probe}, {"perf_event_open", perf_probe},
    {"personality_read_implies_exec", read_implies_exec}, {"personality_linux", per_linux},
    {"kcmp", kcmp_probe}, {"clone3", clone3_probe},
};

int main(void) {
    for (size_t i = 0; i < sizeof PROBES / sizeof PROBES[0]; i++)
        printf("%s=%d\n", PROBES[i].name, in_child(PROBES[i].probe));
    return 0;
}
