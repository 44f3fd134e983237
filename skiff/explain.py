"""``--explain``: the kernel-level steps of a container's life, told as they happen.

``skiff run --explain`` (and ``create``, ``start``, ``exec``, ``skiff-oci --explain``) writes
one step per line group to the user's stderr: its phase, how long it took, what it
does in plain words and the call that does it with its key arguments. ``--explain=json``
writes one JSON object per step instead: ``{"phase", "step", "call", "args", "ms"}``.

Off, this module costs nothing: ``on`` is False and every call site reads
``if explain.on:`` before it builds a word, so the hot path pays one attribute lookup.

The steps come from several processes (the skiff command, the container's init, the
monitor's helper, an init re-executed from the sealed interpreter): each holds a
duplicate of the user's stderr made by ``enable``, close-on-exec, and kept open by the
init only until its final execve (``fds()`` is what the init's fd sweeps must spare;
``exec_process`` closes it with every other fd above 2). A fresh interpreter gets it
back with ``resume(handoff())``. Each step is one write(2) on that shared descriptor, so
lines from two processes never mix and appear in the order they happened.

``ms`` is the time since the previous step of the same process (or since ``mark()``):
steps are reported right after their call, so it is the time that step took, the
Python that prepares the call included. Imports nothing of skiff (a leaf).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# The phases, in the order a container meets them.
IMAGE = "image/storage"
NAMESPACES = "namespaces"
MOUNTS = "mounts"
ROOT = "root"
CGROUPS = "cgroups"
NETWORK = "network"
SECURITY = "security"
PROCESS = "process"
TEARDOWN = "teardown"
PHASES = (IMAGE, NAMESPACES, MOUNTS, ROOT, CGROUPS, NETWORK, SECURITY, PROCESS, TEARDOWN)

on = False  # read by every call site: nothing else happens while it is False
_fd = -1  # our duplicate of the user's stderr (close-on-exec)
_json = False
_last_ns = 0  # monotonic time of this process's previous step
_FIRST_FD = 10  # above the fds a runtime passes into the container (--preserve-fds) in practice

HEADER = ("skiff --explain: each step as it happens: phase, milliseconds since the step before, "
          "what is done, and the call that does it\n")


def enable(mode: str = "text", fd: int = 2) -> None:
    """Start explaining on a duplicate of ``fd`` (the user's stderr); ``mode``: text or json."""
    global on, _fd, _json, _last_ns
    import fcntl
    import time  # noqa: F401 - loaded now: after pivot_root the host's library is out of reach

    if mode not in ("text", "json"):
        raise ValueError(f"--explain takes text or json, not {mode!r}")
    if mode == "json":
        import json  # noqa: F401 - as above: the init formats steps from inside the container's root
    _fd = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _FIRST_FD)
    _json = mode == "json"
    on = True
    _last_ns = _now()
    if not _json:
        _write(HEADER)


def handoff() -> str:
    """What a fresh interpreter needs to go on explaining (see ``resume``): "" when off."""
    return f"{'json' if _json else 'text'}:{_fd}" if on else ""


def resume(state: str | None) -> None:
    """In a fresh interpreter that kept our fd (``fds()``): explain on it, as ``handoff`` said."""
    global on, _fd, _json, _last_ns
    if not state:
        return
    mode, _, number = state.partition(":")
    if mode == "json":
        import json  # noqa: F401
    import time  # noqa: F401

    _fd, _json, on = int(number), mode == "json", True
    os.set_inheritable(_fd, False)
    _last_ns = _now()


def fds() -> tuple[int, ...]:
    """The descriptor a process that closes fds before exec must keep while it explains."""
    return (_fd,) if on else ()


def close() -> None:
    """Stop explaining in this process (the fd goes)."""
    global on, _fd
    if on:
        on = False
        try:
            os.close(_fd)
        except OSError:
            pass
        _fd = -1


def mark() -> None:
    """Start the clock of the next step now (work before it is not its own)."""
    global _last_ns
    if on:
        _last_ns = _now()


def step(phase: str, what: str, call: str = "", args: Mapping[str, object] | None = None) -> None:
    """Report one step that has just been done (call sites check ``on`` first)."""
    global _last_ns
    if not on:
        return
    now = _now()
    ms = (now - _last_ns) / 1e6
    _last_ns = now
    _write(format_json(phase, what, call, args, ms) if _json else format_text(phase, what, call, args, ms))


def _now() -> int:
    import time

    return time.monotonic_ns()


def _write(text: str) -> None:
    """One write(2): lines of two processes never interleave. Explaining never fails a container.

    SIGPIPE is blocked around the write: the init runs with it at its default (fatal) action, and
    a reader that has gone (``2>&1 | head``) must end the explanation, not the container.
    """
    import _signal  # built in: importable after pivot_root too

    data = text.encode(errors="replace")
    held = _signal.pthread_sigmask(_signal.SIG_BLOCK, {_SIGPIPE})
    try:
        while data:
            data = data[os.write(_fd, data):]
    except OSError:
        if _SIGPIPE not in held and _SIGPIPE in _signal.sigpending():
            _signal.sigtimedwait({_SIGPIPE}, 0)  # ours: taken back before the mask is restored
        close()
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, held)


_SIGPIPE = 13


# --- formatting (pure: tests/unit/test_explain.py) ---------------------------------------------

PHASE_WIDTH = max(len(p) for p in PHASES)
INDENT = " " * (PHASE_WIDTH + 13)
VALUE_LIMIT = 400


