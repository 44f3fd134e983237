"""The many-flag container whose inspect document is recorded from Docker (record.py) and
compared with skiff's (tests/e2e/test_inspect_shape.py): one list, so both sides stay alike."""

from __future__ import annotations

from pathlib import Path


def full_container_args(bind: Path, blkio_weight: bool) -> list[str]:
    """``run`` arguments for the "full" container. ``blkio_weight``: Docker drops a weight the
    host cannot apply with a warning; skiff refuses it, so its side leaves the flag out."""
    return ["-d", "--name", "full", "--network", "none", "-m", "64m", "--memory-reservation", "32m",
            "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "100",
            *(["--blkio-weight", "300"] if blkio_weight else []), "--ulimit", "nofile=1024:2048",
            "-v", "plain:/data", "-v", f"{bind}:/hostdir:ro", "--mount", "type=tmpfs,target=/mnt/t,tmpfs-size=1m",
            "--mount", "type=volume,source=v2,target=/v2", "--mount", f"type=bind,source={bind},target=/b",
            "--tmpfs", "/run:size=1m", "-e", "A=1", "-l", "k=v", "--entrypoint", "", "--restart", "on-failure:3",
            "--init", "-w", "/tmp", "-u", "0", "-h", "host", "--dns", "1.1.1.1", "--dns-search", "example.com",
            "--add-host", "a:1.2.3.4", "--stop-signal", "SIGINT", "--stop-timeout", "5", "--read-only",
            "--security-opt", "no-new-privileges", "--log-opt", "max-size=1m",
            "busybox", "sleep", "1000"]
