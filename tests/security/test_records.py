"""One broken record stops nothing else; records are complete or absent; temp files of dead writers go.

A record can be left broken by a disk fault, a hand edit or an older skiff
killed between two writes. Then listings skip it with one warning line naming
the file, every other container and image stays usable, and ``rm -f`` removes
it; commands aimed at it fail with one line that says what to do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, Skiff


def record(skiff: Skiff, cid: str) -> Path:
    return skiff.root / "containers" / cid / "container.json"


def create(skiff: Skiff, name: str) -> str:
    return skiff.ok("create", "--network", "none", "--name", name, "busybox", "true").strip()


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr and "internal error" not in stderr, stderr
    return lines[0]


def truncate_before(path: Path, marker: str) -> None:
    text = path.read_text()
    path.write_text(text[:text.index(marker)])


BREAKAGES = {
    "truncated-early": lambda p: p.write_text(p.read_text()[:200]),
    "truncated-after-name": lambda p: truncate_before(p, '"NetworkSettings"'),
    "empty": lambda p: p.write_text(""),
    "not-an-object": lambda p: p.write_text("[]\n"),
    "no-state": lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items()
                                                   if k != "State"})),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_container_record_stops_nothing_else(sk: Skiff, breakage: str) -> None:
    broken = create(sk, "broken")
    good = create(sk, "good")
    BREAKAGES[breakage](record(sk, broken))

    ps = sk("ps", "-a", "--format", "json")
    assert ps.returncode == 0, ps
    assert [json.loads(line)["Names"] for line in ps.stdout.splitlines()] == ["good"]
    warning = one_line(ps.stderr)
    assert warning.startswith("skiff: warning: ") and str(record(sk, broken)) in warning, warning
    assert "skiff rm -f" in warning

    assert json.loads(sk.ok("inspect", "good"))[0]["Id"] == good
    assert sk.ok("run", "--rm", "--network", "none", "busybox", "echo", "still", "runs") == "still runs\n"

    for command in (["start", broken], ["inspect", broken]):
        result = sk(*command)
        assert result.returncode != 0, result
        line = one_line(result.stderr.replace(warning + "\n", ""))
        assert str(record(sk, broken)) in line and "skiff rm -f " in line, line

    # rm -f by id always works; by name when the name can still be read from the file.
    ref = "broken" if breakage in ("truncated-after-name", "no-state") else broken
    removed = sk("rm", "-f", ref)
    assert removed.returncode == 0 and removed.stdout == f"{ref}\n", removed
    assert not record(sk, broken).parent.exists()
    clean = sk("ps", "-a", "--format", "json")
    assert clean.stderr == "" and len(clean.stdout.splitlines()) == 1


def test_rm_without_force_names_the_broken_record(sk: Skiff) -> None:
    broken = create(sk, "broken")
    record(sk, broken).write_text('{"Id": "')
    result = sk("rm", broken)
    assert result.returncode != 0
    assert "skiff rm -f" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert record(sk, broken).exists()


def test_an_incomplete_record_from_a_killed_create_is_reported_and_removable(sk: Skiff) -> None:
    """What `run -d` killed between its two writes left: the record without SkiffOptions."""
    cid = create(sk, "half")
    data = json.loads(record(sk, cid).read_text())
    for key in ("SkiffOptions", "LogPath", "RestartCount"):
        data.pop(key)
    record(sk, cid).write_text(json.dumps(data))

    assert [json.loads(line)["Names"] for line in sk.ok("ps", "-a", "--format", "json").splitlines()] == ["half"]
    result = sk("start", "half")
    assert result.returncode == 1, result  # as every failure of `docker start`
    line = one_line(result.stderr)
    assert str(record(sk, cid)) in line and "skiff rm -f half" in line, line
    assert json.loads(sk.ok("inspect", "half"))[0]["State"]["Status"] == "created"
    assert sk.ok("rm", "-f", "half") == "half\n"
    assert not record(sk, cid).parent.exists()


WRITES_OF_CREATE = """
import json, sys
from skiff import store
from skiff.engine import Engine, RunOptions
from skiff.paths import Paths

seen = []
real = store.write_atomic
def spy(path, data, *args, **kwargs):
    if path.name == "container.json":
        seen.append(sorted(json.loads(data)))
    return real(path, data, *args, **kwargs)
