"""``POST /commit``: Docker 20.10's ContainerCommit over skiff.engine.commit.

Query: ``container``, ``repo``, ``tag``, ``comment``, ``author``, ``pause`` (default true),
``changes`` (Dockerfile instructions, one a value or newline-separated); the body, when there is
one, a container.Config merged over the container's. Answer: 201 ``{"Id": "sha256:..."}``.
"""

from __future__ import annotations

from skiff.api.errors import BadRequest
from skiff.api.messages import Request, Response
from skiff.api.server import Context


def commit(context: Context, request: Request) -> Response:
    from skiff.engine.commit import CommitRequest, commit as commit_container

    container = request.arg("container") or ""
    if not container:
        raise BadRequest("container is required")
    repo, tag = request.arg("repo") or "", request.arg("tag") or ""
    reference = (f"{repo}:{tag}" if tag else repo) or None
    changes = [line for value in request.query.get("changes", []) for line in value.splitlines() if line.strip()]
    body = request.json(required=False)  # the docker CLI sends "null" when it has no config
    if body is not None and not isinstance(body, dict):
        raise BadRequest("invalid JSON in the request body: expected a container config object")
    image = commit_container(context.engine(), CommitRequest(
        container, reference, changes, request.arg("comment") or "", request.arg("author") or "",
        request.flag("pause", default=True), body or None))
    return Response(201, {"Id": image.id})
