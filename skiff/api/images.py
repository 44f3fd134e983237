"""The image endpoints that change the store: pull and import (``/images/create``), tag, remove,
history, save and load, prune: Docker 20.10's documents over skiff's image store and puller.

A pull runs through ``skiff.registry.pull`` (the CLI's path) with a reporter that turns each
progress call into one of Docker's JSON messages, sent as it comes. As Docker's daemon, an error
before the first message is the answer's status (404 for an image the registry does not have);
one after it is a last ``{"errorDetail": ..., "error": ...}`` message in the 200 stream.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

from skiff.api.errors import BadRequest
from skiff.api.messages import Request, Response, Stream
from skiff.api.server import Context
from skiff.registry.progress import Reporter

if TYPE_CHECKING:
    from skiff.registry.auth import Credentials

PROGRESS_INTERVAL = 0.1   # seconds between two "Downloading" messages of one layer, as Docker's
BAR_WIDTH = 50            # Docker's progress bar: 50 cells


def json_line(document: dict[str, Any]) -> bytes:
    """One message of a progress stream, as Go's encoder writes it (compact, then CRLF: Docker's
    streamformatter ends each JSON message with \\r\\n)."""
    return json.dumps(document, separators=(",", ":")).encode() + b"\r\n"


def error_line(message: str) -> bytes:
    return json_line({"errorDetail": {"message": message}, "error": message})


def human_size(size: float) -> str:
    """go-units' HumanSize: four significant digits, decimal units (``1.23MB``)."""
    units = ("B", "kB", "MB", "GB", "TB", "PB")
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.4g}{units[index]}"


