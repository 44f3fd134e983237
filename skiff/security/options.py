"""``--security-opt``, read as Docker reads it, in two steps.

``normalize`` is the client's step: a ``seccomp=FILE`` value becomes
``seccomp=<the file's JSON, compacted>``, so the container's record (and
``inspect``'s ``HostConfig.SecurityOpt``) holds the profile itself and a later
``start`` does not depend on the file. ``parse`` is the daemon's step: each
value is checked and the result says what the container gets.

Accepted: ``seccomp=unconfined``, ``seccomp=PROFILE.json``,
``no-new-privileges[=true|false]``, ``label=disable`` and ``apparmor=unconfined``
(no-ops: skiff applies neither SELinux labels nor AppArmor profiles). Any other
``label=`` or ``apparmor=`` is refused rather than silently not applied, as Docker
20.10 would on a host without SELinux or AppArmor; the message says which the host lacks.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from skiff.errors import InvalidArgument

UNCONFINED = "unconfined"
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class SecurityOptions(NamedTuple):
    """What the options ask for: ``seccomp`` is None (the default profile), "unconfined" or a profile."""

    seccomp: Any = None
    no_new_privileges: bool = False


def _split(opt: str) -> tuple[str, str] | None:
    """KEY=VALUE, or the deprecated KEY:VALUE; None for a bare word."""
    for sep in ("=", ":"):
        key, found, value = opt.partition(sep)
        if found:
            return key, value
    return None


def normalize(values: Sequence[str]) -> list[str]:
    """The client's step: seccomp profile files read and compacted into the values."""
    import json

    out = []
    for opt in values:
        pair = _split(opt)
        if pair is None and opt != "no-new-privileges":
            # Docker 20.10's client refuses a bare word in these words, without a hint.
            raise InvalidArgument(f"Invalid --security-opt: {json.dumps(opt)}")
        if pair and pair[0] == "seccomp" and pair[1] != UNCONFINED:
            path = pair[1]
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise InvalidArgument(f"opening seccomp profile ({path}) failed: {reason}") from None
            try:
                profile = json.loads(text)
            except ValueError as exc:
                raise InvalidArgument(f"compacting json for seccomp profile ({path}) failed: {exc}") from None
            opt = "seccomp=" + json.dumps(profile, separators=(",", ":"))
        out.append(opt)
    return out


def parse(values: Sequence[str]) -> SecurityOptions:
    """The daemon's step: every value checked; a seccomp profile decoded (not yet resolved)."""
    seccomp: Any = None
    no_new_privileges = False
    for opt in values:
        if opt == "no-new-privileges":
            no_new_privileges = True
            continue
        pair = _split(opt)
        key, value = pair if pair else ("", "")
        if key == "seccomp" and value == UNCONFINED:
            seccomp = UNCONFINED
        elif key == "seccomp":
            seccomp = _decode_profile(value)
        elif key == "no-new-privileges" and value in _TRUE | _FALSE:
            no_new_privileges = value in _TRUE
        elif (key, value) in (("label", "disable"), ("apparmor", UNCONFINED)):
            continue
        elif key == "label":
            reason = ("skiff does not apply SELinux labels" if _selinux_enabled()
                      else "SELinux is not enabled on this host")
            raise InvalidArgument(f"invalid --security-opt: {_quote(opt)}: {reason}",
                                  hint="use label=disable or leave the option out")
        elif key == "apparmor":
            reason = ("skiff does not apply AppArmor profiles" if _apparmor_enabled()
                      else "AppArmor is not enabled on this host")
            raise InvalidArgument(f"invalid --security-opt: {_quote(opt)}: {reason}",
                                  hint="use apparmor=unconfined or leave the option out")
        else:
            raise InvalidArgument(f"invalid --security-opt: {_quote(opt)}",
                                  hint="use seccomp=unconfined, seccomp=PROFILE.json or no-new-privileges")
    return SecurityOptions(seccomp, no_new_privileges)


def _apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def _selinux_enabled() -> bool:
    import os

    return os.path.exists("/sys/fs/selinux/enforce")


def recorded(values: Sequence[str], privileged: bool, ipc: str, pid: str) -> list[str] | None:
    """HostConfig.SecurityOpt as Docker's daemon records it: ``label=disable`` added where it
    disables labelling itself (privileged, the host's IPC or PID namespace) and the user named no label."""
    out = list(values)
    if (privileged or ipc == "host" or pid == "host") and not any((parts := _split(v)) and parts[0] == "label"
                                                                  for v in values):
        out.append("label=disable")
    return out or None


def _decode_profile(text: str) -> Any:
    import json  # the engine has it loaded already (skiff.store)

    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"decoding seccomp profile failed: {exc}") from None


def _quote(text: str) -> str:
    import json

    return json.dumps(text)


def linux_seccomp(options: SecurityOptions, capabilities: Sequence[str]) -> dict[str, Any] | None:
    """The container's OCI ``linux.seccomp``: the default profile, the given one, or None (unconfined)."""
    from skiff.security.seccomp import default_seccomp, to_oci

    if options.seccomp == UNCONFINED:
        return None
    if options.seccomp is None:
        return default_seccomp(capabilities)
    return to_oci(options.seccomp, capabilities)
