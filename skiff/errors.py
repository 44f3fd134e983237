"""The exception tree of skiff.

Every error a user can cause or meet is a ``SkiffError``. Each class knows the
exit code the CLI returns for it, so the CLI turns any of them into one line on
stderr and that code, never a traceback. This module imports nothing of skiff:
it sits at the bottom of the import graph.

Exit codes follow Docker: 125 when skiff itself fails (bad flag, unknown image),
126 when the command cannot be executed, 127 when it is not found. Commands that
only manage objects (``volume rm``, ``rmi``) exit 1, as Docker's do.
"""

from __future__ import annotations


class SkiffError(Exception):
    """Base of every error skiff reports to a user."""

    exit_code: int = 125
    # True: the CLI prints the message as it is (Docker's client's own lines), without "skiff: ".
    verbatim: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message

    def within(self, context: str) -> "SkiffError":
        """This error, its message prefixed with ``context: `` (Docker's daemon wraps some errors so:
        ``Cannot kill container: X: ...``); its type, and so its exit code, stay."""
        self.message = f"{context}: {self.message}"
        self.args = (self.message,)
        return self


# docker-py's names, for a user of skiff's Python API (skiff.Client) who catches them: every
# error of the API is a SkiffError, so both catch everything; NotFound, Conflict and
# InvalidArgument below carry the same names as docker-py's.
APIError = SkiffError
DockerException = SkiffError


class UsageError(SkiffError):
    """Bad command-line usage: unknown flag, missing argument, malformed value."""


class UnknownFlag(UsageError):
    """A flag the command does not have (abbreviations are not accepted): 125, as Docker's client."""

    verbatim = True


class InvalidFlagValue(UsageError):
    """A flag value Docker's client cannot parse (``--health-retries x``): its own lines, 125."""

    verbatim = True


class InvalidTimeValue(UsageError):
    """``events --since/--until`` that is neither a time nor a duration: Docker's client's text
    alone, status 1."""

    exit_code = 1
    verbatim = True


class ArgumentCountError(UsageError):
    """Too few or too many arguments for a command: Docker's client exits 1 for these."""

    exit_code = 1
    verbatim = True


class UnknownCommand(UsageError):
    """A command word skiff does not have: Docker's client says so and exits 1."""

    exit_code = 1
    verbatim = True


class GroupUsage(UsageError):
    """A command group (``skiff volume``) without one of its commands: Docker's client prints the
    group's usage, and exits 1 when the word given is not one of them, 0 when none was given."""

    verbatim = True

    def __init__(self, usage: str, *, exit_code: int) -> None:
        super().__init__(usage)
        self.exit_code = exit_code


class NotATerminal(UsageError):
    """``-it`` while stdin is not a terminal: Docker's client refuses it with status 1."""

    exit_code = 1
    verbatim = True


class NoFlagGiven(UsageError):
    """A command that needs at least one flag got none (``update``): Docker's client exits 1."""

    exit_code = 1
    verbatim = True


class ProcessListFailed(SkiffError):
    """``top``: the host's ps failed, or printed no PID column (Docker's daemon's text; 1)."""

    exit_code = 1


class InvalidArgument(SkiffError):
    """A value that parses but cannot be used (a relative path, a bad size)."""


class InvalidObjectType(InvalidArgument):
    """``inspect --type`` of a kind there is none of: Docker's client exits 1."""

    exit_code = 1


class InvalidFilter(InvalidArgument):
    """A ``--filter`` the command does not accept, or a value it cannot use: Docker's daemon's
    text (``Invalid filter 'x'``), and 1."""

    exit_code = 1


class FlagValueError(InvalidArgument):
    """A resource flag's value that does not parse (``invalid argument "X" for "--memory" flag:
    ...``): Docker's client refuses it itself. ``run`` reports it as any bad value; ``update``
    prints the client's lines as they are, before it looks at any container."""