def progress_bar(current: int, total: int) -> str:
    """Docker's ``progress`` text (jsonmessage.JSONProgress): ``[====>      ]  1.2MB/3.4MB``."""
    if total <= 0:
        return f"{human_size(current):>8}"
    filled = min(BAR_WIDTH, current * BAR_WIDTH // total)
    return f"[{'=' * filled}>{' ' * (BAR_WIDTH - filled)}] {human_size(current):>8}/{human_size(total)}"


class JSONReporter(Reporter):
    """The pull's progress as Docker's JSON messages, handed to ``send`` (from any thread)."""

    def __init__(self, send: Callable[[dict[str, Any]], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.send = send
        self.clock = clock
        self._lock = threading.Lock()
        self._totals: dict[str, int] = {}
        self._received: dict[str, int] = {}
        self._last_sent: dict[str, float] = {}
        self._unannounced: set[str] = set()

    def pulling(self, tag: str, repository: str) -> None:
        self.send({"status": f"Pulling from {repository}", "id": tag})

    def header(self, text: str) -> None:
        self.send({"status": text})

    def line(self, text: str) -> None:
        self.send({"status": text})

    def layer_waiting(self, layer: str, total: int) -> None:
        # Announced with its first news: a layer the store has is only "Already exists", as dockerd
        # says it (skiff learns that when the layer's turn comes, after every layer is queued).
        with self._lock:
            self._totals[layer] = total
            self._received[layer] = 0
            self._unannounced.add(layer)

    def _announce(self, layer: str, status: str) -> None:
        """Must be called under the lock."""
        if layer in self._unannounced:
            self._unannounced.discard(layer)
            if status != "Already exists":
                self.send({"status": "Pulling fs layer", "progressDetail": {}, "id": layer})

    def layer_bytes(self, layer: str, count: int) -> None:
        with self._lock:
            self._announce(layer, "Downloading")
            received = self._received[layer] = self._received.get(layer, 0) + count
            total = self._totals.get(layer, 0)
            now = self.clock()
            if received < total and now - self._last_sent.get(layer, float("-inf")) < PROGRESS_INTERVAL:
                return  # a message per chunk would be thousands: one per interval, and the last
            self._last_sent[layer] = now
        self.send({"status": "Downloading", "progressDetail": {"current": received, "total": total},
                   "progress": progress_bar(received, total), "id": layer})

    def layer_status(self, layer: str, status: str, final: bool = False) -> None:
        with self._lock:
            self._announce(layer, status)
        if status == "Extracting":  # the download is over: Docker says so before it extracts
            self.send({"status": "Verifying Checksum", "progressDetail": {}, "id": layer})
            self.send({"status": "Download complete", "progressDetail": {}, "id": layer})
        self.send({"status": status, "progressDetail": {}, "id": layer})


# --- POST /images/create -----------------------------------------------------------------------


def create(context: Context, request: Request) -> Response | Stream:
    """``fromImage`` (+ ``tag``, ``platform``): pull; ``fromSrc=-`` (+ ``repo``, ``tag``,
    ``changes``, ``message``): import the request's body."""
    if request.arg("fromSrc") is not None:
        return _import(context, request)
    name = request.arg("fromImage")
    if not name:
        raise BadRequest("fromImage or fromSrc is required")
    credentials = registry_auth(request.headers.get("X-Registry-Auth") or "")
    return _pull(context, pull_reference(name, request.arg("tag") or ""), request.arg("platform") or None,
                 credentials)


def registry_auth(header: str) -> Credentials | None:
    """Docker's ``X-Registry-Auth``: base64url JSON ``{"username", "password", "serveraddress"}``.
    Empty (``e30=``, ``{}``: the client is not logged in) or unreadable: none, as dockerd ignores
    it for a pull; the stored credentials (``skiff login``) are used then."""
    import base64
    import binascii

    from skiff.registry.auth import Credentials

    if not header:
        return None
    try:
        document = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(document, dict):
        return None
    username, password = document.get("username"), document.get("password")
    if isinstance(username, str) and isinstance(password, str) and username and password:
        return Credentials(username, password)
    return None


def pull_reference(name: str, tag: str) -> str:
    """``fromImage`` and ``tag`` as one reference: a digest in ``tag`` is ``name@digest``, as Docker."""
    if not tag:
        return name
    separator = "@" if ":" in tag else ":"  # "sha256:..." is a digest, never a tag (no ':' in tags)
    return f"{name}{separator}{tag}"


_DONE = object()


def _pull(context: Context, ref: str, platform: str | None, credentials: Credentials | None) -> Stream:
    from skiff.registry import pull

    messages: queue.Queue[Any] = queue.Queue()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            pull(context.paths, ref, platform=platform, reporter=JSONReporter(messages.put), credentials=credentials)
        except BaseException as exc:  # the stream's last message, or the answer's status
            failure.append(exc)
        finally:
            messages.put(_DONE)

    threading.Thread(target=run, name="pull", daemon=True).start()
    first = messages.get()
    if first is _DONE and failure:
        raise failure[0]  # nothing sent yet: the error is the answer (404, 500 ...), as Docker's

    def stream() -> Iterator[bytes]:
        from skiff.api.errors import message_for

        item = first
        while item is not _DONE:
            yield json_line(item)
            item = messages.get()
        if failure:
            yield error_line(message_for(failure[0]))

    return Stream(stream())


def _import(context: Context, request: Request) -> Stream:
    """``docker import``: the body is the tarball (``fromSrc=-``; a URL is not fetched)."""
    from skiff.image.store import ImageStore

    if request.arg("fromSrc") != "-":
        raise BadRequest("fromSrc: only '-' (the request's body) is supported; skiff does not fetch URLs")
    repo, tag = request.arg("repo") or "", request.arg("tag") or ""
    ref = (f"{repo}:{tag}" if tag else repo) or None
    changes = request.query.get("changes", [])
    image = ImageStore(context.paths).import_tarball(request.upload(), ref, changes,
                                                     request.arg("message") or "", "-")
    return Stream(iter([json_line({"status": image.id})]))


# --- tag, remove, history ---------------------------------------------------------------------


def tag(context: Context, request: Request) -> Response:
    """``POST /images/{name}/tag?repo=&tag=``: 201."""
    from skiff.image.store import ImageStore

    repo, tag_ = request.arg("repo") or "", request.arg("tag") or ""
    if not repo:
        raise BadRequest("repo is required")
    ImageStore(context.paths).tag(request.params["name"], f"{repo}:{tag_}" if tag_ else repo)
    return Response(201)


def remove(context: Context, request: Request) -> Response:
    """``DELETE /images/{name}?force=&noprune=``: ``[{"Untagged": ...}, {"Deleted": ...}]``; 409 in use."""
    from skiff.engine import images

    request.flag("noprune")  # checked; skiff keeps no parent images, so there is nothing to keep
    lines = images.remove(context.paths, request.params["name"], force=request.flag("force"))
    return Response(200, removal_report(lines))


def removal_report(lines: list[str]) -> list[dict[str, str]]:
    """The store's ``Untagged: x`` / ``Deleted: sha256:..`` lines as Docker's DeleteResponse items."""
    report = []
    for line in lines:
        kind, _, what = line.partition(": ")
        report.append({kind: what})
    return report


def history(context: Context, request: Request) -> Response:
    """``GET /images/{name}/history``: skiff.engine.images.history's document."""
    from skiff.engine import images

    return Response(200, images.history(context.paths, request.params["name"]))


# --- save, load, prune -----------------------------------------------------------------------


def get(context: Context, request: Request) -> Stream:
    """``GET /images/{name}/get`` and ``GET /images/get?names=``: a docker-save tarball, streamed."""
    names = [request.params["name"]] if "name" in request.params else request.query.get("names", [])
    if not names:
        raise BadRequest("names is required")
    return Stream(_saved(context, names), "application/x-tar")


def _saved(context: Context, names: list[str]) -> Iterator[bytes]:
    """The archive as it is written, through a pipe from a writer thread. The names are resolved
    first: an unknown one is a 404 before the headers go out."""
    import os

    from skiff.image.archive import write_archive
    from skiff.image.store import ImageStore, emit_image_event

    store = ImageStore(context.paths)
    image_ids = list(dict.fromkeys(store.get(name).id for name in names))
    read_fd, write_fd = os.pipe()

    def write() -> None:
        with os.fdopen(write_fd, "wb") as out:
            try:
                write_archive(store, names, out)
            except OSError:
                return  # the client went away (EPIPE): no save event
            except Exception as exc:  # the client sees the archive cut short; one line, no traceback
                from skiff.api.errors import message_for

                print(f"skiff system service: images/get: {message_for(exc)}", file=sys.stderr, flush=True)
                return
        for image_id in image_ids:
            emit_image_event(context.paths, "save", image_id, image_id)

    # Opened here, not in the generator: a stream that is never started (the client left before
    # the headers) still closes its end when dropped, and the writer stops on EPIPE.
    source = os.fdopen(read_fd, "rb")

    def chunks() -> Iterator[bytes]:
        with source:
            while chunk := source.read(1 << 16):
                yield chunk

    threading.Thread(target=write, name="save", daemon=True).start()
    return chunks()


def load(context: Context, request: Request) -> Response:
    """``POST /images/load``: the body is the tarball; a ``{"stream": "Loaded image: ..."}`` line per
    image (``quiet`` is accepted: it hides Docker's progress bars, which skiff does not send)."""
    from skiff.image.store import ImageStore

    request.flag("quiet")  # checked, but as Docker's: it hides progress bars, never these lines
    lines = ImageStore(context.paths).load(request.upload())
    body = b"".join(
        json_line({"stream": f"Loaded image ID: {name}\n" if name.startswith("sha256:")
                   else f"Loaded image: {name}\n"}) for name in lines)
    return Response(200, body)


def prune(context: Context, request: Request) -> Response:
    """``POST /images/prune?filters=``: ``{"ImagesDeleted": [...], "SpaceReclaimed": N}``."""
    from skiff.engine.filters import FilterArgs, image_prune_filter
    from skiff.engine.system import prune_images

    include, every_image = image_prune_filter(FilterArgs(request.filters()), False)
    lines, freed = prune_images(context.paths, every_image, include)
    deleted = [{"Untagged": line.partition(": ")[2]} if line.startswith("untagged") else
               {"Deleted": line.partition(": ")[2]} for line in lines]
    return Response(200, {"ImagesDeleted": deleted or None, "SpaceReclaimed": freed})
