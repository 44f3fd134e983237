"""skiff.engine.listing: what the API server keeps from one listing to the next, always checked
against the records on disk (no root needed: records in a temporary root, no container runs)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skiff import proc
from skiff.engine import Engine, listing
from skiff.engine import containers as records
from skiff.engine.containers import RECORD, find_container, scan
from skiff.engine.listing import ListingCache
from skiff.paths import Paths
from skiff.store import write_json



def hours_ago(hours: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - hours * 3600 - 60))


LONG_AGO = hours_ago(3)


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv("SKIFF_CGROUP_PARENT", "skiff-unit-no-such-parent")  # the stale sweep finds nothing
    return Paths(tmp_path / "root", tmp_path / "run")


@pytest.fixture(autouse=True)
def closed_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every ListingCache a test makes is closed after it (its inotify descriptor, its pidfds)."""
    made: list[ListingCache] = []
    real_init = ListingCache.__init__

    def tracked(self: ListingCache) -> None:
        real_init(self)
        made.append(self)

    monkeypatch.setattr(ListingCache, "__init__", tracked)
    yield
    for cache in made:
        cache.close()


def record(cid: str, **state: Any) -> dict[str, Any]:
    return {"Id": cid, "Name": f"/c{cid[:4]}", "Created": LONG_AGO, "Image": "sha256:" + "b" * 64,
            "Path": "sleep", "Args": ["1000"],
            "State": state or {"Status": "exited", "ExitCode": 1, "StartedAt": LONG_AGO, "FinishedAt": LONG_AGO},
            "Config": {"Image": "busybox", "Labels": {"a": "b"}}, "HostConfig": {"NetworkMode": "none"},
            "Mounts": [], "NetworkSettings": {}}


def save(paths: Paths, data: dict[str, Any]) -> Path:
    directory = paths.containers / data["Id"]
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / RECORD, data)
    return directory / RECORD


def test_an_unchanged_record_is_parsed_once_and_shared(paths: Paths) -> None:
    for cid in ("1" * 64, "2" * 64):
        save(paths, record(cid))
    cache = ListingCache()
    first, second = scan(paths, cache)[0], scan(paths, cache)[0]
    assert sorted((c.id, c.data) for c in first) == sorted((c.id, c.data) for c in scan(paths)[0])
    assert {c.id: id(c.data) for c in first} == {c.id: id(c.data) for c in second}


def test_a_record_rewritten_with_the_same_size_inode_and_times_is_read_anew(paths: Paths) -> None:
    """The bytes decide: a cache that trusted stat() (inode, size, mtime) would list exit code 1 here."""
    path = save(paths, record("1" * 64))
    cache = ListingCache()
    assert scan(paths, cache)[0][0].state.exit_code == 1
    before = os.stat(path)
    text = path.read_bytes()
    changed = text.replace(b'"ExitCode": 1', b'"ExitCode": 2')
    assert changed != text and len(changed) == len(text)
    with open(path, "r+b") as f:
        f.write(changed)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    assert scan(paths, cache)[0][0].state.exit_code == 2


def test_removed_containers_are_forgotten_and_broken_records_reported_as_without_a_cache(paths: Paths) -> None:
    kept, removed, broken = "1" * 64, "2" * 64, "3" * 64
    save(paths, record(kept))
    gone = save(paths, record(removed))
    save(paths, record(broken)).write_text('{"Id": ')
    cache = ListingCache()
    scan(paths, cache)
    gone.unlink()
    gone.parent.rmdir()
    good, bad = scan(paths, cache)
    assert [c.id for c in good] == [kept] and set(cache._records) == {kept}
    assert [(b.id, b.problem, b.path) for b in bad] == [(b.id, b.problem, b.path) for b in scan(paths)[1]]


def test_a_list_document_is_kept_while_the_record_and_network_facts_are_the_same() -> None:
    cache, built = ListingCache(), []

    def build(rec: Any, network: Any, ids: dict[str, str]) -> dict[str, Any]:
        built.append(rec["Id"])
        return {"built": len(built)}

    rec, ids = record("1" * 64), {"none": "2" * 64}
    first = cache.document(build, rec, None, ids)
    assert cache.document(build, rec, None, dict(ids)) is first and len(built) == 1
    assert cache.document(build, rec, {"Ports": {}}, ids) == {"built": 2}  # the network changed
    assert cache.document(build, dict(rec), {"Ports": {}}, ids) == {"built": 3}  # the record was parsed anew
    assert cache.document(build, rec, {"Ports": {}}, {"none": "4" * 64}) == {"built": 4}


def test_the_stale_cgroup_sweep_runs_at_most_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(listing.time, "monotonic", lambda: now[0])
    cache = ListingCache()
    assert cache.sweep_due() and not cache.sweep_due()
    now[0] += listing.STALE_SWEEP_INTERVAL - 0.01
    assert not cache.sweep_due()
    now[0] += 0.01
    assert cache.sweep_due()


