"""``skiff cdi list`` and ``skiff cdi generate --vendor nvidia``: the host's CDI devices and specs."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    cdi = sub.add_parser("cdi", help="list CDI devices, generate a CDI spec")
    commands = cdi.add_subparsers(dest="cdi_command", metavar="COMMAND", parser_class=type(cdi))
    commands.required = True

    ls = commands.add_parser("list", aliases=["ls"], help="List the CDI devices of this host's specs "
                             "(/etc/cdi, /var/run/cdi; SKIFF_CDI_SPEC_DIRS replaces them)")
    ls.add_argument("--spec-dir", action="append", default=None, help="read specs from this directory instead "
                    "(repeatable; a later one overrides an earlier one)")
    ls.add_argument("-v", "--verbose", action="store_true", help="show each device's spec file")
    ls.set_defaults(func=_list)

    generate = commands.add_parser("generate", help="Write a CDI spec for the devices this host has")
    generate.add_argument("--vendor", required=True, choices=("nvidia",), help="whose devices (nvidia)")
    generate.add_argument("--output", help="file to write (.json, or .yaml/.yml for YAML); default stdout")
    generate.add_argument("--format", choices=("json", "yaml"), help="output format (default: from --output, "
                          "else json)")
    generate.add_argument("--driver-root", default="/", help="root of the driver's files (default /)")
    generate.add_argument("--nvidia-smi-path", help="nvidia-smi to list the GPUs with")
    generate.add_argument("--ldconfig-path", help="ldconfig whose -p lists the driver's libraries")
    generate.set_defaults(func=_generate)


def _list(args: argparse.Namespace) -> int:
    from skiff.cdi.registry import Registry

    registry = Registry(args.spec_dir)
    for device in registry.devices():
        print(f"{device.qualified_name}\t{device.spec.path}" if args.verbose else device.qualified_name)
    for _, error in registry.errors:
        print(f"skiff: {error}", file=sys.stderr)
    return 1 if registry.errors else 0


def _generate(args: argparse.Namespace) -> int:
    from skiff.cdi import nvidia
    from skiff.cdi.spec import check

    spec = nvidia.generate(args.driver_root, args.nvidia_smi_path, args.ldconfig_path)
    check(spec, args.output or "<generated>")
    fmt = args.format or ("yaml" if (args.output or "").endswith((".yaml", ".yml")) else "json")
    text = _render(spec, fmt)
    if not args.output:
        sys.stdout.write(text)
        return 0
    _write(args.output, text)
    print(f"wrote {args.output}: {len(spec['devices'])} devices of {spec['kind']}", file=sys.stderr)
    return 0


def _render(spec: dict[str, Any], fmt: str) -> str:
    if fmt == "yaml":
        try:
            import yaml
        except ImportError:
            from skiff.errors import InvalidArgument

            raise InvalidArgument("YAML output needs PyYAML (pip install pyyaml); use --format json") from None
        return str(yaml.safe_dump(spec, sort_keys=False))
    import json

    return json.dumps(spec, indent=2) + "\n"


def _write(path: str, text: str) -> None:
    """Atomically, readable by all (a runtime reads it): a reader never sees half a spec."""
    import os
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".skiff-cdi-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise
