"""-v / --mount / --tmpfs / --volumes-from parsing: Docker's rules and Docker's messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.errors import VolumeError
from skiff.volume.spec import parse_mount, parse_run_mounts, parse_size, parse_tmpfs, parse_volume, parse_volumes_from


@pytest.mark.parametrize("raw, kind, source, target, ro, copy, propagation", [
    ("devoxx:/devoxx", "volume", "devoxx", "/devoxx", False, True, ""),
    ("devoxx:/devoxx:ro", "volume", "devoxx", "/devoxx", True, True, ""),
    ("devoxx:/devoxx:rw,nocopy", "volume", "devoxx", "/devoxx", False, False, ""),
    ("/data", "volume", "", "/data", False, True, ""),
    ("/data/", "volume", "", "/data", False, True, ""),
    ("/srv/x:/x", "bind", "/srv/x", "/x", False, True, ""),
    ("/srv/x:/x:ro,rslave", "bind", "/srv/x", "/x", True, True, "rslave"),
    ("/srv//x/:/a/../b", "bind", "/srv/x", "/b", False, True, ""),
    ("my.vol_1-a:/v:z", "volume", "my.vol_1-a", "/v", False, True, ""),
])
def test_volume_flag_good(raw: str, kind: str, source: str, target: str, ro: bool, copy: bool,
                          propagation: str) -> None:
    spec = parse_volume(raw)
    assert (spec.type, spec.source, spec.target, spec.read_only, spec.copy, spec.propagation) == \
        (kind, source, target, ro, copy, propagation)


@pytest.mark.parametrize("raw, message", [
    (":/x", "invalid volume specification: ':/x'"),
    ("x:", "invalid volume specification: 'x:'"),
    ("/foo:rw", "invalid volume specification: '/foo:rw'"),
    ("a:/b:ro:d", "invalid volume specification: 'a:/b:ro:d'"),
    ("vol:/x:rx", "invalid mode: rx"),
    ("vol:/x:ro,rw", "invalid mode: ro,rw"),
    ("vol:rel", "invalid volume specification: 'vol:rel': "
                "invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"),
    ("vol:/", "invalid volume specification: 'vol:/': "
              "invalid mount config for type \"volume\": invalid specification: destination can't be '/'"),
    ("/h:/a/..", "invalid volume specification: '/h:/a/..': "
                 "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
    ("vol:/a/../../etc", "invalid volume specification: 'vol:/a/../../etc': "
                         "invalid mount config for type \"volume\": invalid mount path: '/a/../../etc' "
                         "escapes the container root with '..'"),
    ("v:/x", "create v: volume name is too short, names should be at least two alphanumeric characters"),
    ("foo/bar:/x", 'create foo/bar: "foo/bar" includes invalid characters for a local volume name, only '
                   '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
                   "use absolute path"),
    ("_x:/x", 'create _x: "_x" includes invalid characters'),
    ("/x:ro", "invalid volume specification: '/x:ro'"),
    ("vol:/x:rshared", 'invalid mount config for type "volume": field BindOptions must not be specified'),
    ("/h:/x:nocopy", 'invalid mount config for type "bind": field VolumeOptions must not be specified'),
])
def test_volume_flag_bad(raw: str, message: str) -> None:
    with pytest.raises(VolumeError) as err:
        parse_volume(raw)
    assert str(err.value).startswith(message)
    assert err.value.exit_code == 125


def test_mount_flag_good(tmp_path: Path) -> None:
    spec = parse_mount(f"type=bind,source={tmp_path},target=/h,readonly,bind-propagation=rshared")
    assert (spec.type, spec.source, spec.target, spec.read_only, spec.propagation) == \
        ("bind", str(tmp_path), "/h", True, "rshared")
    spec = parse_mount("type=volume,src=data,dst=/d,volume-nocopy,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"
                       "volume-label=a=b")
    assert (spec.source, spec.target, spec.copy) == ("data", "/d", False)
    assert spec.volume_options == {"type": "tmpfs", "device": "tmpfs"} and spec.volume_labels == {"a": "b"}
    spec = parse_mount("target=/anon")
    assert (spec.type, spec.source) == ("volume", "")
    spec = parse_mount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770")
    assert (spec.tmpfs_size, spec.tmpfs_mode, spec.tmpfs_flags) == (64 << 20, 0o1770, ["nosuid", "nodev", "noexec"])
    spec = parse_mount('type=volume,source=v2,target=/v,"volume-opt=o=size=1m,uid=1000"')
    assert spec.volume_options == {"o": "size=1m,uid=1000"}


@pytest.mark.parametrize("raw, message", [
    ("type=bind,source=/nope-skiff-missing,target=/x",
     'invalid mount config for type "bind": bind source path does not exist: /nope-skiff-missing'),
    ("type=bind,target=/x", 'invalid mount config for type "bind": field Source must not be empty'),
    ("type=bind,source=rel,target=/x", "invalid mount path: 'rel' mount path must be absolute"),
    ("type=volume,source=v1,target=/x,foo=bar",
     "invalid argument \"type=volume,source=v1,target=/x,foo=bar\" for \"--mount\" flag: unexpected key 'foo' in 'foo=bar'"),
    ("type=volume,source=v1", 'for "--mount" flag: target is required'),
    ("type=volume,source=v1,target=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
    ("type=nfs,target=/x", 'invalid mount config for type "nfs": mount type unknown'),
    ("type=tmpfs,target=/x,tmpfs-size=lots", "invalid value for tmpfs-size: lots"),
    ("type=tmpfs,target=/x,tmpfs-mode=999", "invalid value for tmpfs-mode: 999"),
    ("type=tmpfs,source=x,target=/x", 'invalid mount config for type "tmpfs": field Source must not be specified'),
    ("type=tmpfs,target=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type 'tmpfs'"),
    ("type=volume,target=/x,bind-propagation=shared", "cannot mix 'bind-*' options with mount type 'volume'"),
    ("type=volume,target=/x,readonly", "must not set ReadOnly mode when using anonymous volumes"),
    ("type=volume,target=/", "invalid specification: destination can't be '/'"),
    ("type=volume,target=x", "invalid mount path: 'x' mount path must be absolute"),
    ("type=volume,target=/x,readonly=maybe", "invalid value for readonly: maybe"),
])
def test_mount_flag_bad(raw: str, message: str) -> None:
    with pytest.raises(VolumeError) as err:
        parse_mount(raw)
    assert message in str(err.value)
    assert err.value.exit_code == 125


def test_tmpfs_flag() -> None:
    spec = parse_tmpfs("/run")
    assert (spec.target, spec.tmpfs_flags, spec.tmpfs_size) == ("/run", ["nosuid", "nodev", "noexec"], None)
    spec = parse_tmpfs("/run:size=64m,mode=1777,exec")
    assert (spec.tmpfs_size, spec.tmpfs_mode, spec.tmpfs_flags) == (64 << 20, 0o1777, ["nosuid", "nodev", "exec"])
    spec = parse_tmpfs("/r:ro,uid=1000")
    assert spec.read_only and "uid=1000" in spec.tmpfs_flags


@pytest.mark.parametrize("raw, message", [
    ("/t:size=abc", "invalid tmpfs size: 'abc'"),
    ("/t:size=-1", "invalid tmpfs size: '-1'"),
    ("/t:mode=rwx", "invalid tmpfs mode: 'rwx'"),
    ("/t:bogus", "invalid tmpfs option: 'bogus'"),
    ("rel", "invalid mount path: 'rel' mount path must be absolute"),
    ("/", "destination can't be '/'"),
])
def test_tmpfs_flag_bad(raw: str, message: str) -> None:
    with pytest.raises(VolumeError) as err:
        parse_tmpfs(raw)
    assert message in str(err.value)


def test_sizes() -> None:
    assert parse_size("100") == 100
    assert parse_size("1k") == 1024
    assert parse_size("64m") == 64 << 20
    assert parse_size("64MB") == 64 << 20
    assert parse_size("1.5g") == 3 << 29
    for bad in ("", "m", "12x", "-5"):
        with pytest.raises(VolumeError):
            parse_size(bad)


def test_volumes_from() -> None:
    assert parse_volumes_from("db") == ("db", False)
    assert parse_volumes_from("db:ro") == ("db", True)
    assert parse_volumes_from("db:rw") == ("db", False)
    with pytest.raises(VolumeError, match="invalid mode: rx"):
        parse_volumes_from("db:rx")


def test_duplicate_targets_refused() -> None:
    with pytest.raises(VolumeError, match="Duplicate mount point: /x"):
        parse_run_mounts(volumes=["a1:/x"], tmpfs=["/x"])
    specs = parse_run_mounts(volumes=["a1:/x"], mounts=["type=tmpfs,target=/y"], tmpfs=["/z"])
    assert [s.target for s in specs] == ["/x", "/y", "/z"]
