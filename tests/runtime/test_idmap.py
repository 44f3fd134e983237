"""Idmapped bind mounts (mount uidMappings/gidMappings, options idmap and ridmap) on the real kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from skiff import linux
from skiff.errors import BundleError, SkiffError
from tests.runtime.conftest import BundleFactory

CONTAINER_ROOT = 100000  # host uid/gid of the container's root when it has a user namespace
OVERFLOW = 65534  # what stat shows for an id with no mapping


def _maps(*triples: tuple[int, int, int]) -> list[dict[str, int]]:
    return [{"containerID": c, "hostID": h, "size": s} for c, h, s in triples]


@pytest.fixture
def base() -> Iterator[Path]:
    """A world-traversable directory: a container root mapped to an unprivileged host uid reaches in."""
    path = Path(tempfile.mkdtemp(prefix="skiff-idmap-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def factory(base: Path, busybox_rootfs: Path) -> Iterator[BundleFactory]:
    made = BundleFactory(base, busybox_rootfs)
    yield made
    left = list(made.state_root.iterdir()) if made.state_root.exists() else []
    for entry in left:
        made.runtime.delete(entry.name, force=True)
    assert not left, f"runtime state left behind: {left}"


@pytest.fixture
def source(base: Path) -> Path:
    """Files owned by host ids 0, 1000 and 1 (the last one mapped by no test)."""
    src = base / "src"
    src.mkdir(mode=0o755)
    for name, owner in (("root0", 0), ("u1000", 1000), ("u1", 1)):
        (src / name).write_text(name)
        os.chown(src / name, owner, owner)
    return src


@pytest.fixture(autouse=True)
def no_helper_left() -> Iterator[None]:
    """Every process the runtime forked (helpers included) was reaped by the time it returned."""
    yield
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def _with_user_namespace(bundle: BundleFactory) -> None:
    linux_cfg = bundle.spec["linux"]
    linux_cfg["namespaces"].append({"type": "user"})
    linux_cfg["uidMappings"] = _maps((0, CONTAINER_ROOT, 65536))
    linux_cfg["gidMappings"] = _maps((0, CONTAINER_ROOT, 65536))
    for path in [bundle.rootfs, *bundle.rootfs.rglob("*")]:  # a rootfs owned by the mapped root
        st = os.lstat(path)
        os.lchown(path, st.st_uid + CONTAINER_ROOT, st.st_gid + CONTAINER_ROOT)


def _bind(source: Path, destination: str, options: list[str], uid: list[Any] | None = None,
          gid: list[Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"destination": destination, "type": "bind", "source": str(source),
                             "options": options}
    if uid is not None:
        entry["uidMappings"] = uid
    if gid is not None:
        entry["gidMappings"] = gid
    return entry


def _owners(output: str) -> dict[str, str]:
    """`stat -c '%n %u:%g'` lines -> {path: "uid:gid"}."""
    return dict(line.split() for line in output.splitlines() if line.strip())


STAT_ALL = "stat -c '%n %u:%g' /{m}/root0 /{m}/u1000 /{m}/u1"


# --- mapping --------------------------------------------------------------------------


def test_idmap_without_a_user_namespace_shows_the_mapped_host_ids(factory: BundleFactory, source: Path) -> None:
    uid = _maps((0, 1000, 1), (1000, 5000, 100))
    gid = _maps((0, 1100, 1), (1000, 6000, 100))
    factory.spec["mounts"] += [_bind(source, "/mapped", ["bind", "idmap"], uid, gid),
                               _bind(source, "/plain", ["bind"])]
    result = factory.sh(STAT_ALL.format(m="mapped") + "; " + STAT_ALL.format(m="plain"))
    assert result.code == 0, result.err
    assert _owners(result.out) == {
        "/mapped/root0": "1000:1100", "/mapped/u1000": "5000:6000", "/mapped/u1": f"{OVERFLOW}:{OVERFLOW}",
        "/plain/root0": "0:0", "/plain/u1000": "1000:1000", "/plain/u1": "1:1",
    }


def test_idmap_in_a_user_namespace_shows_the_files_as_the_container_ids(factory: BundleFactory,
                                                                          source: Path) -> None:
    _with_user_namespace(factory)
    uid = _maps((0, CONTAINER_ROOT, 1), (1000, CONTAINER_ROOT + 1000, 10))
    factory.spec["mounts"].append(_bind(source, "/data", ["bind", "idmap"], uid, uid))
    result = factory.sh(STAT_ALL.format(m="data") + "; touch /data/new && stat -c '%n %u:%g' /data/new")
    assert result.code == 0, result.err
    assert _owners(result.out) == {"/data/root0": "0:0", "/data/u1000": "1000:1000",
                                   "/data/u1": f"{OVERFLOW}:{OVERFLOW}", "/data/new": "0:0"}
    # The container's root wrote through the mapping: on disk the new file belongs to host root.
    st = os.stat(source / "new")
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_idmap_without_mappings_takes_the_container_user_namespace(factory: BundleFactory,
                                                                     source: Path) -> None:
    _with_user_namespace(factory)
    factory.spec["mounts"] += [_bind(source, "/data", ["rbind", "idmap"]), _bind(source, "/plain", ["bind"])]
    result = factory.sh(STAT_ALL.format(m="data") + "; stat -c '%n %u:%g' /plain/root0")
    assert result.code == 0, result.err
    assert _owners(result.out) == {"/data/root0": "0:0", "/data/u1000": "1000:1000", "/data/u1": "1:1",
                                   "/plain/root0": f"{OVERFLOW}:{OVERFLOW}"}


def test_idmap_without_mappings_takes_a_user_namespace_joined_by_path(source: Path) -> None:
    """Checked on the prepared tree itself (a detached mount's fd works as a directory fd)."""
    from skiff.runtime.idmap import prepare_idmapped_mounts, release_idmapped_mounts, userns_with_maps
    from skiff.runtime.mounts import PREPARED_TREE

    userns_fd = userns_with_maps(((0, 3000, 1),), ((0, 4000, 1),))
    config = {"linux": {"namespaces": [{"type": "mount"}, {"type": "user", "path": f"/proc/self/fd/{userns_fd}"}]},
              "mounts": [_bind(source, "/data", ["bind", "idmap"])]}
    try:
        prepare_idmapped_mounts(config, "/")
        tree_fd = config["mounts"][0][PREPARED_TREE]
        st = os.stat("root0", dir_fd=tree_fd)
        assert (st.st_uid, st.st_gid) == (3000, 4000)
    finally:
        release_idmapped_mounts(config)
        os.close(userns_fd)
    assert PREPARED_TREE not in config["mounts"][0]


def test_idmap_in_a_container_that_joins_a_user_namespace(factory: BundleFactory, source: Path) -> None:
    """The same, end to end: a container joining a holder's namespace sees its files mapped by it."""
    _with_user_namespace(factory)
    linux_cfg = factory.spec["linux"]
    namespaces = list(linux_cfg["namespaces"])
    factory.write(["sleep", "30"])
    holder = factory.runtime.create("holder", factory.path, stdio=factory.stdio("holder")[0])
    try:
        del linux_cfg["uidMappings"], linux_cfg["gidMappings"]
        linux_cfg["namespaces"] = [ns for ns in namespaces if ns["type"] != "user"] + [
            {"type": "user", "path": f"/proc/{holder}/ns/user"}]
        factory.spec["mounts"].append(_bind(source, "/data", ["bind", "idmap"]))
        result = factory.run(["sh", "-c", STAT_ALL.format(m="data")], cid="joiner")
        assert result.code == 0, result.err
        # The holder maps container 0.. to host 100000..: through the mount, host 0 shows as 0.
        assert _owners(result.out) == {"/data/root0": "0:0", "/data/u1000": "1000:1000", "/data/u1": "1:1"}
    finally:
        factory.runtime.delete("holder", force=True)


def test_mappings_without_the_option_are_applied_as_idmap(factory: BundleFactory, source: Path) -> None:
    factory.spec["mounts"].append(_bind(source, "/data", ["bind", "ro"], _maps((0, 1000, 1)), _maps((0, 1000, 1))))
    result = factory.sh("stat -c '%n %u:%g' /data/root0; touch /data/x 2>/dev/null || echo read-only")
    assert result.code == 0, result.err
    assert result.out.split("\n")[:2] == ["/data/root0 1000:1000", "read-only"]


def test_ridmap_maps_submounts_and_idmap_only_the_top(factory: BundleFactory, source: Path) -> None:
    sub = source / "sub"
    sub.mkdir()
    linux.mount("tmpfs", str(sub), "tmpfs", 0, "mode=755")
    try:
        (sub / "inner").write_text("inner")
        maps = _maps((0, 1000, 1))
        factory.spec["mounts"] += [_bind(source, "/top", ["rbind", "idmap"], maps, maps),
                                   _bind(source, "/deep", ["rbind", "ridmap"], maps, maps)]
        result = factory.sh("stat -c '%n %u:%g' /top/root0 /top/sub/inner /deep/root0 /deep/sub/inner")
    finally:
        linux.umount(str(sub))
    assert result.code == 0, result.err
    assert _owners(result.out) == {"/top/root0": "1000:1000", "/top/sub/inner": "0:0",
                                   "/deep/root0": "1000:1000", "/deep/sub/inner": "1000:1000"}


def test_no_tree_or_namespace_fd_reaches_the_container(factory: BundleFactory, source: Path) -> None:
    maps = _maps((0, 1000, 1))
    factory.spec["mounts"] += [_bind(source, "/a", ["bind", "idmap"], maps, maps),
                               _bind(source, "/b", ["bind", "ridmap"], _maps((0, 2000, 1)), maps)]
    result = factory.sh("ls /proc/self/fd")
    assert result.code == 0, result.err
    assert set(result.out.split()) <= {"0", "1", "2", "3"}, result.out  # 3: ls's own directory


# --- refused -------------------------------------------------------------------------

REFUSED = [
    pytest.param({"options": ["bind", "idmap"], "uidMappings": _maps((0, 1000, 0)),
                  "gidMappings": _maps((0, 1000, 1))}, "size 0", id="size-0"),
    pytest.param({"options": ["bind", "idmap"], "uidMappings": _maps((0, 1000, 1))},
                 "must be given together", id="uid-only"),
    pytest.param({"options": ["bind", "idmap"]}, "needs a container user namespace", id="no-mapping"),
    pytest.param({"type": "tmpfs", "source": "tmpfs", "options": ["idmap"], "uidMappings": _maps((0, 1000, 1)),
                  "gidMappings": _maps((0, 1000, 1))}, "only supported for bind mounts", id="not-a-bind"),
    pytest.param({"options": ["bind", "idmap"], "uidMappings": _maps((0, 1000, 10), (5, 3000, 10)),
                  "gidMappings": _maps((0, 1000, 1))}, "ranges must not overlap", id="overlap"),
    pytest.param({"source": "/sys/kernel", "options": ["bind", "idmap"], "uidMappings": _maps((0, 1000, 1)),
                  "gidMappings": _maps((0, 1000, 1))}, "/sys/kernel (sysfs) does not support idmapped mounts",
                 id="sysfs"),
]


@pytest.mark.parametrize(("change", "message"), REFUSED)
def test_what_cannot_be_idmapped_is_refused_and_leaves_nothing(factory: BundleFactory, source: Path,
                                                               change: dict[str, Any], message: str) -> None:
    entry = {**_bind(source, "/data", []), **change}
    factory.spec["mounts"].append(entry)
    with pytest.raises(SkiffError) as caught:
        factory.run(["true"])
    assert message in f"{caught.value} {caught.value.hint}"
    assert not factory.state_root.exists() or not any(factory.state_root.iterdir())


def test_a_bad_mapping_is_a_bundle_error(factory: BundleFactory, source: Path) -> None:
    factory.spec["mounts"].append(_bind(source, "/data", ["bind", "idmap"], [{"containerID": 0, "hostID": -1,
                                                                               "size": 1}], _maps((0, 1, 1))))
    with pytest.raises(BundleError, match=r"mounts\[\d+\] \(/data\)\.uidMappings.*non-negative integer"):
        factory.run(["true"])


# --- through skiff-oci ---------------------------------------------------------------------


def _skiff_oci(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skiff.oci.main", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=60)


def test_skiff_oci_run_with_an_idmapped_bind(factory: BundleFactory, source: Path, base: Path) -> None:
    maps = _maps((0, 1000, 1), (1000, 5000, 100))
    factory.spec["mounts"].append(_bind(source, "/data", ["bind", "idmap"], maps, maps))
    factory.write(["sh", "-c", STAT_ALL.format(m="data")])
    root = base / "oci-state"
    result = _skiff_oci(root, "run", "--bundle", str(factory.path), "idmap1")
    assert result.returncode == 0, result.stderr
    assert _owners(result.stdout) == {"/data/root0": "1000:1000", "/data/u1000": "5000:5000",
                                      "/data/u1": f"{OVERFLOW}:{OVERFLOW}"}
    assert not root.exists() or not any(root.iterdir())

    factory.spec["mounts"][-1]["source"] = "/sys/kernel"
    factory.write()
    result = _skiff_oci(root, "run", "--bundle", str(factory.path), "idmap2")
    assert result.returncode != 0
    assert "does not support idmapped mounts" in result.stderr, result.stderr
    assert not any(root.iterdir())


def test_idmap_options_are_never_filesystem_data() -> None:
    from skiff.runtime.mounts import IDMAP_OPTIONS, parse_options

    assert parse_options(["bind", *IDMAP_OPTIONS]) == (0, 0, "", False)
