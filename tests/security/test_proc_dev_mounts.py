"""Docker's mount protections: /proc nosuid,nodev,noexec; nothing bound on or under /proc;
no /proc that is a symlink in the image (CVE-2023-27561); no device nodes in a bound /dev.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Skiff

from .conftest import Oci


def proc_options(mounts: str) -> set[str]:
    (line,) = [line for line in mounts.splitlines() if line.split()[1:2] == ["/proc"]]
    return set(line.split()[3].split(","))


def test_proc_is_nosuid_nodev_noexec(skiff: Skiff, busybox_image: str) -> None:
    mounts = skiff.ok("run", "--rm", "--network", "none", busybox_image, "cat", "/proc/mounts")
    assert {"nosuid", "nodev", "noexec"} <= proc_options(mounts)


def test_proc_is_nosuid_nodev_noexec_with_skiff_oci(oci: Oci) -> None:
    oci.write(["cat", "/proc/mounts"])
    result = oci("run", "--bundle", str(oci.bundle), "p1")
    assert result.returncode == 0, result.stderr
    assert {"nosuid", "nodev", "noexec"} <= proc_options(result.stdout)


@pytest.mark.parametrize("destination", ["/proc", "/proc/sys", "/proc/sys/kernel", "/proc/self", "/proc/1"])
def test_a_bind_on_or_under_proc_is_refused(skiff: Skiff, busybox_image: str, tmp_path: Path,
                                            destination: str) -> None:
    source = tmp_path / "bound"
    source.mkdir()
    result = skiff("run", "--rm", "--network", "none", "-v", f"{source}:{destination}", busybox_image, "true")
    assert result.returncode != 0
    assert "refused" in result.stderr and "Traceback" not in result.stderr


def test_a_bind_under_proc_is_refused_by_skiff_oci(oci: Oci, tmp_path: Path) -> None:
    source = tmp_path / "bound"
    source.mkdir()
    oci.spec["mounts"].append({"destination": "/proc/sys", "type": "bind", "source": str(source),
                               "options": ["rbind"]})
    oci.write(["true"])
    result = oci("run", "--bundle", str(oci.bundle), "p2")
    assert result.returncode != 0 and "refused" in result.stderr


def test_a_symlink_into_proc_is_refused_as_a_destination(oci: Oci, tmp_path: Path) -> None:
    """A bind whose destination a symlink in the image sends into /proc counts as /proc."""
    source = tmp_path / "bound"
    source.mkdir()
    os.symlink("/proc/sys", oci.bundle / "rootfs" / "innocent")
    oci.spec["mounts"].append({"destination": "/innocent", "type": "bind", "source": str(source),
                               "options": ["rbind"]})
    oci.write(["true"])
    result = oci("run", "--bundle", str(oci.bundle), "p3")
    assert result.returncode != 0 and "refused" in result.stderr


def test_lxcfs_files_may_still_be_bound(oci: Oci, tmp_path: Path) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor : 0 (lxcfs)\n")
    oci.spec["mounts"].append({"destination": "/proc/cpuinfo", "type": "bind", "source": str(fake),
                               "options": ["bind", "ro"]})
    oci.write(["cat", "/proc/cpuinfo"])
    result = oci("run", "--bundle", str(oci.bundle), "p4")
    assert result.returncode == 0, result.stderr
    assert "lxcfs" in result.stdout


def test_an_image_whose_proc_is_a_symlink_is_refused(skiff: Skiff, busybox_rootfs: Path, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    shutil.rmtree(rootfs / "proc", ignore_errors=True)
    (rootfs / "elsewhere").mkdir()
    os.symlink("/elsewhere", rootfs / "proc")
    tar = tmp_path / "symlinked-proc.tar"
    subprocess.run(["tar", "--numeric-owner", "-cf", str(tar), "-C", str(rootfs), "."], check=True)
    skiff.ok("import", str(tar), "symproc:latest", "--change", 'CMD ["sh"]')
    result = skiff("run", "--rm", "--network", "none", "symproc:latest", "sh", "-c", "ls /elsewhere")
    assert result.returncode != 0, result.stdout
    assert "symbolic link" in result.stderr and "Traceback" not in result.stderr


def test_a_bound_dev_gets_no_device_nodes(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    host_dev = tmp_path / "hostdev"
    host_dev.mkdir()
    skiff("run", "--rm", "--network", "none", "-v", f"{host_dev}:/dev", busybox_image, "true")
    assert list(host_dev.iterdir()) == []


def test_a_bound_dev_still_masks_proc_files(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    """maskedPaths bind /dev/null over files: with a bound /dev it is the host's /dev/null, not nothing."""
    host_dev = tmp_path / "hostdev"
    host_dev.mkdir()
    out = skiff.ok("run", "--rm", "--network", "none", "-v", f"{host_dev}:/dev", busybox_image,
                   "sh", "-c", "wc -c < /proc/keys")
    assert out.strip() == "0"
