"""OCI hooks: programs run at lifecycle points with the container's state on stdin.

Only imported when a config has hooks. Failure rules (runtime-spec, config.md):
prestart, createRuntime, createContainer and startContainer failures are
errors that stop the container; poststart and poststop failures are logged as
warnings and the lifecycle goes on.
"""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Any

from skiff.errors import HookError

log = logging.getLogger("skiff.runtime")
WARN_ONLY = ("poststart", "poststop")


def run_hooks(phase: str, hooks: dict[str, Any] | None, state: dict[str, Any],
              default_env: dict[str, str] | None = None) -> None:
    """Run every hook of ``phase`` in order; raise HookError or (for WARN_ONLY phases) log.

    ``default_env``: the environment of a hook without ``env``; None is the runtime's own.
    """
    for hook in (hooks or {}).get(phase, []) or []:
        try:
            run_hook(phase, hook, state, default_env)
        except HookError as exc:
            if phase not in WARN_ONLY:
                raise
            log.warning("%s", exc)


def run_hook(phase: str, hook: dict[str, Any], state: dict[str, Any],
             default_env: dict[str, str] | None = None) -> None:
    path = hook.get("path", "")
    args = hook.get("args") or [path]
    # No "env": the environment of the process that runs the hook, as runc's (Go's exec.Cmd with a
    # nil Env): the runtime's, or in the init the container process's; an "env", even empty, is the
    # whole environment (the runtime-spec gives it environ's semantics and says no more).
    env = default_env if hook.get("env") is None else dict(item.split("=", 1) for item in hook["env"] if "=" in item)
    timeout = hook.get("timeout")
    if timeout is not None and int(timeout) <= 0:
        raise HookError(f"{phase} hook {path}: timeout must be positive, not {timeout}")
    try:
        proc = subprocess.run(args, executable=path, input=json.dumps(state).encode(), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=int(timeout) if timeout else None, close_fds=True)
    except subprocess.TimeoutExpired:
        raise HookError(f"{phase} hook {path} did not finish within {timeout}s: killed") from None
    except OSError as exc:
        raise HookError(f"{phase} hook {path}: {exc.strerror}") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).decode(errors="replace").strip()
        raise HookError(f"{phase} hook {path} exited with status {proc.returncode}"
                        + (f": {detail}" if detail else ""))
