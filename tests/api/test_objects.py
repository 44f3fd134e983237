"""skiff.Client's images, volumes and networks, on a private root (run as root)."""

from __future__ import annotations

from pathlib import Path

import pytest

import skiff
from skiff import errors
from tests.conftest import Skiff
from tests.registry import servers
from tests.registry.conftest import (busybox_layout, http_registry, pushed_busybox, reg_env,  # noqa: F401
                                     write_registries)


def test_images_import_get_list_tag_remove(client: skiff.Client, busybox_tar: Path) -> None:
    from_path = client.images.import_(busybox_tar, "box", "one", changes=['CMD ["sh"]'])
    assert isinstance(from_path, skiff.client.Image)
    assert from_path.tags == ["box:one"] and from_path.attrs["Config"]["Cmd"] == ["sh"]
    assert from_path.short_id == from_path.id[:17] and from_path.short_id.startswith("sha256:")
    from_bytes = client.images.import_(busybox_tar.read_bytes(), "box:two")
    assert client.images.get("box:two") == from_bytes

    assert from_path.tag("box", "three") is True
    assert client.images.tag("box:one", "other") is True
    from_path.reload()
    assert sorted(from_path.tags) == ["box:one", "box:three", "other:latest"]
    assert {image.id for image in client.images.list()} == {from_path.id, from_bytes.id}
    assert client.images.list(name="other") == [from_path]
    assert client.images.list(filters={"reference": "box:two"}) == [from_bytes]

    assert client.images.remove("other") == [{"Untagged": "other:latest"}]
    with pytest.raises(errors.Conflict):  # several names: as Docker, only with force
        client.images.remove(from_path.id)
    removed = from_path.remove(force=True)
    assert {"Deleted": from_path.id} in removed
    with pytest.raises(errors.ImageNotFound):
        client.images.get("box:one")


def test_images_load_and_prune(client: skiff.Client, skiff: Skiff, busybox_tar: Path, tmp_path: Path) -> None:
    image = client.images.import_(busybox_tar, "saved", "latest")
    skiff.ok("save", "-o", str(tmp_path / "saved.tar"), "saved:latest")
    client.images.remove("saved:latest")
    loaded = client.images.load((tmp_path / "saved.tar").read_bytes())
    assert loaded == [image] and loaded[0].tags == ["saved:latest"]
    with open(tmp_path / "saved.tar", "rb") as f:
        assert client.images.load(f) == [image]
    assert client.images.prune() == {"ImagesDeleted": None, "SpaceReclaimed": 0}  # none dangling
    pruned = client.images.prune(filters={"dangling": False})
    assert pruned["ImagesDeleted"] and pruned["SpaceReclaimed"] > 0
    assert client.images.list() == []


def test_images_pull_from_a_registry(client: skiff.Client, reg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                                     http_registry: servers.Registry, pushed_busybox: str) -> None:  # noqa: F811
    for key in ("SKIFF_CONFIG_DIR", "SKIFF_AUTH_FILE", "DOCKER_CONFIG", "HOME", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.setenv(key, reg_env[key])
    write_registries(reg_env, insecure=[http_registry.host])
    repository, _, tag = pushed_busybox.rpartition(":")
    image = client.images.pull(repository, tag=tag)
    assert image.tags == [pushed_busybox] and client.images.get(pushed_busybox) == image
    with pytest.raises(errors.RegistryError):  # docker-py's APIError for a failed pull
        client.images.pull(repository, tag="missing")


def test_volumes(client: skiff.Client, busybox: str) -> None:
    volume = client.volumes.create("data", labels={"team": "api"})
    assert isinstance(volume, skiff.client.Volume)
    assert (volume.id, volume.name, volume.attrs["Labels"]) == ("data", "data", {"team": "api"})
    assert client.volumes.create("data") == volume  # as Docker: the existing one
    anonymous = client.volumes.create()
    assert len(anonymous.name) == 64
    assert client.volumes.get("data") == volume
    assert sorted(v.name for v in client.volumes.list()) == sorted(["data", anonymous.name])
    assert client.volumes.list(filters={"label": "team=api"}) == [volume]

    user = client.containers.run(busybox, "sleep 600", detach=True, network="none",
                                 volumes={"data": {"bind": "/data", "mode": "rw"}})
    with pytest.raises(errors.Conflict):
        volume.remove()
    assert client.volumes.prune() == {"VolumesDeleted": [anonymous.name], "SpaceReclaimed": 0}
    user.remove(force=True)
    volume.reload()
    volume.remove()
    with pytest.raises(errors.NotFound):
        client.volumes.get("data")
    client.volumes.remove("data", force=True)  # gone: no error with force
    assert client.volumes.list() == []


def test_networks(client: skiff.Client, busybox: str) -> None:
    network = client.networks.create("api-net", labels={"team": "api"},
                                     ipam={"Config": [{"Subnet": "10.251.76.0/24", "Gateway": "10.251.76.1"}]})
    assert isinstance(network, skiff.client.Network)
    assert network.name == "api-net" and network.attrs["Labels"] == {"team": "api"}
    assert client.networks.get(network.id[:12]) == network
    assert sorted(n.name for n in client.networks.list()) == ["api-net", "bridge", "host", "none"]
    assert client.networks.list(names=["api-net"]) == [network]
    with pytest.raises(errors.Conflict):
        client.networks.create("api-net")

    box = client.containers.run(busybox, "sleep 600", detach=True, network="api-net", name="member")
    network.reload()
    assert network.containers == [box]
    second = client.networks.create("second", ipam={"Config": [{"Subnet": "10.251.77.0/24"}]})
    second.connect(box, aliases=["web"])
    assert "second" in client.containers.get("member").attrs["NetworkSettings"]["Networks"]
    second.disconnect("member")
    assert "second" not in client.containers.get("member").attrs["NetworkSettings"]["Networks"]
    with pytest.raises(errors.Conflict):  # in use
        network.remove()
    assert client.networks.prune() == {"NetworksDeleted": ["second"]}
    box.remove(force=True)
    network.remove()
    with pytest.raises(errors.NotFound):
        client.networks.get("api-net")
    with pytest.raises(errors.InvalidArgument):
        client.networks.create("overlaid", driver="overlay")
