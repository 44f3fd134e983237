"""skiff's default seccomp profile: the semantics of Docker 20.10's, as Python data.

What a container may call is an allow-list; anything else fails with EPERM. The
list is Docker's, grouped here by what the calls do so that it can be reviewed;
argument filters and capability rules follow Docker's too:

- ``personality`` only for the Linux personas (32-bit, UNAME26) and the query;
  READ_IMPLIES_EXEC and friends are refused.
- ``socket`` for every family but AF_VSOCK (talking to the hypervisor).
- ``clone`` only without namespace flags, ``clone3`` fails with ENOSYS (its flags
  sit in a struct a filter cannot read, and libc then falls back to ``clone``),
  ``unshare``, ``setns``, ``mount`` and the new mount API not at all: unless the
  container holds CAP_SYS_ADMIN, which lifts all of that.
- Calls that only a capability makes useful (ptrace-like ones, module loading,
  the clock, reboot, chroot...) are allowed only when the container has it.

``docker_profile()`` returns the profile in Docker's JSON format (``includes`` and
``excludes`` by capability and architecture); ``skiff.security.seccomp`` resolves
it for one container into an OCI ``linux.seccomp``, exactly as it does a profile
given with ``--security-opt seccomp=FILE``.
"""

from __future__ import annotations

from typing import Any

# --- always allowed ----------------------------------------------------------------------------
# Names that do not exist on an architecture are skipped when the filter is compiled
# (the *32 uid calls and *_time64 variants are for the 32-bit x86 and arm sub-architectures).
_ALLOWED_GROUPS: dict[str, str] = {
    "processes": """
        execve execveat exit exit_group fork vfork wait4 waitid waitpid
        getpid getppid gettid getpgid getpgrp getsid setpgid setsid
        getrlimit setrlimit ugetrlimit prlimit64 getrusage prctl
        set_tid_address get_thread_area set_thread_area
        pidfd_open pidfd_send_signal
    """,
    "identity": """
        getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
        getresuid getresuid32 getresgid getresgid32 getgroups getgroups32
        setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
        setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid setfsgid32
        setgroups setgroups32 capget capset
    """,
    "signals": """
        kill tkill tgkill pause restart_syscall sigaltstack sigreturn sigprocmask
        rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
        rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo signalfd signalfd4
    """,
    "memory": """
        brk mmap mmap2 munmap mremap mprotect madvise mincore msync remap_file_pages
        mlock mlock2 mlockall munlock munlockall membarrier memfd_create memfd_secret
        pkey_alloc pkey_free pkey_mprotect process_mrelease
    """,
    "threads and synchronisation": """
        futex futex_time64 futex_waitv get_robust_list set_robust_list rseq
    """,
    "scheduling": """
        sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr
        sched_getparam sched_setparam sched_getscheduler sched_setscheduler
        sched_get_priority_max sched_get_priority_min sched_rr_get_interval
        sched_rr_get_interval_time64 getpriority setpriority ioprio_get ioprio_set getcpu
    """,
    "time": """
        time gettimeofday nanosleep alarm getitimer setitimer times adjtimex
        clock_gettime clock_gettime64 clock_getres clock_getres_time64
        clock_nanosleep clock_nanosleep_time64 clock_adjtime clock_adjtime64
        timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
        timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
        timerfd_settime timerfd_settime64
    """,
    "file descriptors": """
        close close_range dup dup2 dup3 fcntl fcntl64 flock ioctl pipe pipe2
    """,
    "reading and writing": """
        read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2
        lseek _llseek readahead fadvise64 fadvise64_64 fallocate
        truncate truncate64 ftruncate ftruncate64 fsync fdatasync sync syncfs sync_file_range
        sendfile sendfile64 splice tee vmsplice copy_file_range
    """,
    "paths and metadata": """
        open openat openat2 creat access faccessat faccessat2 chdir fchdir getcwd umask
        stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
        statfs statfs64 fstatfs fstatfs64 getdents getdents64
        mkdir mkdirat mknod mknodat rmdir unlink unlinkat rename renameat renameat2
        link linkat symlink symlinkat readlink readlinkat name_to_handle_at
        chmod fchmod fchmodat chown chown32 fchown fchown32 fchownat lchown lchown32
        utime utimes utimensat utimensat_time64 futimesat
    """,
    "extended attributes": """
        getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr
        listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr
    """,
    "waiting for events": """
        select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64
        epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old
        epoll_pwait epoll_pwait2 eventfd eventfd2
        inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark
    """,
    "asynchronous I/O": """
        io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
        io_uring_setup io_uring_enter io_uring_register
    """,
    "sockets (socket itself is filtered below)": """
        socketpair socketcall bind listen accept accept4 connect shutdown
        getsockname getpeername getsockopt setsockopt
        send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64
    """,
    "System V and POSIX IPC": """
        ipc shmget shmat shmdt shmctl semget semop semtimedop semtimedop_time64 semctl
        msgget msgsnd msgrcv msgctl
        mq_open mq_unlink mq_getsetattr mq_notify mq_timedsend mq_timedsend_time64
        mq_timedreceive mq_timedreceive_time64
    """,
    "sandboxing oneself": """
        seccomp landlock_create_ruleset landlock_add_rule landlock_restrict_self
    """,
    "system information": """
        uname sysinfo getrandom
    """,
    # Docker allows these from kernel 4.8 on, where ptrace can no longer bypass seccomp;
    # skiff needs a newer kernel than that anyway (openat2 is 5.6).
    "tracing one's own children": """
        ptrace process_vm_readv process_vm_writev
    """,
}

