"""import/load/save through the CLI, checked against skopeo as an independent client."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.conftest import PRIVATE_VAR_LIB, Skiff
from tests.image import layers as L


def skopeo(*args: str) -> str:
    proc = subprocess.run([*PRIVATE_VAR_LIB, "skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def inspect(skiff: Skiff, ref: str) -> dict:
    return json.loads(skiff.ok("image", "inspect", ref))[0]


def test_import_prints_the_id_and_inspect_shows_it(skiff: Skiff, busybox_image: str) -> None:
    info = inspect(skiff, busybox_image)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", info["Id"])
    assert info["Config"]["Cmd"] == ["sh"] and info["RepoTags"] == ["busybox:latest"]
    assert info["Comment"].startswith("Imported from ") and info["Size"] > 1_000_000


def test_import_from_stdin_gzip(skiff: Skiff, busybox_tar: Path, tmp_path: Path) -> None:
    import gzip

    data = gzip.compress(busybox_tar.read_bytes())
    proc = subprocess.run([*skiff_cmd(), "import", "-", "piped:v1", "--change", "ENV A=1"], env=skiff.env,
                          input=data, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    image_id = proc.stdout.decode().strip()
    info = inspect(skiff, "piped:v1")
    assert info["Id"] == image_id and info["Config"]["Env"] == ["A=1"] and info["Comment"] == "Imported from -"


def skiff_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "skiff"]


def test_save_skopeo_roundtrip_and_load(skiff: Skiff, busybox_image: str, tmp_path: Path,
                                        skiff_env: dict[str, str]) -> None:
    base = L.tar_bytes(L.directory("etc"), L.file("etc/os", b"base"))
    top = L.tar_bytes(L.directory("etc"), L.whiteout("etc", "os"), L.file("app", b"app", mode=0o755))
    archive = L.write(tmp_path / "two.tar", L.docker_archive([([base, top], ["two:layers"])], gzip_layers=True))
    assert skiff.ok("load", "-i", str(archive)) == "Loaded image: two:layers\n"
    before = inspect(skiff, "two:layers")
    assert len(before["RootFS"]["Layers"]) == 2

    saved = tmp_path / "saved.tar"
    skiff.ok("save", "-o", str(saved), "two:layers")
    names = subprocess.run(["tar", "tf", str(saved)], capture_output=True, text=True, check=True).stdout.split()
    assert {"oci-layout", "index.json", "manifest.json"} <= set(names)
    index = json.loads(subprocess.run(["tar", "xOf", str(saved), "index.json"], capture_output=True,
                                      check=True).stdout)
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == \
        "docker.io/library/two:layers"

    seen = json.loads(skopeo("inspect", f"oci-archive:{saved}"))
    assert len(seen["Layers"]) == 2 and seen["Architecture"] and seen["Os"] == "linux"
    config = json.loads(skopeo("inspect", "--config", f"oci-archive:{saved}"))
    assert config["rootfs"]["diff_ids"] == before["RootFS"]["Layers"]
    copied = tmp_path / "dir"
    skopeo("copy", f"oci-archive:{saved}", f"dir:{copied}")
    assert (copied / "manifest.json").exists()
    docker_archive = tmp_path / "docker.tar"
    skopeo("copy", f"oci-archive:{saved}", f"docker-archive:{docker_archive}:example.com/team/two:copied")

    # Load both into a fresh store: same id, same layers.
    fresh = Skiff({**skiff_env, "SKIFF_ROOT": str(tmp_path / "fresh")})
    assert fresh.ok("load", "-i", str(saved)) == "Loaded image: two:layers\n"
    proc = subprocess.run([*skiff_cmd(), "load"], env=fresh.env, stdin=open(docker_archive, "rb"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Loaded image: example.com/team/two:copied\n"
    for ref in ("two:layers", "example.com/team/two:copied"):
        after = inspect(fresh, ref)
        assert after["Id"] == before["Id"]
        assert after["RootFS"] == before["RootFS"]
    assert fresh.ok("images", "-q") == before["Id"][7:19] + "\n"


def test_load_refuses_a_layer_that_does_not_match_its_diff_id(skiff: Skiff, tmp_path: Path) -> None:
    good, evil = L.tar_bytes(L.file("ok")), L.tar_bytes(L.file("evil"))
    archive = L.docker_archive([([evil], ["liar:1"])], config_override=L.image_config([good]))
    proc = skiff("load", "-i", str(L.write(tmp_path / "liar.tar", archive)))
    assert proc.returncode != 0 and "digest" in proc.stderr
    assert skiff.ok("images", "-q") == ""
    layers = skiff.root / "overlay"
    assert not layers.exists() or [p.name for p in layers.iterdir() if p.name != "l"] == []
    blobs = skiff.root / "image/blobs/sha256"
    assert not blobs.exists() or list(blobs.iterdir()) == [] or \
        [p.name for p in blobs.iterdir()] == [L.digest(L.image_config([good]))[7:]]


def test_images_tag_rmi_output(skiff: Skiff, busybox_image: str) -> None:
    skiff.ok("tag", "busybox", "localhost:5000/bb:v1")
    lines = skiff.ok("images").splitlines()
    assert re.fullmatch(r"REPOSITORY +TAG +IMAGE ID +CREATED +SIZE", lines[0])
    assert lines[0].index("TAG") == len("localhost:5000/bb") + 3
    rows = [re.split(r"\s{3,}", line) for line in lines[1:]]
    image_id = inspect(skiff, "busybox")["Id"][7:19]
    assert [row[:3] for row in rows] == [["busybox", "latest", image_id], ["localhost:5000/bb", "v1", image_id]]
    assert all(re.fullmatch(r"(Less than a second|\d+ seconds|About a minute) ago", row[3]) for row in rows)
    assert all(re.fullmatch(r"\d(\.\d+)?MB|\d{2,3}(\.\d)?MB", row[4]) for row in rows)
    assert skiff.ok("images", "-q") == f"{image_id}\n"
    assert skiff.ok("image", "ls", "-a", "busybox").count("\n") == 2

    assert skiff.ok("rmi", "localhost:5000/bb:v1") == "Untagged: localhost:5000/bb:v1\n"
    proc = skiff("image", "inspect", "nosuch")
    assert proc.returncode == 1 and proc.stderr == "skiff: No such image: nosuch\n"
    full_id = inspect(skiff, "busybox")["Id"]
    layer = inspect(skiff, "busybox")["RootFS"]["Layers"][0]
    assert skiff.ok("image", "rm", "busybox") == f"Untagged: busybox:latest\nDeleted: {full_id}\nDeleted: {layer}\n"
    assert skiff.ok("images").splitlines()[1:] == []
    assert skiff("rmi", "busybox").returncode == 1


def test_rmi_and_prune_spare_an_image_a_container_uses(skiff: Skiff, busybox_image: str) -> None:
    """The image store asks its caller which images containers use: rmi and prune, through the engine."""
    cid = skiff.ok("create", "busybox", "true").strip()
    short = inspect(skiff, "busybox")["Id"][7:19]
    proc = skiff("rmi", "busybox")
    assert proc.returncode == 1 and proc.stderr == (
        f'skiff: conflict: unable to remove repository reference "busybox:latest" (must force) - container {cid[:12]} '
        f"is using its referenced image {short}\n")
    assert skiff.ok("image", "prune", "-a", "-f") == "Total reclaimed space: 0B\n"
    skiff.ok("rm", cid)
    assert skiff.ok("rmi", "busybox").startswith("Untagged: busybox:latest\nDeleted: sha256:")


def test_bad_reference_is_a_usage_error(skiff: Skiff, busybox_tar: Path) -> None:
    proc = skiff("import", str(busybox_tar), "BusyBox")
    assert proc.returncode == 125
    assert "invalid reference format: repository name must be lowercase" in proc.stderr


def test_load_gzipped_archive_and_unnamed_images(tmp_path: Path) -> None:
    import gzip
    import io

    from skiff.image.store import ImageStore
    from skiff.paths import Paths

    store = ImageStore(Paths(tmp_path / "root", tmp_path / "run"))
    layer = L.tar_bytes(L.file("x", b"x"))
    loaded = store.load(io.BytesIO(gzip.compress(L.docker_archive([([layer], ["zipped:1"]), ([layer], [])],
                                                                  config_override=None))))
    image_ids = [img.id for img in store.list()]
    assert loaded[0] == "zipped:1" and len(image_ids) == 1 and loaded[1] == image_ids[0]
