"""The per-container monitor: what conmon is to podman.

One small process per detached container holds it: it is the container init's
parent (a child subreaper, so the init is reparented to it when the short-lived
helper that created it exits), copies its stdout and stderr into the json-file
log, reaps it, records the exit, and applies the restart policy. There is no
daemon beyond these monitors.

Three phases, three programs, so that the idle phase stays small:

* ``launch``  (full skiff, forked): creates and starts the container through the
  runtime core in a forked helper, then execs the idle loop.
* ``idle``    (a bare ``python -I -S`` running ``idle.py``, stdlib only): logs and
  waits. Nothing of skiff is imported, so an idle monitor costs a few MB.
* ``after``   (full skiff, exec'd once the container ended): records the exit,
  then either restarts (back to ``launch``) or releases the resources and exits.

The idle loop also holds the container's terminal (``-t``: the pty master,
received from the runtime core through a console socket) or the write end of its
stdin (``-i``), and serves ``skiff attach`` clients on ``attach.sock`` in the
container dir; a foreground ``run -t`` is ``run -d`` plus attach, as in Docker.

The monitor's pid and start time are in the record (``MonitorPid``,
``MonitorStart``); a command that finds the monitor gone finishes the container
itself (``Engine.reconcile``).

Where it lives: beside the engine, with a one-way import. The monitor uses the
engine's lower modules only (``containers`` for the record, ``state`` for every
change of its State, ``teardown`` to let go, ``events``, ``health``), never
``engine/engine.py``: ``Engine`` starts monitors, monitors do not call back
into ``Engine``. It stays a package of its own rather than moving under
``skiff/engine/`` because its phases are separate programs with their own
import budget (``idle.py`` is run by path and imports nothing of skiff; ``after``
and ``health`` are started by module name from records and command lines that
live processes already hold), so its place is part of an interface, not only a
layout.
"""
