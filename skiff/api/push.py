"""``POST /images/{name}/push?tag=``: ``docker push`` through the Engine API.

The push is skiff.registry.push (the CLI's) with a reporter that sends each step as Docker's
JSON progress message: ``Preparing``, ``Waiting``, ``Pushing`` with its bar, ``Pushed`` /
``Layer already exists`` / ``Mounted from X``, then ``TAG: digest: D size: N`` and the ``aux``
message with the same three values (what the docker CLI reads for content trust). Without a
``tag`` every tag of the repository is pushed, as Docker's daemon does. As for a pull, an error
before the first message is the answer's status (404: no such local image), one after it the
stream's last message.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterator

from skiff.api.images import JSONReporter, error_line, json_line, progress_bar, registry_auth
from skiff.api.messages import Request, Stream
from skiff.api.server import Context

PROGRESS_INTERVAL = 0.1

_DONE = object()


class PushReporter(JSONReporter):
    """A push's progress as Docker's daemon streams it."""

    transfer_status = "Pushing"

    def __init__(self, send: Callable[[dict[str, Any]], None], clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(send, clock)

    def layer_waiting(self, layer: str, total: int) -> None:
        with self._lock:
            self._totals[layer] = total
            self._received[layer] = 0

    def layer_note(self, layer: str, status: str) -> None:
        self.send({"status": status, "progressDetail": {}, "id": layer})

    def layer_bytes(self, layer: str, count: int) -> None:
        with self._lock:
            sent = self._received[layer] = self._received.get(layer, 0) + count
            total = self._totals.get(layer, 0)
            now = self.clock()
            if sent < total and now - self._last_sent.get(layer, float("-inf")) < PROGRESS_INTERVAL:
                return
            self._last_sent[layer] = now
        self.send({"status": "Pushing", "progressDetail": {"current": sent, "total": total},
                   "progress": progress_bar(sent, total), "id": layer})

    def layer_status(self, layer: str, status: str, final: bool = False) -> None:
        self.send({"status": status, "progressDetail": {}, "id": layer})

    def pushed(self, tag: str, digest: str, size: int) -> None:
        self.send({"status": f"{tag}: digest: {digest} size: {size}"})
        self.send({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}})


def push(context: Context, request: Request) -> Stream:
    """Push ``name`` at ``tag`` (every tag when none), with the client's X-Registry-Auth."""
    from skiff.registry import push as push_image

    name, tag = request.params["name"], request.arg("tag") or ""
    ref = f"{name}:{tag}" if tag else name
    credentials = registry_auth(request.headers.get("X-Registry-Auth") or "")
    messages: queue.Queue[Any] = queue.Queue()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            push_image(context.paths, ref, all_tags=not tag, reporter=PushReporter(messages.put),
                       credentials=credentials)
        except BaseException as exc:  # the stream's last message, or the answer's status
            failure.append(exc)
        finally:
            messages.put(_DONE)

    threading.Thread(target=run, name="push", daemon=True).start()
    first = messages.get()
    if first is _DONE and failure:
        raise failure[0]

    def stream() -> Iterator[bytes]:
        from skiff.api.errors import message_for

        item = first
        while item is not _DONE:
            yield json_line(item)
            item = messages.get()
        if failure:
            yield error_line(message_for(failure[0]))

    return Stream(stream())
