"""What the real clients of the Engine API send to ``POST /containers/create``, as the flags of a ``run``.

docker-py and docker-compose send each volume twice (``Binds`` and ``Config.Volumes``) and
``HostConfig.Mounts`` for long-syntax volumes, tmpfs and ``mounts=``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.api.create import run_options
from skiff.api.errors import BadRequest
from skiff.volume.spec import parse_mount


def test_a_config_volume_that_a_bind_or_a_mount_also_mounts_is_theirs() -> None:
    opts = run_options({"Image": "i", "Volumes": {"/www": {}, "/data/": {}, "/cache": {}, "/anon": {}},
                        "HostConfig": {"Binds": ["proj_site:/www:rw", "/srv:/data"],
                                       "Mounts": [{"Type": "tmpfs", "Target": "/cache"}]}}, None)
    assert list(opts.volumes) == ["proj_site:/www:rw", "/srv:/data", "/anon"]
    assert list(opts.mounts) == ["type=tmpfs,target=/cache"]


def test_mounts_become_mount_flags_the_engine_reads_back(tmp_path: Path) -> None:
    source = tmp_path / 'a,"b'  # a comma and a quote: quoted in the flag's CSV record
    source.mkdir()
    opts = run_options({"Image": "i", "HostConfig": {"Mounts": [
        {"Type": "bind", "Source": str(source), "Target": "/a", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave"}, "Consistency": "default"},
        {"Type": "volume", "Source": "data", "Target": "/data",
         "VolumeOptions": {"NoCopy": True, "Labels": {"k": "v"}, "DriverConfig": {"Name": "local"}}},
        {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1777}},
    ]}}, None)
    bind, volume, tmpfs = (parse_mount(flag) for flag in opts.mounts)
    assert (bind.type, bind.source, bind.target, bind.read_only, bind.propagation) == \
        ("bind", str(source), "/a", True, "rslave")
    assert (volume.type, volume.source, volume.target, volume.copy, volume.volume_labels, volume.volume_driver) == \
        ("volume", "data", "/data", False, {"k": "v"}, "local")
    assert (tmpfs.type, tmpfs.target, tmpfs.tmpfs_size, tmpfs.tmpfs_mode) == ("tmpfs", "/t", 1048576, 0o1777)


@pytest.mark.parametrize("mounts, message", [
    ({"Type": "bind"}, "HostConfig.Mounts must be a list of objects"),
    ([{"Type": "npipe", "Target": "/x"}], 'invalid mount config for type "npipe": mount type unknown'),
    ([{"Target": "/x"}], 'invalid mount config for type "": mount type unknown'),
    ([{"Type": "tmpfs", "Target": "/x", "ReadOnly": "yes"}], "ReadOnly must be true or false"),
])
def test_malformed_mounts_are_bad_requests(mounts: object, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        run_options({"Image": "i", "HostConfig": {"Mounts": mounts}}, None)
    assert str(caught.value) == message


def test_a_healthcheck_keeps_its_form_and_its_durations() -> None:
    opts = run_options({"Image": "i", "Healthcheck": {"Test": ["CMD", "wget", "-q", "localhost"],
                                                      "Interval": 100_000_000, "Retries": 2}}, None)
    assert (list(opts.health_test), opts.health_interval, opts.health_retries, opts.health_timeout) == \
        (["CMD", "wget", "-q", "localhost"], 100_000_000, 2, 0)
    assert list(run_options({"Image": "i", "Healthcheck": {"Test": ["NONE"]}}, None).health_test) == ["NONE"]
    assert run_options({"Image": "i"}, None).health_test == []
    with pytest.raises(BadRequest):
        run_options({"Image": "i", "Healthcheck": {"Test": "true"}}, None)