def test_a_listing_through_the_cache_is_the_listing_without_it(paths: Paths) -> None:
    """Entries, their order and the owners' liveness (from pidfds): the same as a CLI command's."""
    start = proc.start_time(os.getpid())
    save(paths, record("1" * 64))
    running = record("2" * 64, Status="running", Running=True, Pid=os.getpid(), StartedAt=hours_ago(2),
                     MonitorPid=os.getpid(), MonitorStart=start)
    save(paths, dict(running, Created=hours_ago(2)))  # the newer: listed first
    cache = ListingCache()
    plain = Engine(paths).summaries(Engine(paths).containers(all_=True))
    for _ in range(2):
        engine = Engine(paths, cache)
        assert engine.summaries(engine.containers(all_=True)) == plain
    engine = Engine(paths, cache)
    assert [c.id for c in engine.containers()] == ["2" * 64]  # its owner (this process) runs
    assert [e["Status"] for e in plain] == ["Up 2 hours", "Exited (1) 3 hours ago"]
    cid = "2" * 64
    sized = dict(plain[0], SizeRw=0, SizeRootFs=0)
    assert engine.summaries([c for c in engine.containers() if c.id == cid], size=True) == [sized]


def test_a_container_found_through_the_cache_is_the_callers_own(paths: Paths) -> None:
    save(paths, record("1" * 64))
    cache = ListingCache()
    scan(paths, cache)
    for ref in ("111111", "c1111"):  # a prefix and a name: resolved from the cache's parses
        found = find_container(paths, ref, cache=cache)
        assert found.id == "1" * 64 and found.data == scan(paths)[0][0].data
        found.data["State"]["ExitCode"] = 9  # what a caller may do under the record's lock
        assert scan(paths, cache)[0][0].state.exit_code == 1  # the cache's parse is untouched


def test_a_full_id_wins_over_a_name_that_spells_it(paths: Paths) -> None:
    """Docker's order: the full id, then the name, then a unique prefix."""
    save(paths, dict(record("1" * 64), Name="/" + "2" * 64))  # each named as the other's id: whichever
    save(paths, dict(record("2" * 64), Name="/" + "1" * 64))  # the scan reads first, its name must not win
    for cache in (None, ListingCache()):
        assert find_container(paths, "1" * 64, cache=cache).id == "1" * 64
        assert find_container(paths, "2" * 64, cache=cache).id == "2" * 64


def counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids whose record a cached scan reads from now on."""
    read: list[str] = []
    real = records._read_cached

    def counted(cache: ListingCache, cid: str, path: str) -> Any:
        read.append(cid)
        return real(cache, cid, path)

    monkeypatch.setattr(records, "_read_cached", counted)
    return read


def test_records_are_read_again_only_once_one_may_have_changed(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second, third = "1" * 64, "2" * 64, "3" * 64
    path = save(paths, record(first))
    save(paths, record(second))
    read = counting_reads(monkeypatch)
    cache = ListingCache()
    assert len(scan(paths, cache)[0]) == 2 and len(read) == 2
    assert len(scan(paths, cache)[0]) == 2 and len(read) == 2  # nothing changed: no file read
    (path.parent / f"{first}-json.log").write_text("a log line\n")  # not a record
    (paths.containers / f".{first}.lock").touch()  # a lock file
    assert len(scan(paths, cache)[0]) == 2 and len(read) == 2
    save(paths, record(first, Status="exited", ExitCode=5, StartedAt=LONG_AGO, FinishedAt=LONG_AGO))
    assert {c.id: c.state.exit_code for c in scan(paths, cache)[0]}[first] == 5  # renamed into place
    save(paths, record(third))  # a container made
    assert len(scan(paths, cache)[0]) == 3
    shutil.rmtree(path.parent)  # and one removed
    assert sorted(c.id for c in scan(paths, cache)[0]) == [second, third]
    reads = len(read)
    assert len(scan(paths, cache)[0]) == 2 and len(read) == reads


def test_a_broken_record_is_read_at_every_scan(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    save(paths, record("1" * 64)).write_text('{"Id": ')
    read = counting_reads(monkeypatch)
    cache = ListingCache()
    for count in (1, 2):
        assert scan(paths, cache)[1][0].id == "1" * 64 and len(read) == count


def test_an_entry_is_kept_while_its_document_and_status_text_are_the_same() -> None:
    cache, built = ListingCache(), []

    def build() -> dict[str, Any]:
        built.append(1)
        return {"n": len(built)}

    document = {"Id": "1" * 64}
    first = cache.entry(document, "Up 2 hours", build)
    assert cache.entry(document, "Up 2 hours", build) is first and len(built) == 1
    assert cache.entry(document, "Up 3 hours", build) == {"n": 2}  # time passed
    assert cache.entry(dict(document), "Up 3 hours", build) == {"n": 3}  # the record was parsed anew
    other = cache.entry({"Id": "2" * 64}, "Up 3 hours", build)
    assert other == {"n": 4}
    cache.retain([])  # both removed: forgotten
    assert cache._entries == {}
