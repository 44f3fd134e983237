"""The volume store: Docker's names, errors, labels, options and atomic records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from skiff.errors import VolumeError, VolumeInUse, VolumeNotFound
from skiff.paths import Paths
from skiff.volume.store import ANONYMOUS_LABEL, VolumeStore


@pytest.fixture
def store(tmp_path: Path) -> VolumeStore:
    return VolumeStore(Paths(tmp_path / "root", tmp_path / "run"))


def test_create_layout_and_inspect(store: VolumeStore, tmp_path: Path) -> None:
    volume = store.create("devoxx", labels={"team": "a"})
    data = tmp_path / "root" / "volumes" / "devoxx" / "_data"
    assert volume.data == data and data.is_dir()
    meta = json.loads((data.parent / "meta.json").read_text())
    assert meta["Name"] == "devoxx" and meta["Labels"] == {"team": "a"}
    info = store.inspect("devoxx")
    assert sorted(info) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"]
    assert info["Mountpoint"] == str(data) and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"team": "a"} and info["Options"] == {}  # Docker 20.10: {} when none, never null
    assert info["CreatedAt"].endswith("Z")
    # nothing but the volume and the lock: no staging directories left behind
    assert sorted(os.listdir(tmp_path / "root" / "volumes")) == [".lock", "devoxx"]


def test_create_existing_returns_it(store: VolumeStore) -> None:
    first = store.create("devoxx")
    (first.data / "keep").write_text("x")
    again = store.create("devoxx")
    assert again.created_at == first.created_at and (again.data / "keep").exists()


def test_random_and_anonymous_names(store: VolumeStore) -> None:
    named = store.create()
    anon = store.create(anonymous=True)
    for v in (named, anon):
        assert len(v.name) == 64 and all(c in "0123456789abcdef" for c in v.name)
    assert not named.anonymous and anon.anonymous
    assert store.inspect(anon.name)["Labels"] == {ANONYMOUS_LABEL: ""}
    assert sorted(v.name for v in store.list()) == sorted([named.name, anon.name])


@pytest.mark.parametrize("name, message", [
    ("a", "volume name is too short"),
    ("-ab", "includes invalid characters"),
    ("a/b", "includes invalid characters"),
    ("a b", "includes invalid characters"),
    ("..", "includes invalid characters"),
])
def test_bad_names(store: VolumeStore, name: str, message: str) -> None:
    with pytest.raises(VolumeError, match=message):
        store.create(name)
    assert store.list() == []


@pytest.mark.parametrize("driver, options, message", [
    ("nfs", {}, 'plugin "nfs" not found'),
    ("local", {"foo": "bar"}, 'invalid option: "foo"'),
    ("local", {"type": "tmpfs"}, 'missing required option: "device"'),
    ("local", {"device": "tmpfs"}, 'missing required option: "type"'),
    ("local", {"type": "none", "device": "rel", "o": "bind"}, "must be an absolute path"),
])
def test_bad_driver_or_options(store: VolumeStore, driver: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(VolumeError, match=message):
        store.create("vol1", driver=driver, options=options)
    assert not store.exists("vol1")


def test_get_missing(store: VolumeStore) -> None:
    with pytest.raises(VolumeNotFound, match="^No such volume: nope$") as err:
        store.get("nope")
    assert err.value.exit_code == 1
    with pytest.raises(VolumeNotFound):
        store.get("../root")


def test_remove(store: VolumeStore) -> None:
    volume = store.create("devoxx")
    (volume.data / "sub").mkdir()
    (volume.data / "sub" / "f").write_text("x")
    with pytest.raises(VolumeInUse, match=r"^remove devoxx: volume is in use - \[c1, c2\]$") as err:
        store.remove("devoxx", users=["c2", "c1"])
    assert err.value.exit_code == 1 and volume.data.exists()
    assert store.remove("devoxx") is True
    assert not volume.path.exists() and store.list() == []
    with pytest.raises(VolumeNotFound, match="No such volume: devoxx"):
        store.remove("devoxx")
    assert store.remove("devoxx", force=True) is False


def test_remove_never_deletes_through_a_mount(store: VolumeStore, tmp_path: Path) -> None:
    from skiff import linux

    volume = store.create("devoxx")
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "file").write_text("keep")
    linux.mount(outside, volume.data, None, linux.MS_BIND)
    try:
        with pytest.raises(VolumeInUse, match="still mounted"):
            store.remove("devoxx")
    finally:
        linux.umount(volume.data)
    assert (outside / "file").read_text() == "keep"


def test_prune(store: VolumeStore) -> None:
    anon_used = store.create(anonymous=True)
    anon_free = store.create(anonymous=True)
    (anon_free.data / "f").write_bytes(b"x" * 10000)
    store.create("named", labels={"keep": "no"})
    store.create("other")
    removed, freed = store.prune({anon_used.name: ["c1"]})
    assert removed == [anon_free.name] and freed >= 10000
    assert store.prune({}, all=True, labels=["keep=yes"])[0] == []
    assert store.prune({}, all=True, labels=["keep"])[0] == ["named"]
    assert sorted(store.prune({anon_used.name: ["c1"]}, all=True)[0]) == ["other"]
    assert [v.name for v in store.list()] == [anon_used.name]


def test_remove_anonymous_keeps_named_and_used(store: VolumeStore) -> None:
    anon = store.create(anonymous=True)
    shared = store.create(anonymous=True)
    store.create("named")
    removed = store.remove_anonymous([anon.name, shared.name, "named", "missing"], {shared.name: ["other"]})
    assert removed == [anon.name]
    assert sorted(v.name for v in store.list()) == sorted([shared.name, "named"])


def test_leftovers_of_a_killed_create_are_swept(store: VolumeStore, tmp_path: Path) -> None:
    volumes = tmp_path / "root" / "volumes"
    (volumes / ".new-half-123" / "_data").mkdir(parents=True)
    (volumes / ".trash-old-456" / "_data").mkdir(parents=True)
    assert store.list() == []  # never shown
    store.create("next")
    assert sorted(os.listdir(volumes)) == [".lock", "next"]
