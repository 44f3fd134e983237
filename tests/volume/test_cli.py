"""`skiff volume create|ls|inspect|rm|prune` through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import Skiff


def _fake_container(skiff: Skiff, cid: str, volume: str) -> None:
    """A stopped container's record that mounts ``volume`` (what the engine writes)."""
    record = {"Id": cid, "Name": f"/c{cid[:4]}", "State": {"Running": False, "Status": "exited"},
              "Created": "2024-01-01T00:00:00Z", "Image": "", "Config": {}, "HostConfig": {},
              "Mounts": [{"Type": "volume", "Name": volume, "Source": "", "Destination": "/v", "Driver": "local",
                          "Mode": "", "RW": True, "Propagation": ""}]}
    folder = skiff.root / "containers" / cid
    folder.mkdir(parents=True)
    (folder / "container.json").write_text(json.dumps(record))


def test_create_ls_inspect_rm(skiff: Skiff) -> None:
    assert skiff.ok("volume", "create", "devoxx") == "devoxx\n"
    assert skiff.ok("volume", "create", "devoxx") == "devoxx\n"  # existing: printed, exit 0
    unnamed = skiff.ok("volume", "create", "--label", "team=blue", "--label", "solo").strip()
    assert len(unnamed) == 64 and int(unnamed, 16) >= 0
    listing = skiff.ok("volume", "ls")
    # Sorted by name, as docker volume ls: the random name may come before or after "devoxx".
    assert listing.splitlines() == ["DRIVER    VOLUME NAME", *(f"local     {n}" for n in sorted([unnamed, "devoxx"]))]
    assert skiff.ok("volume", "ls", "-q").split() == sorted([unnamed, "devoxx"])
    assert skiff.ok("volume", "ls", "-q", "--filter", "name=dev").split() == ["devoxx"]
    assert skiff.ok("volume", "ls", "-q", "--filter", "label=team=blue").split() == [unnamed]
    assert skiff.ok("volume", "ls", "-q", "--filter", "label=solo").split() == [unnamed]
    assert skiff.ok("volume", "ls", "-q", "--filter", "label=team=red").split() == []
    info = json.loads(skiff.ok("volume", "inspect", "devoxx", unnamed))
    assert [v["Name"] for v in info] == ["devoxx", unnamed]
    assert sorted(info[0]) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"]
    assert info[0]["Mountpoint"] == str(skiff.root / "volumes" / "devoxx" / "_data")
    assert info[1]["Labels"] == {"team": "blue", "solo": ""}
    assert skiff.ok("volume", "rm", "devoxx", unnamed).split() == ["devoxx", unnamed]
    assert skiff.ok("volume", "ls", "-q") == ""


def test_errors(skiff: Skiff) -> None:
    missing = skiff("volume", "rm", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (1, "skiff: No such volume: nope")
    assert skiff("volume", "rm", "-f", "nope").returncode == 0
    inspect = skiff("volume", "inspect", "nope")
    assert inspect.returncode == 1 and "No such volume: nope" in inspect.stderr
    bad = skiff("volume", "create", "a/b")
    assert bad.returncode == 1 and "includes invalid characters" in bad.stderr  # the daemon's refusal in Docker
    assert skiff("volume", "create", "--driver", "nfs", "v1").returncode == 1
    assert skiff("volume", "create", "--opt", "color=red", "v1").returncode == 1
    bad_filter = skiff("volume", "ls", "--filter", "colour=red")  # the daemon's error in Docker: 1
    assert (bad_filter.returncode, bad_filter.stderr) == (1, "skiff: Invalid filter 'colour'\n")
    assert skiff.ok("volume", "ls", "-q") == ""
    assert not (skiff.root / "volumes" / "v1").exists()


def test_driver_options_shown(skiff: Skiff, tmp_path: Path) -> None:
    skiff.ok("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=64m,uid=1000", "tv")
    info = json.loads(skiff.ok("volume", "inspect", "tv"))[0]
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=64m,uid=1000"}


def test_in_use_by_a_stopped_container(skiff: Skiff) -> None:
    skiff.ok("volume", "create", "devoxx")
    cid = "ab" * 32
    _fake_container(skiff, cid, "devoxx")
    rm = skiff("volume", "rm", "devoxx")
    assert rm.returncode == 1
    assert rm.stderr.strip() == f"skiff: remove devoxx: volume is in use - [{cid}]"
    assert skiff("volume", "rm", "-f", "devoxx").returncode == 1  # force does not pull data from a container
    assert skiff.ok("volume", "ls", "-q", "--filter", "dangling=true") == ""
    assert skiff.ok("volume", "ls", "-q", "--filter", "dangling=false") == "devoxx\n"
    assert skiff.ok("volume", "prune", "-f", "--all") == "Total reclaimed space: 0B\n"
    assert (skiff.root / "volumes" / "devoxx" / "_data").is_dir()


def test_prune(skiff: Skiff) -> None:
    root = skiff.root
    skiff.ok("volume", "create", "named")
    # an anonymous volume, as `run -v /path` leaves it
    from skiff.paths import Paths
    from skiff.volume.store import VolumeStore

    anon = VolumeStore(Paths(root, skiff.run_root)).create(anonymous=True)
    (anon.data / "blob").write_bytes(b"x" * 5000)
    declined = skiff("volume", "prune", input="n\n")
    assert declined.returncode == 0 and \
        "WARNING! This will remove all local volumes not used by at least one container." in declined.stdout
    assert os.path.exists(anon.data)
    # Docker 20.10: every unused volume, named ones too (23.0 and later keep named ones without -a)
    out = skiff.ok("volume", "prune", input="y\n")
    assert "Deleted Volumes:\n" in out and {anon.name, "named"} <= set(out.split())
    assert not out.endswith("0B\n")
    assert skiff.ok("volume", "ls", "-q") == ""
