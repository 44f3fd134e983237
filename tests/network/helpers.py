"""Servers and clients for network tests, always confined to test-made namespaces or loopback."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def http_server(netns_path: Path | str, port: int, docroot: Path, body: str = "hello from skiff\n",
                ) -> Iterator[subprocess.Popen[bytes]]:
    """busybox httpd inside a namespace; killed on exit, even when the test fails."""
    docroot.mkdir(parents=True, exist_ok=True)
    (docroot / "index.html").write_text(body)
    proc = subprocess.Popen(["nsenter", f"--net={netns_path}", "busybox", "httpd", "-f", "-p", str(port),
                             "-h", str(docroot)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(netns_path, port)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _wait_listening(netns_path: Path | str, port: int) -> None:
    for _ in range(200):
        out = subprocess.run(["nsenter", f"--net={netns_path}", "ss", "-Hltn", f"sport = :{port}"],
                             capture_output=True, text=True).stdout
        if out.strip():
            return
        time.sleep(0.01)
    raise AssertionError(f"nothing listens on port {port} in {netns_path}")


# The suite runs with HTTP(S)_PROXY pointing at a closed port (so that a registry missing by
# mistake fails at once): the tests' own requests go straight to the address they name.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, timeout: float = 5) -> str:
    with DIRECT.open(url, timeout=timeout) as response:
        return response.read().decode()


@contextlib.contextmanager
def tcp_listener(address: str) -> Iterator[tuple[int, list[tuple[str, bytes]]]]:
    """A host TCP server on ``address`` (a test bridge's gateway); yields (port, [(peer ip, data)])."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind((address, 0))
    server.listen(8)
    server.settimeout(10)
    seen: list[tuple[str, bytes]] = []

    def accept_one() -> None:
        with contextlib.suppress(OSError):
            conn, peer = server.accept()
            with conn:
                conn.settimeout(5)
                seen.append((peer[0], conn.recv(100)))

    thread = threading.Thread(target=accept_one, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], seen
    finally:
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)  # wakes accept() when no client came
        thread.join(timeout=10)
        server.close()


def http_get_from(netns_path: Path | str, host: str, port: int) -> str:
    """GET / from inside a namespace with busybox nc (the static busybox wget crashes on its NSS lookup)."""
    proc = subprocess.run(["nsenter", f"--net={netns_path}", "sh", "-c",
                           f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 {host} {port}"],
                          capture_output=True, text=True, timeout=10)
    return proc.stdout.partition("\n\n")[2]  # text mode already turned \r\n into \n


def free_port() -> int:
    """A TCP port nothing uses right now."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def occupied_port() -> Iterator[int]:
    """A port a host process listens on for the duration."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen(1)
        yield holder.getsockname()[1]