store.write_atomic = spy
Engine(Paths.from_env(None, None)).create(RunOptions(image="busybox", command=["true"], network="none"))
print(json.dumps(seen))
"""


def test_every_write_of_a_new_record_is_complete(sk: Skiff) -> None:
    """A command killed after any write of a new record leaves a record that can start."""
    env = {**sk.env, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", WRITES_OF_CREATE], env=env, capture_output=True, text=True,
                         check=True).stdout
    writes = json.loads(out)
    assert writes, "create wrote no container record"
    for keys in writes:
        assert {"SkiffOptions", "LogPath", "RestartCount", "State", "Config", "HostConfig"} <= set(keys), keys


def test_a_container_run_in_the_foreground_can_be_started_again(sk: Skiff) -> None:
    assert sk("run", "--network", "none", "--name", "fg", "busybox", "sh", "-c", "exit 3").returncode == 3
    result = sk("start", "fg")
    assert result.returncode == 0 and "internal error" not in result.stderr, result
    assert sk.ok("wait", "fg") == "3\n"


# --- images ----------------------------------------------------------------------------------


def repositories(skiff: Skiff) -> Path:
    return skiff.root / "image" / "repositories.json"


def repo_tags(skiff: Skiff, ref: str) -> list[str]:
    return json.loads(skiff.ok("image", "inspect", ref))[0]["RepoTags"]


def test_a_truncated_tag_index_keeps_what_it_can_and_blocks_nothing(sk: Skiff, busybox_tar: Path) -> None:
    sk.ok("tag", "busybox", "zz.example/last:1")
    text = repositories(sk).read_text()
    repositories(sk).write_text(text[:text.index('"zz.example')])  # the last entry is cut off

    images = sk("images")
    assert images.returncode == 0, images
    warning = one_line(images.stderr)
    assert warning.startswith("skiff: warning: ") and str(repositories(sk)) in warning
    assert "busybox" in images.stdout
    assert sk.ok("run", "--rm", "--network", "none", "busybox", "echo", "ok") == "ok\n"

    sk.ok("import", str(busybox_tar), "second:1")
    assert repo_tags(sk, "second:1") == ["second:1"]
    assert json.loads(repositories(sk).read_text()) == {
        "docker.io/library/busybox:latest": repo_tags_id(sk, "busybox"),
        "docker.io/library/second:1": repo_tags_id(sk, "second:1")}
    assert len(list(repositories(sk).parent.glob("repositories.json.corrupt-*"))) == 1
    assert sk("images").stderr == ""


def repo_tags_id(skiff: Skiff, ref: str) -> str:
    return json.loads(skiff.ok("image", "inspect", ref))[0]["Id"]


def test_a_garbage_tag_index_blocks_neither_import_nor_listing(sk: Skiff, busybox_tar: Path) -> None:
    repositories(sk).write_text("\0\0garbage")
    listing = sk("images")
    assert listing.returncode == 0 and str(repositories(sk)) in one_line(listing.stderr), listing
    imported = sk("import", str(busybox_tar), "fresh:1")
    assert imported.returncode == 0, imported
    assert repo_tags(sk, "fresh:1") == ["fresh:1"]
    pruned = sk("image", "prune", "-a", "-f")
    assert pruned.returncode == 0, pruned


def test_prune_refuses_while_the_tag_index_is_broken(sk: Skiff) -> None:
    sk.ok("tag", "busybox", "zz.example/keep:1")
    text = repositories(sk).read_text()
    repositories(sk).write_text(text[:text.index('"zz.example')])
    pruned = sk("image", "prune", "-a", "-f")
    assert pruned.returncode != 0 and "refusing to prune" in pruned.stderr, pruned
    assert repo_tags_id(sk, "busybox")


def test_a_broken_image_record_hides_only_itself(sk: Skiff, busybox_tar: Path) -> None:
    sk.ok("import", str(busybox_tar), "other:1", "--change", "ENV X=1")
    other = repo_tags_id(sk, "other:1")
    (sk.root / "image" / "images" / f"{other.removeprefix('sha256:')}.json").write_text('{"id": ')
    images = sk("images")
    assert images.returncode == 0 and "busybox" in images.stdout and "other" not in images.stdout, images
    assert other.removeprefix("sha256:")[:12] in one_line(images.stderr)
    assert sk.ok("run", "--rm", "--network", "none", "busybox", "true") == ""


def test_a_broken_volume_record_hides_only_itself(skiff: Skiff) -> None:
    skiff.ok("volume", "create", "good")
    skiff.ok("volume", "create", "bad")
    (skiff.root / "volumes" / "bad" / "meta.json").write_text("{")
    listing = skiff("volume", "ls", "-q")
    assert listing.returncode == 0 and listing.stdout == "good\n", listing
    assert "bad" in one_line(listing.stderr)
    assert skiff.ok("volume", "rm", "bad") == "bad\n"
    assert skiff("volume", "ls", "-q").stderr == ""


# --- temporary files of atomic writes ------------------------------------------------------------


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_temp_files_of_killed_writers_are_swept(sk: Skiff) -> None:
    cid = create(sk, "tmp")
    folder = record(sk, cid).parent
    dead = folder / f".container.json.{dead_pid()}.0badc0de"
    live = folder / f".container.json.{os.getpid()}.0000beef"
    for path in (dead, live):
        path.write_text('{"half": ')
    images_dead = repositories(sk).parent / f".repositories.json.{dead_pid()}.12345678"
    images_dead.write_text("{")

    sk.ok("rename", "tmp", "tmp2")
    sk.ok("tag", "busybox", "again:1")
    assert not dead.exists() and not images_dead.exists()
    assert live.exists()  # its writer still runs: it may be writing now
    live.unlink()
