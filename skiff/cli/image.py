"""`skiff` commands for images: import, load, save, images, tag, rmi, image inspect."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skiff.image.store import ImageStore

from skiff.cli.errors import report

def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    _add_import(sub, "import")
    _add_load(sub, "load")
    _add_save(sub, "save")
    _add_images(sub, "images")
    _add_tag(sub, "tag")
    _add_rmi(sub, "rmi")

    group = sub.add_parser("image", help="manage images")
    image_sub = group.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=type(group))
    image_sub.required = True
    _add_images(image_sub, "ls", aliases=["list"])
    _add_rmi(image_sub, "rm", aliases=["remove"])
    _add_inspect(image_sub, "inspect")
    _add_import(image_sub, "import")
    _add_load(image_sub, "load")
    _add_save(image_sub, "save")
    _add_tag(image_sub, "tag")
    _add_prune(image_sub, "prune")
    from skiff.cli import authoring
    from skiff.cli.commands import add_commands
    add_commands(image_sub, authoring.IMAGE_COMMANDS)


# --- parsers ------------------------------------------------------------------


def _add_import(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="create an image from a root filesystem tarball")
    p.add_argument("file", metavar="FILE|-", help="a tar archive (plain, gzip or zstd), or - for stdin")
    p.add_argument("reference", metavar="NAME[:TAG]", nargs="?")
    p.add_argument("-c", "--change", action="append", default=[],
                   help="apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, ...) to the image")
    p.add_argument("-m", "--message", default="", help="commit message for the imported image")
    p.set_defaults(func=cmd_import)


def _add_load(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="load images from a docker-archive or OCI archive")
    p.add_argument("-i", "--input", help="read from this file instead of stdin")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=cmd_load)


def _add_save(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="save images to an OCI archive (also readable by docker load)")
    p.add_argument("images", metavar="IMAGE", nargs="+")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_save)


def _add_images(sub: argparse._SubParsersAction, name: str, aliases: list[str] | None = None) -> None:
    p = sub.add_parser(name, aliases=aliases or [], help="list images")
    p.add_argument("repository", nargs="?", help="only images of this repository[:tag]")
    p.add_argument("-q", "--quiet", action="store_true", help="only image ids")
    p.add_argument("-a", "--all", action="store_true", help="include intermediate images")
    p.add_argument("--no-trunc", action="store_true", help="full image ids")
    p.add_argument("--digests", action="store_true", help="show the registry digests images were pulled by")
    p.add_argument("--format", help="pretty-print images using a Go template ('table ...', 'json')")
    from skiff.cli.filterflags import add_filter_flag

    add_filter_flag(p, "filter output: dangling, label, before, since, reference")
    p.set_defaults(func=cmd_images)


def _add_prune(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="remove unused images")
    p.add_argument("-a", "--all", action="store_true", help="remove every image no container uses, not only untagged ones")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    from skiff.cli.filterflags import add_filter_flag

    add_filter_flag(p, "provide filter values (until=, label=, label!=, dangling=)", short=False)
    p.set_defaults(func=cmd_prune)


def _add_tag(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="give an image another name")
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    p.set_defaults(func=cmd_tag)


def _add_rmi(sub: argparse._SubParsersAction, name: str, aliases: list[str] | None = None) -> None:
    p = sub.add_parser(name, aliases=aliases or [], help="remove images")
    p.add_argument("images", metavar="IMAGE", nargs="+")
    p.add_argument("-f", "--force", action="store_true", help="remove even if tagged several times or in use")
    p.set_defaults(func=cmd_rmi)


def _add_inspect(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(name, help="show images as JSON")
    p.add_argument("-f", "--format", help="format the output using a Go template ('json': the documents)")
    p.add_argument("images", metavar="IMAGE", nargs="+")
    p.set_defaults(func=cmd_inspect)


# --- handlers -----------------------------------------------------------------


def _store(args: argparse.Namespace) -> ImageStore:
    from skiff.cli.main import paths_from
    from skiff.image.store import ImageStore

    return ImageStore(paths_from(args))


def cmd_import(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.file == "-":
        image = store.import_tarball(sys.stdin.buffer, args.reference, args.change, args.message, "-")
    else:
        with open(args.file, "rb") as f:
            image = store.import_tarball(f, args.reference, args.change, args.message, args.file)
    print(image.id)
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.input and args.input != "-":
        with open(args.input, "rb") as f:
            lines = store.load(f)
    else:
        if sys.stdin.isatty():
            from skiff.errors import UsageError

            raise UsageError("requested load from stdin, but stdin is empty", hint="use -i FILE")
        lines = store.load(sys.stdin.buffer)
    if not args.quiet:
        for loaded in lines:
            # Docker names what it loaded, or gives the id of an image that came without a name.
            print(f"Loaded image ID: {loaded}" if loaded.startswith("sha256:") else f"Loaded image: {loaded}")
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    store = _store(args)
    if not args.output and sys.stdout.isatty():
        from skiff.errors import UsageError

        raise UsageError("cowardly refusing to save to a terminal", hint="use -o FILE or redirect stdout")
    store.save(args.images, args.output or None)
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from skiff.cli.filterflags import filter_args
    from skiff.cli.format import human_size, table, time_ago
    from skiff.engine.filters import image_list_filter

    filters = filter_args(args)
    if args.repository:  # as Docker's client: IMAGE is a reference filter
        filters.fields.setdefault("reference", []).append(args.repository)
    store = _store(args)
    listed_names = image_list_filter(store.paths, filters)
    rows: list[tuple[str, ...]] = []
    template_rows: list[dict[str, Any]] = []
    for image in store.list():
        listed = listed_names(image)
        if listed is None:
            continue
        image_id = image.id if args.no_trunc else image.short_id
        names = [_split_tag(tag) for tag in listed[0]] or [("<none>", "<none>")]
        digests = dict(d.split("@", 1) for d in listed[1])
        if args.digests:  # Docker also lists a repository known only by digest, with tag <none>
            names += [(repo, "<none>") for repo in digests if repo not in {n for n, _ in names}]
            names = [n for n in names if n != ("<none>", "<none>")] or [("<none>", "<none>")]
        for repository, tag in names:
            row: tuple[str, ...] = (repository, tag)
            if args.format:
                from skiff.cli.listing import image_row

                template_rows.append(image_row(image, repository, tag, digests.get(repository, "<none>"),
                                               args.no_trunc))
            if args.digests:
                row += (digests.get(repository, "<none>"),)
            rows.append(row + (image_id, time_ago(image.created), human_size(image.size)))
    if args.format and not (args.quiet and args.format == "table"):
        from skiff.cli import listing

        default = listing.IMAGE_TABLE_DIGESTS if args.digests else listing.IMAGE_TABLE
        listing.print_rows(args.format, template_rows, listing.IMAGE_HEADERS, default, listing.IMAGE_TYPE)
        return 0
    if args.quiet:
        seen: list[str] = []
        for row in rows:
            if row[-3] not in seen:
                seen.append(row[-3])
        print("\n".join(seen)) if seen else None
        return 0
    headers = ("REPOSITORY", "TAG", *(("DIGEST",) if args.digests else ()), "IMAGE ID", "CREATED", "SIZE")
    print(table(headers, rows))
    return 0


def _split_tag(familiar: str) -> tuple[str, str]:
    name, _, tag = familiar.rpartition(":")
    return name, tag


def cmd_prune(args: argparse.Namespace) -> int:
    from skiff.cli.filterflags import filter_args
    from skiff.cli.format import human_size
    from skiff.engine.filters import image_prune_filter

    include, all_images = image_prune_filter(filter_args(args, "--filter"), args.all)
    if not args.force and sys.stdin.isatty():
        what = "all images without at least one container associated to them" if all_images else "all dangling images"
        answer = input(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    from skiff.cli.main import paths_from
    from skiff.engine import images

    deleted, reclaimed = images.prune(paths_from(args), all_images=all_images, include=include)
    if deleted:
        print("Deleted Images:")
        for image_id in deleted:
            print(f"deleted: {image_id}")
        print()
    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    _store(args).tag(args.source, args.target)
    return 0


def cmd_rmi(args: argparse.Namespace) -> int:
    from skiff.cli.main import paths_from
    from skiff.engine import images
    from skiff.errors import ImageNotFound, SkiffError

    paths = paths_from(args)
    status = 0
    for ref in args.images:
        try:
            for line in images.remove(paths, ref, force=args.force):
                print(line)
        except ImageNotFound:
            # Docker's client says this itself, naming the image as it was given (no ':latest')
            report(f"No such image: {ref}")
            status = 1
        except SkiffError as exc:
            report(exc)
            status = 1
    return status


def cmd_inspect(args: argparse.Namespace) -> int:
    from skiff.cli.listing import check_template, print_documents
    from skiff.errors import ImageNotFound

    check_template(args.format)
    store = _store(args)
    found: list[dict[str, Any]] = []
    missing: list[str] = []
    for ref in args.images:
        try:
            found.append(store.inspect(ref))
        except ImageNotFound:
            missing.append(ref)
    status = print_documents(found, args.format)
    for ref in missing:
        report(f"No such image: {ref}")
    return 1 if missing else status