class UnknownUser(InvalidArgument):
    """``-u NAME`` or ``-u USER:GROUP`` with a name the image's /etc/passwd or /etc/group lacks.
    ``run`` fails with 125, as for any bad value; ``exec`` with 126, as a command it cannot start."""


class NotFound(SkiffError):
    """An object skiff manages does not exist."""

    exit_code = 1


class Conflict(SkiffError):
    """The object exists or is in use in a way that forbids the operation."""

    exit_code = 1


class StateError(SkiffError):
    """Skiff's on-disk state is unreadable or locked by someone else."""


# --- images -----------------------------------------------------------------


class InvalidReference(InvalidArgument):
    """An image reference that does not follow Docker's grammar."""


class TagReferenceError(InvalidReference):
    """A ``tag`` source or target that is not a reference: Docker's client refuses it before
    asking the daemon, with a plain error (exit 1, not 125)."""

    exit_code = 1


class ImageNotFound(NotFound):
    """No image by that name, tag, digest or id in the local store."""


class ImageInUse(Conflict):
    """An image cannot be removed: a container uses it or it has several tags."""


class LayerError(SkiffError):
    """A layer is malformed, hostile, or its content does not match its digest."""


class ArchiveError(SkiffError):
    """An image archive (docker-archive, OCI layout, rootfs tarball) is invalid."""


class DigestMismatch(LayerError):
    """Bytes whose sha256 differs from the digest that names them."""


class BuildError(SkiffError):
    """A Dockerfile that does not parse, or a build step that failed (it names the step or line)."""

    exit_code = 1


class RegistryError(SkiffError):
    """A registry answered with an error, or could not be reached."""

    exit_code = 1


# --- containers -------------------------------------------------------------


class ContainerNotFound(NotFound):
    """No container by that name, id or unique id prefix."""


class ContainerConflict(Conflict):
    """A name already taken, or a container in the wrong state for the command."""


class ContainerNotRunning(Conflict):
    """The command needs a running container."""


class ContainerError(SkiffError):
    """The Python API's ``containers.run`` (not detached): the command exited non-zero. As
    docker-py's: ``container``, ``exit_status``, ``command``, ``image`` and ``stderr`` (bytes)."""

    exit_code = 1

    def __init__(self, container: object, exit_status: int, command: object, image: str,
                 stderr: bytes) -> None:
        text = stderr.decode(errors="replace").strip()
        super().__init__(f"Command '{command}' in image '{image}' returned non-zero exit status "
                         f"{exit_status}" + (f": {text}" if text else ""))
        self.container = container
        self.exit_status = exit_status
        self.command = command
        self.image = image
        self.stderr = stderr


# --- runtime ----------------------------------------------------------------


class RuntimeError_(SkiffError):
    """The OCI runtime core failed to create, start or manage a container.

    Named with a trailing underscore so it does not shadow the builtin.
    """


class BundleError(RuntimeError_):
    """An OCI bundle or its config.json is invalid."""


class ExecError(RuntimeError_):
    """The container's command could not be executed."""


class CommandNotFound(ExecError):
    """The container's command does not exist in the container."""

    exit_code = 127


class CommandNotExecutable(ExecError):
    """The container's command exists but cannot be executed."""

    exit_code = 126


class SyscallError(RuntimeError_):
    """A system call failed; the message names the call and the path."""

    def __init__(self, call: str, errno_: int, target: str = "", *, hint: str | None = None) -> None:
        import os

        detail = f" {target}" if target else ""
        super().__init__(f"{call}{detail}: {os.strerror(errno_)}", hint=hint)
        self.call = call
        self.errno = errno_
        self.target = target


class PathEscape(RuntimeError_):
    """A path from an image or a user would resolve outside the container root."""


class ContainerPathNotFound(NotFound):
    """``cp``: no such path in the container (Docker's words)."""

    def __init__(self, path: str, container: str) -> None:
        super().__init__(f"Could not find the file {path} in container {container}")


