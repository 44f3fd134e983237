"""``logs --follow`` (CLI and API): when the follower stops waiting for more of a container's log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from skiff.engine.containers import Container
from skiff.engine.logs import follow, still_written
from skiff.paths import Paths


def _container(tmp_path: Path, status: str) -> Container:
    paths = Paths(tmp_path / "root", tmp_path / "run")
    data = {"Id": "c" * 64, "Name": "/web", "Created": "2026-01-01T00:00:00Z", "Image": "sha256:" + "b" * 64,
            "Config": {}, "HostConfig": {}, "State": {"Status": status, "Running": status == "running"}}
    (paths.containers / data["Id"]).mkdir(parents=True)
    (paths.containers / data["Id"] / "container.json").write_text(json.dumps(data))
    return Container(paths, data)


def test_a_removed_container_is_no_longer_written(tmp_path: Path) -> None:
    """Its last state read said it runs: a follower that trusted it would never end (docker-py's
    ``containers.run(remove=True)`` follows the logs while its ``rm`` follows the wait)."""
    container = _container(tmp_path, "running")
    written = still_written(container)
    assert written()
    shutil.rmtree(container.dir)
    assert not written()


def test_following_a_removed_containers_log_drains_it_and_ends(tmp_path: Path) -> None:
    container = _container(tmp_path, "running")
    log = container.dir / "log.json"
    log.write_text(json.dumps({"log": "hello\n", "stream": "stdout", "time": "2026-01-01T00:00:00Z"}) + "\n")
    entries = follow(log, 0, still_written(container))
    assert next(entries)[1] == "hello\n"
    shutil.rmtree(container.dir)
    assert list(entries) == []  # it ends
