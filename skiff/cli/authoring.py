"""``skiff cp``, ``export``, ``diff`` (containers), ``history`` (images) and ``push`` (registries):
the commands that take what a container or an image holds somewhere else.

Thin over the engine (skiff.engine.copying, skiff.engine.archive, skiff.engine.images,
skiff.registry.pusher). Every failure exits 1, as Docker 20.10's client (its daemon's errors and
its own); only a flag it does not know is 125.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from skiff.cli.commands import Command, add_commands
from skiff.cli.errors import ExitCodes
from skiff.cli.main import engine_from, paths_from
from skiff.errors import SkiffError

EXIT_CODES: ExitCodes = {SkiffError: 1}


def register(sub: argparse._SubParsersAction) -> None:
    add_commands(sub, COMMANDS)
    add_commands(sub, IMAGE_COMMANDS)


# --- cp ------------------------------------------------------------------------------------------


def add_cp_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--archive", action="store_true", help="archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="always follow symbol link in SRC_PATH")
    p.add_argument("source", metavar="SRC_PATH")
    p.add_argument("dest", metavar="DEST_PATH")
    p.set_defaults(func=cmd_cp, exit_codes=EXIT_CODES)


def cmd_cp(args: argparse.Namespace) -> int:
    from skiff.engine.copying import copy

    copy(engine_from(args), args.source, args.dest, archive_mode=args.archive, follow_link=args.follow_link)
    return 0


# --- export, diff --------------------------------------------------------------------------------


def add_export_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_export, exit_codes=EXIT_CODES)


def cmd_export(args: argparse.Namespace) -> int:
    from skiff.engine import archive
    from skiff.errors import UsageError

    if not args.output and sys.stdout.isatty():
        # Docker's words: it refuses to write a tar on a terminal
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    engine = engine_from(args)
    container = engine.find(args.container)
    if not args.output:
        archive.export(container, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    _export_to_file(container, args.output)
    return 0


def _export_to_file(container: Any, output: str) -> None:
    """As Docker's client (command.CopyToFile): the path checked first, the tar written to a
    temporary file beside it, renamed over it when complete."""
    import os
    import tempfile

    from skiff.engine import archive
    from skiff.engine.copying import validate_output_path
    from skiff.errors import InvalidArgument

    try:
        validate_output_path(output)
    except SkiffError as exc:
        raise InvalidArgument(f"failed to export container: {exc.message}") from None
    directory = os.path.dirname(os.path.abspath(output))
    fd, temp = tempfile.mkstemp(prefix=".docker_temp_", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            archive.export(container, out)
        os.chmod(temp, 0o644)
        os.rename(temp, output)
    except BaseException:
        os.unlink(temp)
        raise


def add_diff_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.set_defaults(func=cmd_diff, exit_codes=EXIT_CODES)


DIFF_KINDS = {0: "C", 1: "A", 2: "D"}


def cmd_diff(args: argparse.Namespace) -> int:
    from skiff.engine import archive

    engine = engine_from(args)
    for change in archive.changes(engine.find(args.container)):
        print(f"{DIFF_KINDS[change['Kind']]} {change['Path']}")
    return 0


# --- history -------------------------------------------------------------------------------------

HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_TABLE_RAW = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"  # -H=false
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT", "Tags": "TAGS"}
HISTORY_TYPE = "*formatter.historyContext"
CREATED_BY_WIDTH = 45   # Docker's history table: CREATED BY cut to 45 cells


def add_history_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", help="pretty-print history using a Go template")
    p.add_argument("-H", "--human", type=_go_bool, nargs="?", const=True, default=True, metavar="true|false",
                   help="print sizes and dates in human readable format (default true)")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument("image", metavar="IMAGE")
    p.set_defaults(func=cmd_history, exit_codes=EXIT_CODES)


def _go_bool(text: str) -> bool:
    """A Go boolean flag's value (``-H=false``), as strconv.ParseBool reads it."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise argparse.ArgumentTypeError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def cmd_history(args: argparse.Namespace) -> int:
    from skiff.cli import listing
    from skiff.engine import images
    from skiff.errors import ImageNotFound

    try:
        entries = images.history(paths_from(args), args.image)
    except ImageNotFound:
        raise ImageNotFound(f"No such image: {_named(args.image)}") from None
    rows = [history_row(entry, human=args.human, trunc=not args.no_trunc) for entry in entries]
    default = HISTORY_TABLE if args.human else HISTORY_TABLE_RAW
    fmt = args.format or default
    if args.quiet:
        fmt = "{{.ID}}"
    elif fmt == "table":
        fmt = default
    listing.print_rows(fmt, rows, HISTORY_HEADERS, default, HISTORY_TYPE)
    return 0


def _named(ref: str) -> str:
    """An image as Docker's daemon names one it lacks: ``busybox`` is ``busybox:latest``."""
    from skiff.image.reference import is_image_id, parse_reference

    if is_image_id(ref):
        return ref
    try:
        return parse_reference(ref).with_default_tag().familiar
    except SkiffError:
        return ref


def history_row(entry: dict[str, Any], human: bool = True, trunc: bool = True,
                now: float | None = None) -> dict[str, Any]:
    """One entry as Docker's historyContext shows it (cli/command/image/formatter_history.go)."""
    import time

    from skiff.cli.listing import ellipsis
    from skiff.units import human_duration, human_size

    image_id = str(entry["Id"])
    if trunc and image_id != "<missing>":
        image_id = image_id.removeprefix("sha256:")[:12]
    created = int(entry["Created"])
    created_at = _rfc3339(created)
    since = f"{human_duration((now or time.time()) - created)} ago" if human else created_at
    created_by = str(entry["CreatedBy"]).replace("\t", " ")
    size = int(entry["Size"])
    return {"ID": image_id, "CreatedSince": since, "CreatedAt": created_at,
            "CreatedBy": ellipsis(created_by, CREATED_BY_WIDTH) if trunc else created_by,
            "Size": human_size(size) if human else str(size), "Comment": str(entry["Comment"]),
            "Tags": ", ".join(entry["Tags"] or [])}


def _rfc3339(seconds: int) -> str:
    """Go's time.Unix(s, 0).Format(time.RFC3339): local time, ``Z`` for UTC, else the offset."""
    import time

    local = time.localtime(seconds)
    offset = local.tm_gmtoff or 0
    zone = "Z" if offset == 0 else f"{'+' if offset > 0 else '-'}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + zone


# --- push ----------------------------------------------------------------------------------------


def add_push_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all-tags", action="store_true", help="push all tagged images in the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    p.add_argument("--disable-content-trust", action="store_true", default=True, help=argparse.SUPPRESS)
    p.add_argument("reference", metavar="NAME[:TAG]")
    p.set_defaults(func=cmd_push, exit_codes=EXIT_CODES)


def cmd_push(args: argparse.Namespace) -> int:
    from skiff.registry import push

    push(paths_from(args), args.reference, all_tags=args.all_tags, quiet=args.quiet, out=sys.stdout)
    return 0


COMMANDS = (
    Command("cp", add_cp_flags, "copy files/folders between a container and the local filesystem"),
    Command("export", add_export_flags, "export a container's filesystem as a tar archive"),
    Command("diff", add_diff_flags, "inspect changes to files or directories on a container's filesystem"),
)
IMAGE_COMMANDS = (
    Command("history", add_history_flags, "show the history of an image"),
    Command("push", add_push_flags, "push an image or a repository to a registry"),
)
