"""The listening socket and the HTTP loop of ``skiff system service``.

The standard library's HTTP server (its request headers read by skiff.api.headers, without the
email parser), one thread per connection (daemon threads: a client that follows logs for an
hour holds its own thread, never the others'), HTTP/1.1 with keep-alive and chunked streams.
Docker's clients speak plain HTTP/1.1 over a unix socket; TCP is served only with TLS and
client certificates.

The unix socket is made under a temporary name with mode 0600, given to root and the ``skiff``
group (when it exists), set to 0660 and renamed over the socket's path: it is never seen with
looser permissions, and a stale socket (no server behind it) is replaced in one step. A live one
is an error.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import os
import select
import signal
import socket
import socketserver
import ssl
import stat
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, NamedTuple
from urllib.parse import parse_qs, urlsplit

from skiff import __version__
from skiff.api import uploads
from skiff.api.errors import BadRequest, message_for, status_for
from skiff.api.headers import HeaderError, Headers, read_headers
from skiff.api.messages import Hijack, Request, Response, Stream, compact_json
from skiff.api.routes import API_VERSION, resolve, split_version
from skiff.errors import InvalidArgument
from skiff.paths import Paths

if TYPE_CHECKING:
    from skiff.engine import Engine

MAX_BODY = 16 << 20          # a create or volume body is a few KiB; an image upload is not served yet
SOCKET_MODE = 0o660
SOCKET_GROUP = "skiff"
ENDPOINT_MODULES = ("system", "containers", "objects", "images", "prunes", "networking", "archive",
                    "inspection", "attach", "execs")


class Address(NamedTuple):
    """Where to listen: ``("unix", path, 0)`` or ``("tcp", host, port)``."""

    scheme: str
    host: str
    port: int


def parse_host(text: str) -> Address:
    """``unix:///run/skiff/docker.sock`` or ``tcp://127.0.0.1:2376`` (``[::1]:2376``), as dockerd's -H."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise InvalidArgument(f"invalid --host {text!r}: use unix:///PATH or tcp://HOST:PORT")
    if scheme == "unix":
        if not rest.startswith("/"):
            raise InvalidArgument(f"invalid --host {text!r}: the socket's path must be absolute")
        return Address("unix", rest, 0)
    if scheme == "tcp":
        host, _, port = rest.rstrip("/").rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgument(f"invalid --host {text!r}: use tcp://HOST:PORT")
        return Address("tcp", host.strip("[]"), int(port))
    raise InvalidArgument(f"invalid --host {text!r}: only unix:// and tcp:// are served")


class TLSFiles(NamedTuple):
    cacert: str
    cert: str
    key: str