def format_text(phase: str, what: str, call: str, args: Mapping[str, object] | None, ms: float) -> str:
    """``phase  ms  what`` and, below it, ``call(key=value, ...)``."""
    line = f"{phase:<{PHASE_WIDTH}} {ms:8.2f} ms  {short_ids(what)}\n"
    rendered = ", ".join(f"{key}={render(value)}" for key, value in (args or {}).items())
    if call:
        composite = " " in call or "(" in call  # "open_tree + move_mount": arguments after a colon
        line += f"{INDENT}{call}: {rendered}\n" if composite else f"{INDENT}{call}({rendered})\n"
    elif rendered:
        line += f"{INDENT}{rendered}\n"
    return line


def format_json(phase: str, what: str, call: str, args: Mapping[str, object] | None, ms: float) -> str:
    import json

    return json.dumps({"phase": phase, "step": what, "call": call, "args": dict(args or {}),
                       "ms": round(ms, 3)}, default=str) + "\n"


def render(value: object) -> str:
    """A value as the text line shows it: lists joined by commas, long strings shortened."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={render(v)}" for k, v in value.items()) + "}"
    return shorten(short_ids(str(value)))


def short_ids(text: str) -> str:
    """Every run of exactly 64 hex digits (a container's id, a layer's) cut to its first 12, as
    ``docker ps`` shows them, so paths stay readable (``--explain=json`` keeps them whole)."""
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] in _HEX:
            j += 1
        if j == i:
            out.append(text[i])
            i += 1
            continue
        out.append(text[i:i + 12] if j - i == 64 else text[i:j])
        i = j
    return "".join(out)


_HEX = frozenset("0123456789abcdef")


def shorten(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text`` cut in the middle to ``limit`` characters (a path's ends say the most)."""
    if len(text) <= limit:
        return text
    keep = (limit - 5) // 2
    return f"{text[:keep]}[...]{text[-keep:]}"


def overlay_options(options: str, keep: int = 2) -> str:
    """overlay's mount options with a long ``lowerdir=`` list shortened: its first and last
    ``keep`` layers and how many are left out (the kernel's order: the top layer first)."""
    parts = []
    for option in _split_unescaped(options, ","):
        key, eq, value = option.partition("=")
        if key == "lowerdir" and eq:
            layers = _split_unescaped(value, ":")
            if len(layers) > 2 * keep + 1:
                hidden = len(layers) - 2 * keep
                value = ":".join([*layers[:keep], f"<{hidden} more layers>", *layers[-keep:]])
        parts.append(f"{key}{eq}{value}")
    return ",".join(parts)


def _split_unescaped(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where no backslash escapes it (overlayfs's own escaping)."""
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            current += char
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


_CLONE_FLAGS = (("CLONE_NEWNS", 0x00020000), ("CLONE_NEWCGROUP", 0x02000000), ("CLONE_NEWUTS", 0x04000000),
                ("CLONE_NEWIPC", 0x08000000), ("CLONE_NEWUSER", 0x10000000), ("CLONE_NEWPID", 0x20000000),
                ("CLONE_NEWNET", 0x40000000), ("CLONE_NEWTIME", 0x00000080))
_NAMESPACE_WORDS = {"CLONE_NEWNS": "mount", "CLONE_NEWCGROUP": "cgroup", "CLONE_NEWUTS": "UTS (hostname)",
                    "CLONE_NEWIPC": "IPC", "CLONE_NEWUSER": "user", "CLONE_NEWPID": "PID",
                    "CLONE_NEWNET": "network", "CLONE_NEWTIME": "time"}


def clone_flags(mask: int) -> str:
    """``CLONE_NEWNS|CLONE_NEWUTS``... for a mask of namespace flags."""
    return "|".join(name for name, bit in _CLONE_FLAGS if mask & bit) or "0"


def namespace_words(mask: int) -> str:
    """``mount, UTS (hostname) and IPC``: the namespaces of a mask, as a learner reads them."""
    words = [_NAMESPACE_WORDS[name] for name, bit in _CLONE_FLAGS if mask & bit]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1] if words else "no"


_MOUNT_FLAGS = (("MS_RDONLY", 0x1), ("MS_NOSUID", 0x2), ("MS_NODEV", 0x4), ("MS_NOEXEC", 0x8),
                ("MS_REMOUNT", 0x20), ("MS_BIND", 0x1000), ("MS_MOVE", 0x2000), ("MS_REC", 0x4000),
                ("MS_PRIVATE", 0x40000), ("MS_SLAVE", 0x80000), ("MS_SHARED", 0x100000))


def mount_flags(mask: int) -> str:
    """``MS_BIND|MS_REC``... for mount(2)'s flags."""
    return "|".join(name for name, bit in _MOUNT_FLAGS if mask & bit) or "0"


def mount_entry(entry: Mapping[str, object]) -> tuple[str, str, dict[str, object]]:
    """One config.json ``mounts`` entry as (what, call, args)."""
    options = [str(o) for o in entry.get("options") or []]  # type: ignore[attr-defined]
    kind = str(entry.get("type") or "")
    source, target = str(entry.get("source") or kind), str(entry.get("destination"))
    if kind == "bind" or "bind" in options or "rbind" in options:
        what = f"bind {source} to {target}" + (" (read-only)" if "ro" in options else "")
        call = "open_tree(OPEN_TREE_CLONE) + move_mount"
        return what, call, {"source": source, "target": target, "options": ",".join(options)}
    what = f"mount a new {kind} at {target}" if kind else f"mount {target}"
    return what, "mount", {"source": source, "target": target, "type": kind, "options": ",".join(options)}


def capability_words(kept: Iterable[str], dropped: Iterable[str]) -> str:
    kept, dropped = list(kept), list(dropped)
    return f"keep {len(kept)} capabilities, drop the other {len(dropped)} from the bounding set"


__all__ = ["enable", "step", "mark", "fds", "handoff", "resume", "close", "on", "PHASES"]
