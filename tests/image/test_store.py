"""The image store: import, tags, removal with shared layers, conflicts, concurrency."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from skiff.errors import ImageInUse, ImageNotFound, InvalidArgument, InvalidReference
from skiff.image.store import ImageStore
from skiff.paths import Paths
from tests.image import layers as L


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(Paths(tmp_path / "root", tmp_path / "run"))


@pytest.fixture
def no_containers() -> dict[str, list[str]]:
    """What the engine's container records would say: image id -> container ids (the store asks its caller)."""
    return {}


def test_import_busybox_then_inspect(store: ImageStore, busybox_tar: Path) -> None:
    changes = ['CMD ["sh"]', "ENTRYPOINT /bin/echo hi", 'ENV PATH=/bin:/usr/bin GREETING="hello world"',
               "WORKDIR /root", "USER 1000:1000", "EXPOSE 80 53/udp", 'VOLUME ["/data"]',
               'LABEL a=b "c d"=e', "STOPSIGNAL SIGINT"]
    with open(busybox_tar, "rb") as f:
        image = store.import_tarball(f, "busybox", changes, "made in a test")
    assert image.id.startswith("sha256:") and len(image.id) == 71
    assert image.repo_tags == ["busybox:latest"]
    assert (image.layer_dirs[0] / "bin/busybox").is_file()
    assert image.size == busybox_tar.stat().st_size
    got = store.get("busybox")
    assert got.id == image.id and got.layer_dirs == image.layer_dirs
    assert store.get(image.id[7:19]).id == image.id
    assert store.get(image.id).id == image.id
    info = store.inspect("busybox:latest")
    assert info["Id"] == image.id and info["RepoTags"] == ["busybox:latest"]
    # Docker's container.Config: every field, the unset ones at their zero value
    assert info["Config"] == {
        "Hostname": "", "Domainname": "", "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
        "Tty": False, "OpenStdin": False, "StdinOnce": False, "Image": "", "OnBuild": None, "Cmd": ["sh"], "Entrypoint": ["/bin/sh", "-c", "/bin/echo hi"],
        "Env": ["PATH=/bin:/usr/bin", "GREETING=hello world"], "WorkingDir": "/root", "User": "1000:1000",
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}}, "Volumes": {"/data": {}},
        "Labels": {"a": "b", "c d": "e"}, "StopSignal": "SIGINT"}
    assert info["RootFS"] == {"Type": "layers", "Layers": [image.layers[0].diff_id]}
    assert info["Os"] == "linux" and info["Architecture"] and info["Comment"] == "made in a test"
    assert info["Size"] == image.size


def test_unknown_image_and_bad_change(store: ImageStore) -> None:
    with pytest.raises(ImageNotFound, match="^No such image: busybox:latest$"):
        store.get("busybox")
    with pytest.raises(InvalidArgument, match="RUN"):
        store.import_tarball(io.BytesIO(L.tar_bytes(L.file("x"))), "x", ["RUN rm -rf /"])
    with pytest.raises(InvalidReference):
        store.import_tarball(io.BytesIO(L.tar_bytes(L.file("x"))), "Bad:Name")


def test_tag_and_untag(store: ImageStore, no_containers: dict[str, list[str]]) -> None:
    store.load(io.BytesIO(L.docker_archive([([L.tar_bytes(L.file("x"))], ["one:1"])])))
    store.tag("one:1", "localhost:5000/two")
    image = store.get("localhost:5000/two:latest")
    assert image.repo_tags == ["localhost:5000/two:latest", "one:1"]
    assert store.remove("one:1", no_containers) == ["Untagged: one:1"]
    assert store.get("localhost:5000/two").repo_tags == ["localhost:5000/two:latest"]
    with pytest.raises(ImageNotFound):
        store.tag("nothing", "x")


def test_rmi_keeps_shared_layers(store: ImageStore, no_containers: dict[str, list[str]]) -> None:
    base, top = L.tar_bytes(L.file("base", b"b")), L.tar_bytes(L.file("top", b"t"))
    store.load(io.BytesIO(L.docker_archive([([base], ["small:1"]), ([base, top], ["big:1"])])))
    small, big = store.get("small:1"), store.get("big:1")
    assert small.layer_dirs[0] == big.layer_dirs[0]
    base_id, top_id = (json.loads(store.blob_path(big.id).read_bytes())["rootfs"]["diff_ids"])
    top_chain = "sha256:" + hashlib.sha256(f"{base_id} {top_id}".encode()).hexdigest()
    # As Docker: the image, then each layer chain nothing else holds (the shared base stays)
    assert store.remove("big:1", no_containers) == ["Untagged: big:1", f"Deleted: {big.id}", f"Deleted: {top_chain}"]
    assert not big.layer_dirs[1].exists() and small.layer_dirs[0].is_dir()
    assert not store.blob_path(big.id).exists() and store.blob_path(small.id).exists()
    assert [img.id for img in store.list()] == [small.id]
    store.remove("small:1", no_containers)
    assert store.list() == []
    assert [p.name for p in store.layers_root.iterdir() if p.name != "l"] == []
    assert list((store.layers_root / "l").iterdir()) == []
    assert list(store.blobs.iterdir()) == []


def test_rmi_conflicts(store: ImageStore, no_containers: dict[str, list[str]]) -> None:
    store.load(io.BytesIO(L.docker_archive([([L.tar_bytes(L.file("x"))], ["busybox:latest", "other:1"])])))
    image = store.get("busybox")
    short = image.id[7:19]
    with pytest.raises(ImageInUse, match=f"^conflict: unable to delete {short} \\(must be forced\\) - image is "
                                         f"referenced in multiple repositories$"):
        store.remove(short, no_containers)
    store.remove("other:1", no_containers)
    container = "c" * 64
    no_containers[image.id] = [container]
    with pytest.raises(ImageInUse) as info:
        store.remove("busybox:latest", no_containers)
    assert str(info.value) == (f'conflict: unable to remove repository reference "busybox:latest" (must force) '
                               f"- container {'c' * 12} is using its referenced image {short}")
    assert info.value.exit_code == 1
    # Forced: the name goes, the image and its layers stay for the container.
    assert store.remove("busybox:latest", no_containers, force=True) == ["Untagged: busybox:latest"]
    assert store.get(image.id).layer_dirs[0].is_dir()
    no_containers.clear()
    layer = json.loads(store.blob_path(image.id).read_bytes())["rootfs"]["diff_ids"][0]
    assert store.remove(image.id, no_containers) == [f"Deleted: {image.id}", f"Deleted: {layer}"]


def test_concurrent_imports_keep_the_index_consistent(tmp_path: Path, busybox_tar: Path,
                                                      skiff_env: dict[str, str]) -> None:
    procs = [subprocess.Popen([sys.executable, "-m", "skiff", "import", str(busybox_tar), f"bb:{i}"],
                              env=skiff_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(4)]
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        ids.append(out.decode().strip())
    store = ImageStore(Paths(Path(skiff_env["SKIFF_ROOT"]), Path(skiff_env["SKIFF_RUN_ROOT"])))
    repos = json.loads(store.repositories_file.read_text())
    assert repos == {f"docker.io/library/bb:{i}": ids[i] for i in range(4)}
    images = store.list()
    assert sorted(tag for img in images for tag in img.repo_tags) == [f"bb:{i}" for i in range(4)]
    layer_dirs = [p for p in store.layers_root.iterdir() if p.name != "l"]
    assert len(layer_dirs) == 1 and (layer_dirs[0] / "diff/bin/busybox").is_file()
    assert not [p for p in store.blobs.iterdir() if p.name.startswith(".")]