class ArchiveRefused(InvalidArgument):
    """``cp`` into a container: a tar entry or a destination that cannot be extracted safely."""


# --- volumes, network, cgroups ----------------------------------------------


class VolumeError(SkiffError):
    """A volume or mount specification is invalid."""


class VolumeRefused(VolumeError):
    """``volume create`` of what the volume store will not make (a bad name, bad driver options):
    Docker's daemon refuses it, so its client exits 1, not 125."""

    exit_code = 1


class VolumeNotFound(NotFound):
    """No volume by that name."""


class VolumeInUse(Conflict):
    """A volume is used by at least one container."""


class NetworkError(SkiffError):
    """Networking could not be set up or a network spec is invalid."""


class NetworkNotFound(NotFound):
    """No network by that name or id."""


class CgroupError(SkiffError):
    """Cgroups could not be set up, or a resource limit is invalid."""


class DeviceFilterError(CgroupError):
    """The eBPF device filter of a cgroup v2 could not be loaded, attached or replaced."""


class NetworkInUse(Conflict):
    """A network cannot be removed while containers are attached to it."""


class PortAllocated(NetworkError):
    """A host port to publish on is already taken by another container or process."""


class AddressInUse(NetworkError):
    """An address asked for with --ip is leased to another container."""


class RegistryNotFound(RegistryError, NotFound):
    """The registry has no such repository or manifest (the Engine API's 404, as Docker's)."""


class RegistryAuthError(RegistryError):
    """A registry or its token server refused the credentials, or the access they grant."""


class HookError(RuntimeError_):
    """An OCI hook (prestart, createRuntime, poststop...) failed or timed out."""


class InvalidSignal(InvalidArgument):
    """A signal name or number that does not exist (``kill -s SIGFOO``)."""

    exit_code = 1


# --- templates (--format) ----------------------------------------------------


class TemplateError(SkiffError):
    """A Go template given to --format that does not parse or fails on the object (exit 1, as
    Docker's; ``parse`` tells the two apart: Docker's inspect exits 64 on a parse error).
    ``prefix`` is what Docker 20.10 puts before Go's message: "template parsing error" for most
    commands, its own words for some (``ps``), none for others (``version``, ``info``)."""

    exit_code = 1

    def __init__(self, message: str, *, parse: bool = False, prefix: str = "template parsing error") -> None:
        super().__init__(message)
        self.parse = parse
        self.prefix = prefix

    def worded(self, prefix: str) -> "TemplateError":
        """The same error with the words another command of Docker's puts before Go's message."""
        return TemplateError(self.message, parse=self.parse, prefix=prefix)

    def __str__(self) -> str:
        return f"{self.prefix}: {self.message}" if self.prefix else self.message


class InvalidTemplate(TemplateError):
    """A ``--format`` that does not parse, given to a command that checks it before it looks
    anything up (``inspect``, ``version``, ``info``): Docker's client exits 64."""

    exit_code = 64

    def __init__(self, message: str) -> None:
        super().__init__(message, parse=True)


class DeviceError(SkiffError):
    """A device a container asks for (``--device``, ``--gpus``) that cannot be given to it."""


class CDIError(DeviceError):
    """A CDI spec that cannot be read or used, or a CDI device no spec defines; the message names
    the file and the field."""


def revived(name: str, message: str) -> SkiffError:
    """The error of class ``name`` (of this tree) with ``message``, for one that crossed a process
    boundary as text (the monitor's report of a failed start): its type, and so its exit code,
    survive. A class whose constructor takes more than a message gives its nearest ancestor that
    takes only one; a name not in this tree gives a SkiffError."""
    found = globals().get(name)
    cls = found if isinstance(found, type) and issubclass(found, SkiffError) else SkiffError
    for ancestor in cls.__mro__:
        if issubclass(ancestor, SkiffError) and getattr(ancestor, "__init__") is SkiffError.__init__:
            return ancestor(message)
    return SkiffError(message)