def tls_context(files: TLSFiles) -> ssl.SSLContext:
    """TLS that requires a client certificate signed by ``cacert`` (dockerd's --tlsverify)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=files.cacert)
    context.load_cert_chain(files.cert, files.key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# --- listening sockets -------------------------------------------------------------------------


def listen_unix(path: Path) -> socket.socket:
    """A listening unix socket at ``path``: mode 0660, root and group ``skiff``; a stale socket
    there is replaced, a live one or any other file is an error."""
    _refuse_taken(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o177)  # no thread runs yet: the umask is the process's
        try:
            sock.bind(str(temporary))
        finally:
            os.umask(old_umask)
        if os.geteuid() == 0:
            os.chown(temporary, 0, _socket_gid())
        os.chmod(temporary, SOCKET_MODE)
        sock.listen(128)
        os.rename(temporary, path)
    except BaseException:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return sock


def _refuse_taken(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise InvalidArgument(f"{path} exists and is not a socket: refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return  # stale: nothing listens; replaced by the rename
        raise
    finally:
        probe.close()
    raise InvalidArgument(f"{path}: another server is listening on this socket", hint="stop it first")


def _socket_gid() -> int:
    import grp

    try:
        return grp.getgrnam(SOCKET_GROUP).gr_gid
    except KeyError:
        return 0


def listen_tcp(address: Address) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address.host, address.port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


# --- the server --------------------------------------------------------------------------------


class Context:
    """What every endpoint works on: the engine's paths, one Engine per request. The records on
    disk are the truth (the CLI writes them too); all the server keeps is the listings' cache
    (skiff.engine.listing), checked against those records at every listing."""

    def __init__(self, paths: Paths) -> None:
        from skiff.engine.listing import ListingCache

        self.paths = paths
        self.listings = ListingCache()
        self._encoded: dict[int, tuple[dict[str, Any], bytes]] = {}  # by id(): a listing's entries, encoded

    def engine(self) -> Engine:
        from skiff.engine import Engine

        return Engine(self.paths, self.listings)

    def encoded_listing(self, entries: list[dict[str, Any]]) -> bytes:
        """The JSON body of a container listing, ``encode_json``'s bytes: each entry encoded once
        while it is the very same object (the listings' cache hands out the same entry while its
        container's document and ``Status`` text are unchanged)."""
        kept = self._encoded
        encoded: dict[int, tuple[dict[str, Any], bytes]] = {}
        for entry in entries:
            hit = kept.get(id(entry))  # ``kept`` holds its entries alive: their ids name no other object
            if hit is None:
                hit = (entry, compact_json(entry))
            encoded[id(entry)] = hit
        self._encoded = encoded  # the entries of this listing only: those of earlier ones go
        return b"[" + b",".join(encoded[id(entry)][1] for entry in entries) + b"]\n"


class APIServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Threads that accept connections themselves, each serving the one it accepted.

    A thread waiting in ``accept()`` is woken by the kernel with the connection: no listening
    thread hands it over (a hand-off woke a second thread, about a tenth of a millisecond on
    every connection; ``docker ps`` opens one). A thread that accepts starts another first
    when no other would be left waiting, so a long stream never keeps a connection waiting;
    once served, it waits for the next connection unless ``IDLE_WORKERS`` others already do.
    """

    IDLE_WORKERS = 4
    ACCEPT_RETRY_SECONDS = 0.1  # after a failed accept (EMFILE: out of descriptors), not a busy loop

    daemon_threads = True
    block_on_close = False

    def __init__(self, listener: socket.socket, context: Context, tls: ssl.SSLContext | None = None,
                 log: Callable[[str], None] | None = None, debug: bool = False) -> None:
        super().__init__(("", 0), _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener
        self.context = context
        self.tls = tls
        self.log = log or _log
        self.debug = debug
        self._active = 0
        self.served = 0  # connections so far (the idle trim looks whether any came since its last)
        self._last_activity = time.monotonic()
        self._activity = threading.Lock()
        self._waiting = 0  # threads in (or on their way to) accept(), under _activity
        self._stopping = threading.Event()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept and serve in threads until ``shutdown``."""
        with self._activity:
            self._waiting += 1
        self._start_acceptor()
        self._stopping.wait()

    def shutdown(self) -> None:
        """Stop accepting: the waiting threads' ``accept()`` fails (a listening socket shut down)."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)

    def _start_acceptor(self) -> None:
        threading.Thread(target=self._accept_and_serve, daemon=True, name="connection").start()

    def _accept_and_serve(self) -> None:
        while not self._stopping.is_set():
            try:
                request, client_address = self.socket.accept()
            except OSError as exc:
                if self._stopping.is_set():
                    return
                self.log(f"accept failed: {exc}")
                time.sleep(self.ACCEPT_RETRY_SECONDS)
                continue
            with self._activity:
                self._waiting -= 1
                last = self._waiting == 0
                if last:
                    self._waiting += 1  # the new thread's, counted before it runs
            if last:
                self._start_acceptor()
            self.process_request_thread(request, client_address)
            with self._activity:
                if self._waiting >= self.IDLE_WORKERS:
                    return
                self._waiting += 1

    def finish_request(self, request: Any, client_address: Any) -> None:
        """In the connection's thread: the TLS handshake here, so a slow client never holds the accept loop."""
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                self.log(f"TLS handshake refused: {exc}")
                return
        super().finish_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._activity:
            self._active += 1
            self.served += 1
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._activity:
                self._active -= 1
                self._last_activity = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last connection closed; 0 while one is open."""
        with self._activity:
            return 0.0 if self._active else time.monotonic() - self._last_activity

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            return  # the client hung up before its answer was out (``docker run -d`` drops its wait so)
        self.log(f"connection failed: {type(exc).__name__}: {exc}")


def _log(line: str) -> None:
    print(f"skiff system service: {line}", file=sys.stderr, flush=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Buffered: an answer's status line, headers and body leave in one write, flushed after each
    # request (by the base class), after a stream's every chunk and before a hijack. A body
    # larger than the buffer (a long listing) follows the headers in a write of its own; a
    # bigger buffer would be held by every open connection.
    wbufsize = 1 << 14
    server_version = f"skiff/{__version__}"
    sys_version = "(linux)"
    server: APIServer
    raw_requestline: bytes  # the base class's, read before parse_request
    headers: Headers  # type: ignore[assignment]  # not the base class's email message: see parse_request

    def parse_request(self) -> bool:
        """The request line, then the headers by ``skiff.api.headers`` (not the email parser).
        False, with the error sent when there is a client to tell, for a request not served."""
        self.command = None  # type: ignore[assignment]  # as the base class: no request yet
        self.request_version = "HTTP/1.1"  # an error answers with a status line (0.9's has none)
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            return False
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            unsupported = len(words) == 3 and words[2].startswith("HTTP/")
            self.send_error(505 if unsupported else 400, f"Bad request: {self.requestline[:200]!r}")
            return False
        self.command, self.path, self.request_version = words
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")  # not a URL's authority: a path with its slash doubled
        try:
            self.headers = read_headers(self.rfile)
        except HeaderError as exc:
            self.send_error(exc.status, str(exc))
            return False
        connection = (self.headers.get("Connection") or "").lower()
        self.close_connection = connection == "close" or (self.request_version == "HTTP/1.0"
                                                          and connection != "keep-alive")
        if (self.headers.get("Expect") or "").lower() == "100-continue" and self.request_version != "HTTP/1.0":
            return self.handle_expect_100()
        return True

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        if self.server.debug:
            self.server.log(format % args)

    def _serve(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        upload = None
        try:
            try:
                version, path = split_version(url.path)
                endpoint, params = resolve(self.command, path)
            except Exception:
                self._read_body()  # before the answer, so a kept-alive connection stays in step
                raise
            upload = self._upload(endpoint)
            body = b"" if upload is not None else self._read_body()
            request = Request(self.command, path, params, parse_qs(url.query, keep_blank_values=True), body,
                              version)
            request.client_gone = self._client_gone
            request.body_file = upload
            request.headers = self.headers
            result = _handler(endpoint)(self.server.context, request)
        except Exception as exc:
            result = self._error(exc)
        if upload is not None and not uploads.exhausted(upload):
            self.close_connection = True  # the rest of the body is still in the connection
        if isinstance(result, Stream):
            self._send_stream(result)
        elif isinstance(result, Hijack):
            self._hijack(result)
        else:
            self._send(result)
        if self.server.debug:
            self.server.log(f"{self.command} {self.path} {time.monotonic() - started:.3f}s")

    def _upload(self, endpoint: str) -> BinaryIO | None:
        """The body as a stream for an endpoint that takes an image tarball (skiff.api.uploads)."""
        if endpoint not in uploads.UPLOAD_ENDPOINTS:
            return None
        return uploads.body_reader(self.rfile, self.headers.get("Transfer-Encoding", ""),
                                   self.headers.get("Content-Length"))

    def _client_gone(self) -> bool:
        """The client closed its end (``docker run -d`` drops its wait at once): nothing to read but EOF.
        A TLS connection is not peeked at (its records are not the client's bytes)."""
        if isinstance(self.connection, ssl.SSLSocket):
            return False
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _error(self, exc: Exception) -> Response:
        status = status_for(exc)
        message = message_for(exc)
        if status >= 500:  # one line, never a traceback, to the client or the log
            self.server.log(f"{status} {self.command} {self.path}: {message}")
        if self.server.debug and status >= 500:
            import traceback

            traceback.print_exception(exc)
        return Response(status, {"message": message})

    def _read_body(self) -> bytes:
        """The whole body (Content-Length or chunked), read before anything can fail, so an error
        answer never leaves half a body in a kept-alive connection."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit():
            self.close_connection = True
            raise BadRequest(f"invalid Content-Length: {length!r}")
        if int(length) > MAX_BODY:
            self.close_connection = True
            raise BadRequest(f"request body too large: {length} bytes (at most {MAX_BODY})")
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise BadRequest("malformed chunked request body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                raise BadRequest(f"request body too large (at most {MAX_BODY} bytes)")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _common_headers(self, status: int, content_type: str | None) -> None:
        self.send_response(status)
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")
        if content_type:
            self.send_header("Content-Type", content_type)

    def _send(self, response: Response) -> None:
        body = response.body()
        no_body = response.status in (204, 304)
        self._common_headers(response.status, None if no_body else response.content_type)
        for key, value in response.headers.items():
            self.send_header(key, value)
        if not no_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and not no_body:
            self.wfile.write(body)

    def _hijack(self, hijack: Hijack) -> None:
        """Docker's hijack: the status line and headers, then the bare socket is the endpoint's."""
        upgrade = self.headers.get("Upgrade", "").lower() == "tcp"
        self.close_connection = True  # after the stream, the connection is done (as Docker's)
        if hijack.websocket is not None:
            self.send_response(101, "Switching Protocols")
            for key, value in hijack.websocket.items():
                self.send_header(key, value)
            upgrade = False
        elif upgrade:
            self.send_response(101, "UPGRADED")
        else:
            self.send_response(200)
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")
        if hijack.content_type:
            self.send_header("Content-Type", hijack.content_type)
        if upgrade:
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "tcp")
        self.end_headers()
        self.wfile.flush()
        try:
            hijack.serve(self.connection, self._buffered())
        except OSError:
            pass  # the client went away: the container goes on
        except Exception as exc:  # the headers are gone: the client sees the stream cut short
            self.server.log(f"{self.command} {self.path}: stream stopped: {message_for(exc)}")

    def _buffered(self) -> bytes:
        """What the client sent after its request and the reader already holds (stdin sent at once)."""
        timeout = self.connection.gettimeout()
        self.connection.setblocking(False)
        try:
            return self.rfile.read1(65536) or b""
        except (BlockingIOError, ssl.SSLWantReadError, ValueError):
            return b""
        finally:
            self.connection.settimeout(timeout)

    def _send_stream(self, stream: Stream) -> None:
        self._common_headers(stream.status, stream.content_type)
        for key, value in stream.headers.items():
            self.send_header(key, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            for chunk in stream.chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away: the stream stops here
        except Exception as exc:  # the headers are gone: the client sees the stream cut short
            self.server.log(f"{self.command} {self.path}: stream stopped: {message_for(exc)}")
            self.close_connection = True
        finally:
            close = getattr(stream.chunks, "close", None)
            if close is not None:
                close()


@functools.lru_cache(maxsize=None)  # the routes are a fixed table
def _handler(endpoint: str) -> Callable[[Context, Request], Response | Stream | Hijack]:
    """The function serving ``module.function``, found once rather than on every request."""
    module, _, function = endpoint.partition(".")
    handler: Callable[[Context, Request], Response | Stream | Hijack] = getattr(
        importlib.import_module(f"skiff.api.{module}"), function)
    return handler


# --- running it --------------------------------------------------------------------------------


def preload() -> None:
    """Import the endpoints and what a container's start forks into, before any thread runs: a
    monitor forked from one thread must not need an import another thread is in the middle of."""
    for name in ENDPOINT_MODULES:
        importlib.import_module(f"skiff.api.{name}")
    for name in ("skiff.engine.engine", "skiff.engine.monitor.launch", "skiff.runtime", "skiff.image.store",
                 "skiff.volume.store", "skiff.network", "skiff.engine.logs", "skiff.engine.summary",
                 "skiff.engine.archive", "skiff.runtime.sealed", "skiff.runtime.jsonlite",
                 "skiff.api.wsbridge"):
        importlib.import_module(name)


def serve(server: APIServer, idle_timeout: float, on_exit: Callable[[], None]) -> None:
    """Serve until SIGTERM/SIGINT, or until no connection was open for ``idle_timeout`` seconds (0: never)."""
    stopping = threading.Event()

    def stop(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)  # before any thread: each would get an arena of its own
        threading.Thread(target=_trim_when_idle, args=(server, stopping, libc), daemon=True, name="trim").start()
    if idle_timeout > 0:
        def watch() -> None:
            while not stopping.wait(min(idle_timeout, 0.5)):
                if server.idle_for() >= idle_timeout:
                    stop()

        threading.Thread(target=watch, daemon=True, name="idle-timeout").start()
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        on_exit()


# glibc's malloc: a thread's allocations go to an arena of its own (up to 8 per CPU), which keeps
# its pages after the thread is gone; fifty clients at once left the server at 54 MB idle. Two
# arenas hold that growth, and once the server is idle the free pages go back to the kernel.
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
TRIM_AFTER_IDLE_SECONDS = 1.0


def _libc() -> Any:
    """glibc, for mallopt and malloc_trim; None elsewhere (musl has neither)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


def _trim_when_idle(server: APIServer, stopping: threading.Event, libc: Any) -> None:
    """Give freed memory back once after each busy spell, when no connection has been open for a second."""
    trimmed_at = 0
    while not stopping.wait(TRIM_AFTER_IDLE_SECONDS / 2):
        served = server.served
        if served != trimmed_at and server.idle_for() >= TRIM_AFTER_IDLE_SECONDS:
            libc.malloc_trim(0)
            trimmed_at = served


def remove_socket(path: Path, listener_inode: int) -> None:
    """Remove the socket file if it is still ours (another server may have replaced a stale one)."""
    with contextlib.suppress(FileNotFoundError):
        if os.lstat(path).st_ino == listener_inode:
            path.unlink()
