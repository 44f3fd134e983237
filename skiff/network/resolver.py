"""The embedded DNS resolver of a user network: container names to addresses.

Design: one small process per user network, listening on the network's
gateway address (UDP 53), started with the network's first container and
stopped with its last. It answers A queries for container names, aliases and
short ids, alone or followed by ``.NETWORK`` as Docker's do, from the network record, read on every query (a few hundred bytes,
so it never serves stale data and needs no signal to learn of new
containers), and relays every other query to the asking container's ``--dns``
servers when it has some (as Docker's embedded resolver does), else to the
host's upstream servers.
Chosen over rewriting each container's /etc/hosts because those files belong
to the engine and are bind-mounted: a container started earlier could never
learn of one started later.

Started as ``skiff.pychild.module_argv("skiff.network.resolver")`` plus ``RECORD
LISTEN_IP READY_FD UPSTREAM...`` (``main``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from skiff import proc
from skiff.errors import NetworkError

TYPE_A = 1
TYPE_ANY = 255
CLASS_IN = 1
RCODE_SERVFAIL = 2
TTL = 0  # containers come and go: never let a client cache an answer


# --- the process --------------------------------------------------------------


def _question(query: bytes) -> tuple[str, int, int]:
    """(name as asked, case kept; qtype; end offset of the first question)."""
    labels = []
    offset = 12
    while query[offset]:
        length = query[offset]
        labels.append(query[offset + 1:offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype, _ = struct.unpack_from("!HH", query, offset + 1)
    return ".".join(labels), qtype, offset + 5


def lookup(record: dict, name: str) -> list[str]:
    """Addresses of the containers called ``name`` on this network, or ``CONTAINER.NETWORK``.

    As Docker's embedded DNS: a.b.c is tried as a container (name, alias or short id,
    any case), then as a.b on network c, then as a on network b.c; the network's name
    must match exactly.
    """
    found = _containers_named(record, name.lower())
    network = record.get("Name", "")
    for i, char in enumerate(name):
        if found:
            break
        if char == "." and name[i + 1:] == network:
            found = _containers_named(record, name[:i].lower())
    return found


def _containers_named(record: dict, name: str) -> list[str]:
    found = []
    for cid, entry in record.get("Containers", {}).items():
        names = {str(entry.get("Name", "")).lower(), cid[:12]} | {a.lower() for a in entry.get("Aliases", [])}
        if name in names:
            found.append(entry["IPAddress"])
    return found


def answer(query: bytes, addresses: list[str], end: int) -> bytes:
    qid, flags = struct.unpack_from("!HH", query)
    reply_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080  # response, authoritative, RD copied, RA
    header = struct.pack("!HHHHHH", qid, reply_flags, 1, len(addresses), 0, 0)
    records = b"".join(struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) + socket.inet_aton(a)
                       for a in addresses)
    return header + query[12:end] + records


def failure(query: bytes, end: int, rcode: int) -> bytes:
    qid, flags = struct.unpack_from("!HH", query)
    return struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x0100) | 0x0080 | rcode, 1, 0, 0, 0) + query[12:end]


def _forward(server: socket.socket, query: bytes, client: tuple[str, int], end: int,
             upstreams: list[str]) -> None:
    for upstream in upstreams:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            out.settimeout(2)
            try:
                out.sendto(query, (upstream, 53))
                server.sendto(out.recv(4096), client)
                return
            except OSError:
                continue
    server.sendto(failure(query, end, RCODE_SERVFAIL), client)


def serve(record_path: Path, listen_ip: str, ready_fd: int, upstreams: list[str]) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((listen_ip, 53))
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    while True:
        query, client = server.recvfrom(4096)
        try:
            name, qtype, end = _question(query)
            record = json.loads(record_path.read_text())
        except FileNotFoundError:
            return  # the network is gone
        except (IndexError, struct.error, ValueError):
            continue  # not a query we can read: drop it, as a resolver may
        addresses = lookup(record, name)
        if addresses:
            server.sendto(answer(query, addresses if qtype in (TYPE_A, TYPE_ANY) else [], end), client)
        else:
            servers = container_dns(record, client[0]) or upstreams
            threading.Thread(target=_forward, args=(server, query, client, end, servers), daemon=True).start()


def container_dns(record: dict, address: str) -> list[str]:
    """The ``--dns`` servers of the container at ``address`` on this network (empty: none given)."""
    for entry in record.get("Containers", {}).values():
        if entry.get("IPAddress") == address:
            return list(entry.get("Dns", []))
    return []


# --- its lifetime, driven by NetworkManager ------------------------------------------


def _running(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid if b"skiff.network.resolver" in cmdline else None


def ensure(pidfile: Path, record_path: Path, listen_ip: str, upstreams: list[str]) -> None:
    """Start the network's resolver unless it runs; returns once it is listening."""
    if _running(pidfile):
        return
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        from skiff.pychild import module_argv

        proc = subprocess.Popen(
            module_argv("skiff.network.resolver", str(record_path), listen_ip, str(write_fd), *upstreams),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=(write_fd,), start_new_session=True, cwd="/")
        os.close(write_fd)
        write_fd = -1
        ready = os.read(read_fd, 1)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    if ready != b"1":
        _, err = proc.communicate(timeout=5)
        raise NetworkError(f"the DNS resolver for {record_path.stem} did not start on {listen_ip}:53: "
                           f"{err.decode().strip().splitlines()[-1:] or 'no output'}")
    assert proc.stderr is not None
    proc.stderr.close()
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(proc.pid))


def stop(pidfile: Path) -> None:
    """Stop the network's resolver; idempotent."""
    pid = _running(pidfile)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        _wait_gone(pid)
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()


def _wait_gone(pid: int) -> None:
    for _ in range(200):
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        if proc.gone(pid):
            return  # exited (a zombie, if its parent, not us, has not reaped it yet)
        time.sleep(0.005)


def main(argv: list[str]) -> None:
    """The resolver process: ``RECORD LISTEN_IP READY_FD UPSTREAM...``; SIGTERM ends it."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    serve(Path(argv[0]), argv[1], int(argv[2]), argv[3:])


if __name__ == "__main__":
    main(sys.argv[1:])
