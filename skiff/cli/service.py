"""``skiff system service``: the Docker Engine API on a socket (skiff.api), as podman's command."""

from __future__ import annotations

import argparse

DEFAULT_IDLE_SECONDS = 5  # podman's default; 0 serves until stopped


def add_service_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-H", "--host", help="where to listen: unix:///PATH (default: unix://<run root>/docker.sock, "
                   "/run/skiff/docker.sock) or tcp://HOST:PORT (needs --tlsverify and the three files)")
    p.add_argument("-t", "--time", type=int, default=DEFAULT_IDLE_SECONDS, metavar="SECONDS",
                   help=f"exit after SECONDS without a connection; 0: never (default {DEFAULT_IDLE_SECONDS})")
    p.add_argument("--tlsverify", action="store_true", help="TCP: require client certificates signed by --tlscacert")
    p.add_argument("--tlscacert", help="TCP: the CA that signs client certificates")
    p.add_argument("--tlscert", help="TCP: the server's certificate")
    p.add_argument("--tlskey", help="TCP: the server's key")
    p.set_defaults(func=cmd_service)


def cmd_service(args: argparse.Namespace) -> int:
    from pathlib import Path

    from skiff.api import server
    from skiff.cli.main import paths_from
    from skiff.errors import InvalidArgument

    paths = paths_from(args)
    if args.time < 0:
        raise InvalidArgument(f"invalid --time {args.time}: use 0 (never) or a number of seconds")
    address = server.parse_host(args.host or f"unix://{paths.run_root / 'docker.sock'}")
    tls = None
    if address.scheme == "tcp":
        if not (args.tlsverify and args.tlscacert and args.tlscert and args.tlskey):
            raise InvalidArgument(f"refusing to serve tcp://{address.host}:{address.port} without TLS: anyone who "
                                  "reaches it would be root on this host",
                                  hint="give --tlsverify --tlscacert --tlscert --tlskey, or use a unix socket")
        tls = server.tls_context(server.TLSFiles(args.tlscacert, args.tlscert, args.tlskey))
    server.preload()
    from skiff.engine.monitor import forkserver

    # Before any thread and any listener (the fork server holds neither): starts fork monitors from it.
    monitors = forkserver.start()
    if address.scheme == "unix":
        socket_path = Path(address.host)
        listener = server.listen_unix(socket_path)
        inode = socket_path.lstat().st_ino

        def cleanup() -> None:
            server.remove_socket(socket_path, inode)
    else:
        listener = server.listen_tcp(address)

        def cleanup() -> None:
            pass

    api = server.APIServer(listener, server.Context(paths), tls, debug=bool(args.debug))
    try:
        server.serve(api, float(args.time), cleanup)
    finally:
        monitors.close()
    return 0