# --- by architecture (Go's names, as Docker's includes.arches use them) -------------------------
_ARCH_ONLY: dict[str, tuple[str, ...]] = {
    "arch_prctl": ("amd64", "x32"),
    "modify_ldt": ("amd64", "x32", "x86"),
    "arm_fadvise64_64": ("arm", "arm64"),
    "arm_sync_file_range": ("arm", "arm64"),
    "sync_file_range2": ("arm", "arm64", "ppc64le"),
    "breakpoint": ("arm", "arm64"),
    "cacheflush": ("arm", "arm64"),
    "set_tls": ("arm", "arm64"),
}

# --- only with a capability ----------------------------------------------------------------------
_CAPABILITY_ONLY: dict[str, str] = {
    "CAP_SYS_ADMIN": """
        unshare setns clone clone3 mount umount umount2 mount_setattr move_mount open_tree
        fsopen fsconfig fsmount fspick sethostname setdomainname quotactl quotactl_fd
        bpf perf_event_open fanotify_init lookup_dcookie syslog
    """,
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise ptrace process_vm_readv process_vm_writev",
    "CAP_SYS_MODULE": "init_module finit_module delete_module",
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_NICE": "get_mempolicy set_mempolicy set_mempolicy_home_node mbind",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYSLOG": "syslog",
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}

# --- argument filters ------------------------------------------------------------------------------
PER_LINUX, PER_LINUX32, UNAME26, PERSONALITY_QUERY = 0x0, 0x8, 0x20000, 0xFFFFFFFF
ALLOWED_PERSONAS = (PER_LINUX, PER_LINUX32, UNAME26, UNAME26 | PER_LINUX32, PERSONALITY_QUERY)
AF_VSOCK = 40
# CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP
CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x02000000
ENOSYS, EPERM = 38, 1

# The host architectures skiff runs on: the native libseccomp architecture and the
# compatibility ones its kernel also executes (a 32-bit binary must not escape the filter).
ARCH_MAP = (
    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
)


def _names(text: str) -> list[str]:
    return text.split()


def _arg(index: int, value: int, op: str, value_two: int = 0) -> dict[str, Any]:
    arg = {"index": index, "value": value, "op": op}
    if value_two:
        arg["valueTwo"] = value_two
    return arg


def docker_profile() -> dict[str, Any]:
    """The default profile in Docker's format, to be resolved per container."""
    allowed = sorted({name for text in _ALLOWED_GROUPS.values() for name in _names(text)})
    syscalls: list[dict[str, Any]] = [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    syscalls.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                     "args": [_arg(0, AF_VSOCK, "SCMP_CMP_NE")]})
    syscalls += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [_arg(0, persona, "SCMP_CMP_EQ")]}
                 for persona in ALLOWED_PERSONAS]
    arches: dict[tuple[str, ...], list[str]] = {}
    for name, on in _ARCH_ONLY.items():
        arches.setdefault(on, []).append(name)
    syscalls += [{"names": names, "action": "SCMP_ACT_ALLOW", "includes": {"arches": list(on)}}
                 for on, names in arches.items()]
    syscalls += [{"names": _names(text), "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}}
                 for cap, text in _CAPABILITY_ONLY.items()]
    # Without CAP_SYS_ADMIN: clone only when no namespace flag is set (the flags are
    # clone's first argument on x86 and arm), and clone3 answers ENOSYS.
    syscalls.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                     "args": [_arg(0, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ")],
                     "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
                     "excludes": {"caps": ["CAP_SYS_ADMIN"]}})
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM,
            "archMap": [dict(entry, subArchitectures=list(entry["subArchitectures"])) for entry in ARCH_MAP],
            "syscalls": syscalls}
