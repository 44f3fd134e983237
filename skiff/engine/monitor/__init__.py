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
* ``after``   (full skiff, run by the idle loop's interpreter once the container ended): records the exit,
  then either restarts (back to ``launch``) or releases the resources and exits.

The idle loop also holds the container's terminal (``-t``: the pty master,
received from the runtime core through a console socket) or the write end of its
stdin (``-i``), and serves ``skiff attach`` clients on ``attach.sock`` in the
container dir; a foreground ``run -t`` is ``run -d`` plus attach, as in Docker.

The monitor's pid and start time are in the record (``MonitorPid``,
``MonitorStart``); a command that finds the monitor gone finishes the container
itself (``Engine.reconcile``).

Where it lives: under the engine, as the engine's per-container process, with
imports one way. The monitor uses the engine's lower modules only
(``containers`` for the record, ``state`` for every change of its State,
``teardown`` to let go, ``events``, ``health``), never ``engine/engine.py``:
``Engine`` starts monitors, monitors do not call back into ``Engine``
(tests/unit/test_import_graph.py keeps both rules). Its phases are separate
programs with their own import budget: ``idle.py`` is run by path and imports
nothing of skiff; ``after`` and ``health`` are started by module name. A monitor
started by an older skiff that named ``skiff.monitor.after`` fails to exec it
when its container ends; the next skiff command then finds the monitor gone and
records the exit itself (``Engine.reconcile``), as after any monitor crash.
"""
