"""`skiff build`, `skiff commit` and `skiff builder prune`: making images (skiff.build, skiff.engine.commit)."""

from __future__ import annotations

import argparse
import sys

from skiff.errors import SkiffError, UsageError

# As Docker's client: every failure of the daemon's build or commit exits 1; a bad flag value 125.
EXIT_CODES: dict[type[SkiffError], int] = {SkiffError: 1, UsageError: 125}


def register(sub: argparse._SubParsersAction) -> None:
    _add_build(sub.add_parser("build", help="build an image from a Dockerfile"))
    _add_commit(sub.add_parser("commit", help="create a new image from a container's changes"))
    group = sub.add_parser("builder", help="manage builds")
    builder_sub = group.add_subparsers(dest="builder_command", metavar="COMMAND", parser_class=type(group))
    builder_sub.required = True
    _add_builder_build = builder_sub.add_parser("build", help="build an image from a Dockerfile")
    _add_build(_add_builder_build)
    prune = builder_sub.add_parser("prune", help="remove build cache")
    prune.add_argument("-a", "--all", action="store_true", help="remove all unused build cache")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    prune.set_defaults(func=cmd_builder_prune, exit_codes=EXIT_CODES)


def _add_build(p: argparse.ArgumentParser) -> None:
    p.add_argument("context", metavar="PATH|-", help="the build context: a directory, or - for a tar or a Dockerfile on stdin")
    p.add_argument("-t", "--tag", action="append", default=[], help="name and optionally a tag (NAME[:TAG])")
    p.add_argument("-f", "--file", help="name of the Dockerfile (default: PATH/Dockerfile)")
    p.add_argument("--build-arg", action="append", default=[], help="set build-time variables (K=V)")
    p.add_argument("--target", help="set the target build stage to build")
    p.add_argument("--no-cache", action="store_true", help="do not use cache when building the image")
    p.add_argument("--label", action="append", default=[], help="set metadata for an image (K=V)")
    p.add_argument("--network", default="default", help="networking mode for the RUN instructions")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the build output and print image ID on success")
    p.add_argument("--progress", default="auto", choices=("auto", "plain", "tty"), help="type of progress output")
    p.add_argument("--iidfile", help="write the image ID to the file")
    p.add_argument("--pull", action="store_true", help="always attempt to pull a newer version of the image")
    p.add_argument("--platform", help="set platform for the base images (os/arch[/variant])")
    p.add_argument("--output", "-o", help="output destination (type=oci,dest=FILE)")
    p.add_argument("--compression", default="gzip", choices=("gzip", "zstd", "none"), help="layer compression")
    p.add_argument("--rm", action="store_true", default=True, help="remove intermediate containers (always)")
    p.add_argument("--force-rm", action="store_true", help="always remove intermediate containers (always)")
    p.set_defaults(func=cmd_build, exit_codes=EXIT_CODES)


def _add_commit(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("reference", metavar="REPOSITORY[:TAG]", nargs="?")
    p.add_argument("-a", "--author", default="", help='author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    p.add_argument("-c", "--change", action="append", default=[], help="apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", default="", help="commit message")
    p.add_argument("-p", "--pause", default="true", nargs="?", const="true",
                   help="pause container during commit (default true)")
    p.set_defaults(func=cmd_commit, exit_codes=EXIT_CODES)


def _pairs(values: list[str]) -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        result[key] = rest if sep else None
    return result


def cmd_build(args: argparse.Namespace) -> int:
    from skiff.build.builder import BuildOptions, build
    from skiff.cli.main import paths_from

    network = "bridge" if args.network == "default" else args.network
    labels = {k: v or "" for k, v in _pairs(args.label).items()}
    opts = BuildOptions(context=args.context, dockerfile=args.file, tags=args.tag, build_args=_pairs(args.build_arg),
                        target=args.target, no_cache=args.no_cache, labels=labels, network=network,
                        quiet=args.quiet, pull=args.pull, platform=args.platform, compression=args.compression,
                        output=args.output, iidfile=args.iidfile)
    image = build(paths_from(args), opts, sys.stdout, sys.stdin.buffer)
    if args.quiet:
        print(image.id)
    return 0


def cmd_commit(args: argparse.Namespace) -> int:
    from skiff.cli.main import engine_from
    from skiff.engine.commit import CommitRequest, commit

    pause = str(args.pause).lower() not in ("false", "0", "f")
    image = commit(engine_from(args), CommitRequest(args.container, args.reference, args.change, args.message,
                                                   args.author, pause))
    print(image.id)
    return 0


def cmd_builder_prune(args: argparse.Namespace) -> int:
    from skiff.build.cache import prune
    from skiff.cli.main import paths_from

    removed, reclaimed = prune(paths_from(args))
    for image_id in removed:
        print(f"Deleted build cache objects:\n{image_id.removeprefix('sha256:')}" if image_id == removed[0]
              else image_id.removeprefix("sha256:"))
    from skiff.units import human_size

    print(f"Total reclaimed space: {human_size(reclaimed)}")
    return 0
