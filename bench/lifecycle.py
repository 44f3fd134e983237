#!/usr/bin/env python3
"""Lifecycle costs: `run -d` vs foreground `run`, an idle monitor's PSS, `exec` vs `run --rm true`.

    sudo .venv/bin/python bench/lifecycle.py [-n RUNS] [--via installed|module]

Targets (issue 7): `run -d` within the foreground `run --rm true` time + 10 ms; an
idle monitor at most 5 MB PSS (from /proc/PID/smaps) with no other Python process on
the host; `exec` at most 1.5x `run --rm true`. Medians of RUNS; a temporary skiff root;
nothing is left behind.

Commands run as users run them (issue 21): the installed launcher, /usr/local/bin/skiff
when it is this checkout's (else the same launcher, written by scripts/install-launchers
into the temporary directory), with a clean environment. ``--via module`` runs
``python -m skiff`` instead. A monitor's PSS is shown twice: as measured, and "alone",
its interpreter's pages counted whole: what it is with no other Python process on the
host (this benchmark is one, and shares them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sandbox import private_skiff

REPO = Path(__file__).resolve().parent.parent
INSTALLED = Path("/usr/local/bin/skiff")
SKIFF: list[str] = []


def installed_command(tmp: Path) -> list[str]:
    """The installed launcher of this checkout: /usr/local/bin/skiff, or the same one written here."""
    bindir = tmp / "bin"
    subprocess.run([str(REPO / "scripts" / "install-launchers"), str(bindir)], check=True)
    ours = (bindir / "skiff").read_text()
    if INSTALLED.exists() and INSTALLED.read_text() == ours:
        return [str(INSTALLED)]
    print(f"{INSTALLED} is not this checkout's launcher: using the same one in {bindir}")
    return [str(bindir / "skiff")]


def user_env(env: dict[str, str]) -> dict[str, str]:
    """A clean environment, as from a login shell: PATH and skiff's own variables."""
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            **{k: v for k, v in env.items() if k.startswith("SKIFF_")}}


def timed(cmd: list[str], runs: int, env: dict[str, str], after=None) -> float:  # noqa: ANN001
    samples = []
    for i in range(runs + 1):
        start = time.perf_counter()
        out = subprocess.run(cmd, env=env, check=True, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if i:
            samples.append((time.perf_counter() - start) * 1000)
        if after:
            after(out.stdout.strip())
    return statistics.median(samples)


def pss_kb(pid: int) -> tuple[int, int, int]:
    """(PSS, PSS alone, RSS) in kB.

    Alone, the mappings of the interpreter count whole (Rss, not Pss); RSS counts every
    page whole, even libc's: no PSS can be larger.
    """
    interpreter = os.path.realpath(f"/proc/{pid}/exe")
    pss = alone = rss = 0
    path = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and not fields[0].endswith(":"):
            path = fields[5] if len(fields) >= 6 else ""
        elif fields[0] == "Pss:":
            pss += int(fields[1])
            alone += int(fields[1]) if path != interpreter else 0
        elif fields[0] == "Rss:":
            rss += int(fields[1])
            alone += int(fields[1]) if path == interpreter else 0
    return pss, alone, rss


def other_pythons(monitors: set[int]) -> int:
    """Processes running Python on the host, besides the monitors measured."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in monitors:
            try:
                count += "python" in os.path.basename(os.readlink(f"/proc/{entry}/exe"))
            except OSError:
                pass
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    parser.add_argument("--via", choices=("installed", "module"), default="installed",
                        help="the installed launcher (default) or python -m skiff")
    args = parser.parse_args()
    runs = args.runs
    with private_skiff() as (tmp, env):
        SKIFF[:] = installed_command(tmp) if args.via == "installed" else [sys.executable, "-m", "skiff"]
        if args.via == "installed":
            env = user_env(env)
        subprocess.run([str(REPO / "scripts" / "busybox-rootfs"), str(tmp / "bb.tar")], check=True)
        subprocess.run(SKIFF + ["import", str(tmp / "bb.tar"), "busybox:latest"], env=env, check=True,
                       capture_output=True)
        net = ["--network", "none"]
        try:
            fg = timed(SKIFF + ["run", "--rm", *net, "busybox", "true"], runs, env)
            rm = lambda cid: subprocess.run(SKIFF + ["rm", "-f", cid], env=env, capture_output=True)  # noqa: E731
            detached = timed(SKIFF + ["run", "-d", *net, "busybox", "sleep", "600"], runs, env, after=rm)
            cid = subprocess.run(SKIFF + ["run", "-d", *net, "busybox", "sleep", "600"], env=env, check=True,
                                 capture_output=True, text=True).stdout.strip()
            time.sleep(1.5)  # the loop gives back its start-up pages once quiet for 0.5 s
            record = json.loads((tmp / "root" / "containers" / cid / "container.json").read_text())
            monitor = record["State"]["MonitorPid"]
            pss = pss_kb(monitor)
            exec_ms = timed(SKIFF + ["exec", cid, "true"], runs, env)
            # A terminal container's monitor also holds the pty master and serves attach clients.
            tty_cid = subprocess.run(SKIFF + ["run", "-itd", *net, "busybox", "sh"], env=env, check=True,
                                     capture_output=True, text=True).stdout.strip()
            time.sleep(1.5)
            tty_record = json.loads((tmp / "root" / "containers" / tty_cid / "container.json").read_text())
            tty_pss = pss_kb(tty_record["State"]["MonitorPid"])
            pythons = other_pythons({monitor, tty_record["State"]["MonitorPid"]})
            # Foreground through the monitor (create + start -a), as `run -it` goes, against the direct path.
            created = []
            make = lambda: created.append(subprocess.run(  # noqa: E731
                SKIFF + ["create", "--rm", *net, "busybox", "true"], env=env, check=True, capture_output=True,
                text=True).stdout.strip())
            samples = []
            for i in range(runs + 1):
                make()
                start = time.perf_counter()
                subprocess.run(SKIFF + ["start", "-a", created[-1]], env=env, check=True, capture_output=True)
                if i:
                    samples.append((time.perf_counter() - start) * 1000)
            attached = statistics.median(samples)
        finally:
            ids = subprocess.run(SKIFF + ["ps", "-aq", "--no-trunc"], env=env, capture_output=True,
                                 text=True).stdout.split()
            if ids:
                subprocess.run(SKIFF + ["rm", "-f", *ids], env=env, capture_output=True)
    print(f"run --rm true (foreground)  {fg:7.1f} ms")
    print(f"run -d sleep                {detached:7.1f} ms   (+{detached - fg:.1f} ms; target <= +10 ms)")
    print(f"skiff command               {' '.join(SKIFF)}")
    print(f"idle monitor PSS            {pss[0] / 1024:7.2f} MB   ({other_pythons_text(pythons)})")
    print(f"idle monitor PSS alone      {pss[1] / 1024:7.2f} MB   (target <= 5 MB; RSS {pss[2] / 1024:.2f} MB)")
    print(f"idle monitor PSS, -it       {tty_pss[0] / 1024:7.2f} MB   (alone {tty_pss[1] / 1024:.2f} MB, "
          f"RSS {tty_pss[2] / 1024:.2f} MB; target <= 5 MB)")
    print(f"exec true                   {exec_ms:7.1f} ms   ({exec_ms / fg:.2f}x run --rm true; target <= 1.5x)")
    print(f"start -a (created, --rm)    {attached:7.1f} ms   (the monitor path of a foreground run; "
          f"{attached / fg:.2f}x the direct path)")
    return 0


def other_pythons_text(count: int) -> str:
    return f"{count} other Python process{'es' if count != 1 else ''} on the host share its interpreter"


if __name__ == "__main__":
    sys.exit(main())
