"""plan_mounts: OCI entries, records, anonymous volumes for image VOLUMEs, --volumes-from, release."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.errors import VolumeError
from skiff.paths import Paths
from skiff.volume.plan import plan_mounts, release_records
from skiff.volume.spec import parse_run_mounts
from skiff.volume.store import VolumeStore


@pytest.fixture
def store(tmp_path: Path) -> VolumeStore:
    return VolumeStore(Paths(tmp_path / "root", tmp_path / "run"))


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "data").mkdir(parents=True)
    return root


def test_oci_entries_and_records(store: VolumeStore, tmp_path: Path) -> None:
    host = tmp_path / "host"
    specs = parse_run_mounts(
        volumes=["devoxx:/devoxx", f"{host}:/h:ro,rslave", "/anon"],
        mounts=["type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1777"],
        tmpfs=["/run:exec"])
    plan = plan_mounts(store, specs, container_id="c1")
    by_dest = {m["destination"]: m for m in plan.oci_mounts()}
    data = str(tmp_path / "root" / "volumes" / "devoxx" / "_data")
    assert by_dest["/devoxx"] == {"destination": "/devoxx", "type": "bind", "source": data,
                                  "options": ["rbind", "rprivate"]}
    assert by_dest["/h"] == {"destination": "/h", "type": "bind", "source": str(host),
                             "options": ["rbind", "rslave", "ro", "rro"]}
    assert by_dest["/t"] == {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                             "options": ["nosuid", "nodev", "noexec", "size=1048576", "mode=1777"]}
    assert by_dest["/run"]["options"] == ["nosuid", "nodev", "exec"]
    anon = [m for m in plan.mounts if m.anonymous]
    assert len(anon) == 1 and by_dest["/anon"]["source"].endswith(f"/{anon[0].name}/_data")
    records = {r["Destination"]: r for r in plan.records()}
    assert records["/devoxx"] == {"Type": "volume", "Name": "devoxx", "Source": data, "Destination": "/devoxx",
                                  "Driver": "local", "Mode": "", "RW": True, "Propagation": ""}
    assert records["/h"] == {"Type": "bind", "Source": str(host), "Destination": "/h", "Mode": "ro,rslave",
                             "RW": False, "Propagation": "rslave"}
    assert records["/t"]["Type"] == "tmpfs"
    # planning creates nothing
    assert not (tmp_path / "root" / "volumes").exists() and not host.exists()


def test_parents_mount_before_children(store: VolumeStore) -> None:
    specs = parse_run_mounts(volumes=["aa:/a/b/c", "bb:/a"], tmpfs=["/a/b"])
    plan = plan_mounts(store, specs, container_id="c1")
    assert [m["destination"] for m in plan.oci_mounts()] == ["/a", "/a/b", "/a/b/c"]


def test_image_volumes_get_anonymous_volumes_unless_mounted(store: VolumeStore, rootfs: Path) -> None:
    specs = parse_run_mounts(volumes=["named:/data"], tmpfs=["/cache"])
    image_volumes = {"/data": {}, "/cache": {}, "/logs/": {}}
    plan = plan_mounts(store, specs, image_volumes, container_id="c1")
    dests = {m.destination: m for m in plan.mounts}
    assert dests["/data"].name == "named" and not dests["/data"].anonymous
    assert dests["/cache"].spec.type == "tmpfs"
    assert dests["/logs"].anonymous and dests["/logs"].spec.type == "volume"
    plan.prepare(rootfs)
    logs = dests["/logs"].name
    assert store.get(logs).anonymous and store.exists("named")
    # run --rm: anonymous volumes go, named ones stay
    assert plan.release(remove_anonymous=True) == [logs]
    assert not store.exists(logs) and store.exists("named")


def test_prepare_creates_volumes_and_host_dirs(store: VolumeStore, rootfs: Path, tmp_path: Path) -> None:
    host = tmp_path / "new" / "dir"
    specs = parse_run_mounts(volumes=["devoxx:/devoxx", f"{host}:/h"],
                             mounts=["type=volume,source=lab,target=/l,volume-label=x=y"])
    plan = plan_mounts(store, specs, container_id="c1")
    plan.prepare(rootfs)
    assert host.is_dir() and store.get("devoxx").data.is_dir()
    assert store.get("lab").labels == {"x": "y"}
    plan.release(remove_anonymous=True)
    assert store.exists("devoxx") and store.exists("lab")


def test_release_records_removes_only_unused_anonymous(store: VolumeStore, rootfs: Path) -> None:
    plan = plan_mounts(store, parse_run_mounts(volumes=["/a", "keep:/k"]), container_id="c1")
    plan.prepare(rootfs)
    anon = plan.anonymous_volumes()[0]
    records = plan.records()
    assert release_records(store, records, "c1", remove_anonymous=True, users={anon: ["c1", "c2"]}) == []
    assert release_records(store, records, "c1", remove_anonymous=True, users={anon: ["c1"]}) == [anon]
    assert store.exists("keep") and not store.exists(anon)


def test_volumes_from(store: VolumeStore, rootfs: Path, tmp_path: Path) -> None:
    source = plan_mounts(store, parse_run_mounts(volumes=["/anon", "shared:/s", f"{tmp_path}:/h:ro"],
                                                 tmpfs=["/t"]), container_id="src")
    source.prepare(rootfs)
    records = source.records()
    plan = plan_mounts(store, parse_run_mounts(volumes=["mine:/s"]), volumes_from=[(records, False)],
                       container_id="c2")
    dests = {m.destination: m for m in plan.mounts}
    assert set(dests) == {"/anon", "/s", "/h"}          # tmpfs is not shared; -v wins over --volumes-from
    assert dests["/s"].name == "mine"
    assert dests["/anon"].inherited and dests["/anon"].name == source.anonymous_volumes()[0]
    assert dests["/h"].spec.read_only  # the bind stays read-only as in its source
    plan.prepare(rootfs)
    # the inherited anonymous volume belongs to the source container: c2's --rm keeps it
    assert plan.release(remove_anonymous=True) == []
    assert store.exists(source.anonymous_volumes()[0])
    ro = plan_mounts(store, [], volumes_from=[(records, True)], container_id="c3")
    assert all(m.spec.read_only for m in ro.mounts)
    assert all("rro" in m["options"] for m in ro.oci_mounts())


def test_prepare_requires_a_container_id(store: VolumeStore, rootfs: Path) -> None:
    plan = plan_mounts(store, parse_run_mounts(volumes=["devoxx:/d"]))
    with pytest.raises(VolumeError):
        plan.prepare(rootfs)
    plan.prepare(rootfs, container_id="c9")
    assert plan.container_id == "c9"


def test_bad_volume_options_refused_at_planning(store: VolumeStore) -> None:
    with pytest.raises(VolumeError, match='invalid option: "bogus"'):
        plan_mounts(store, parse_run_mounts(mounts=["type=volume,source=v1,target=/x,volume-opt=bogus=1"]))
    assert store.list() == []


def test_rootfs_propagation_follows_the_binds(store: VolumeStore, tmp_path: Path) -> None:
    def plan_for(mode: str) -> object:
        return plan_mounts(store, parse_run_mounts(volumes=[f"{tmp_path}:/h:{mode}"]), container_id="c1")

    assert plan_for("ro").rootfs_propagation() is None
    assert plan_for("rslave").rootfs_propagation() == "rslave"
    assert plan_for("shared").rootfs_propagation() == "rshared"
