"""``skiff check``: whether this host has what skiff needs, one requirement per line.

Each requirement is a ``Result``: a stable ``name`` (``kernel``, ``namespace.pid``,
``cgroup.memory`` ...), a ``status`` (``ok``, ``warn`` or ``fail``), a short ``detail``
and, when it is not ok, the ``fix``: the command or setting that makes it ok. ``fail`` is
for what every container needs (a plain ``skiff run`` would fail); ``warn`` for what only
some flags or commands need (``--memory``, ``--init``, user namespaces ...).

The probes read the host through a ``Host`` (skiff.check.host): its /proc, /sys and /etc
can be a fake tree (the unit tests), and what no file tells (a system call, a library) is
one method each, which the tests replace. The probes that make system calls do what skiff
does on a detached mount, in a child that exits, or on an fd closed at once: they leave
nothing behind (skiff.check.calls).

The detection itself stays where skiff uses it (skiff.cgroups.detect, skiff.linux,
skiff.network.firewall, skiff.runtime.idmap): this package only asks it and words the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable

    from skiff.check.host import Host

OK, WARN, FAIL = "ok", "warn", "fail"


class Result(NamedTuple):
    """One requirement: its name, ok/warn/fail, what was found, and what fixes it ("" when ok)."""

    name: str
    status: str
    detail: str
    fix: str = ""


def run_checks(host: Host) -> list[Result]:
    """Every requirement, in the order ``skiff check`` prints them."""
    from skiff.check import cgroup, kernel, net, system

    probes: list[Callable[[Host], Iterable[Result]]] = [
        system.privileges, kernel.kernel_version, kernel.namespaces, kernel.user_namespaces,
        cgroup.cgroups, kernel.overlay, kernel.syscalls, kernel.seccomp, net.firewall, net.sysctls,
        system.id_ranges, system.disk, system.runtime_pieces,
    ]
    results: list[Result] = []
    for probe in probes:
        try:
            results.extend(probe(host))
        except Exception as exc:  # a probe that breaks on an odd host says so and the others still run
            if host.debug:
                raise
            results.append(Result(probe.__name__, FAIL, f"the probe itself failed: {type(exc).__name__}: {exc}",
                                  "run `skiff --debug check` and report it"))
    return results


def passed(results: Iterable[Result]) -> bool:
    """Whether skiff can run containers here: no requirement failed (warnings do not count)."""
    return all(result.status != FAIL for result in results)


__all__ = ["FAIL", "OK", "WARN", "Result", "passed", "run_checks"]
