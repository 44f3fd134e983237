"""`skiff` commands for registries: pull, login, logout."""

from __future__ import annotations

import argparse
import sys

from skiff.cli.errors import ExitCodes
from skiff.errors import SkiffError, UsageError

# Whatever goes wrong in a pull, ``docker pull`` exits 1; only its own flags' misuse is 125.
PULL_EXIT_CODES: ExitCodes = {UsageError: 125, SkiffError: 1}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pull", help="download an image from a registry")
    p.add_argument("reference", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--platform", help="os/arch[/variant] to pull from a multi-platform image")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image reference")
    p.add_argument("-a", "--all-tags", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_pull, exit_codes=PULL_EXIT_CODES)

    p = sub.add_parser("login", help="store credentials for a registry")
    p.add_argument("registry", metavar="SERVER", nargs="?", default="docker.io")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password", help="password (prefer --password-stdin)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=cmd_login)

    p = sub.add_parser("logout", help="forget the credentials of a registry")
    p.add_argument("registry", metavar="SERVER", nargs="?", default="docker.io")
    p.set_defaults(func=cmd_logout)


def cmd_pull(args: argparse.Namespace) -> int:
    from skiff.cli.main import paths_from
    from skiff.registry import pull

    if args.all_tags:
        raise UsageError("--all-tags is not supported")
    pull(paths_from(args), args.reference, platform=args.platform, quiet=args.quiet, out=sys.stdout)
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    from skiff.errors import RegistryAuthError
    from skiff.registry import auth
    from skiff.registry.client import RegistryClient
    from skiff.registry.config import RegistryConfig

    username, password = args.username, args.password
    if password:
        # As Docker: the password is now in the shell's history and in every `ps` listing.
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
    if args.password_stdin:
        if password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        if not username:
            raise UsageError("must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    if not username:
        username = input("Username: ").strip() if sys.stdin.isatty() else ""
    if not password:
        import getpass

        password = getpass.getpass("Password: ") if sys.stdin.isatty() else ""
    if not username or not password:
        raise RegistryAuthError("username and password are both required", hint="use -u USER --password-stdin")
    creds = auth.Credentials(username, password)
    config = RegistryConfig.load()
    host = auth.normalize_registry(args.registry)
    with RegistryClient(config.endpoint_host(host), config, creds) as client:
        client.check_login()
    path = auth.store(host, creds)
    print(f"WARNING! Your password will be stored unencrypted in {path}.", file=sys.stderr)
    print("Login Succeeded")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from skiff.registry import auth

    host = auth.normalize_registry(args.registry)
    shown = auth.auth_key(host)
    if auth.remove(host):
        print(f"Removing login credentials for {shown}")
    else:
        print(f"Not logged in to {shown}")
    return 0
