"""Volumes through `skiff run`, as issue 3 describes them: real containers, real mounts.

Every test uses a private skiff root under tmp_path and checks that no mount of
its own is left in the host's mount table.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

_MARK = "skiff-e2e-vol"


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line.split()[4]]


@pytest.fixture(autouse=True)
def no_mounts_left(tmp_path: Path) -> Iterator[None]:
    yield
    leaked = _mounts_under(tmp_path)
    assert not leaked, "mounts left behind:\n" + "".join(leaked)


def _vol_data(skiff: Any, name: str) -> Path:
    return skiff.root / "volumes" / name / "_data"


def _image_from(skiff: Any, busybox_rootfs: Path, tmp_path: Path, ref: str, changes: list[str],
                edit: Any) -> str:
    """A busybox image with ``edit(rootfs_dir)`` applied, imported as ``ref``."""
    work = tmp_path / f"img-{ref.replace(':', '-')}"
    subprocess.run(["cp", "-a", str(busybox_rootfs), str(work)], check=True)
    edit(work)
    tar = work.with_suffix(".tar")
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(work), "-cf", str(tar), "."], check=True)
    args = ["import", str(tar), ref, "--change", 'CMD ["sh"]']
    for change in changes:
        args += ["--change", change]
    skiff.ok(*args)
    return ref


def _processes_with(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) in (b"sh", b"sleep") and any(marker.encode() in a for a in argv):
            pids.append(int(entry))
    return pids


def _wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _kill_leftovers(marker: str) -> None:
    for pid in _processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- the scenario ---------------------------------------------------------------


def test_exact_scenario(skiff: Any, busybox_image: str) -> None:
    assert skiff.ok("volume", "create", "devoxx") == "devoxx\n"
    skiff.ok("run", "--rm", "-v", "devoxx:/devoxx", busybox_image, "sh", "-c", 'echo "world" > /devoxx/hello')
    assert (_vol_data(skiff, "devoxx") / "hello").read_text() == "world\n"


def test_named_volume_created_on_first_use_and_outlives_containers(skiff: Any, busybox_image: str) -> None:
    skiff.ok("run", "--rm", "-v", "fresh:/v", busybox_image, "sh", "-c", "echo one > /v/f")
    assert skiff.ok("volume", "ls", "-q") == "fresh\n"
    assert skiff.ok("run", "--rm", "-v", "fresh:/other", busybox_image, "cat", "/other/f") == "one\n"
    assert skiff.ok("volume", "ls", "-q") == "fresh\n"  # --rm never removes a named volume


def test_two_containers_write_one_volume_at_once(skiff: Any, busybox_image: str) -> None:
    skiff.ok("volume", "create", "shared")
    procs = [subprocess.Popen([sys.executable, "-m", "skiff", "run", "--rm", "-v", "shared:/s", busybox_image,
                               "sh", "-c", f"for i in $(seq 1 300); do echo {who}$i >> /s/{who}; done; "
                               # each sees the other's writes while both run (bounded wait)
                               f"for t in $(seq 1 400); do [ \"$(cat /s/{other} 2>/dev/null | wc -l)\" -ge 300 ] "
                               "&& exit 0; sleep 0.05; done; exit 9"],
                              env=skiff.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for who, other in (("a", "b"), ("b", "a"))]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    for who in "ab":
        lines = (_vol_data(skiff, "shared") / who).read_text().split()
        assert lines == [f"{who}{i}" for i in range(1, 301)]


def test_read_only_refuses_writes(skiff: Any, busybox_image: str, tmp_path: Path) -> None:
    skiff.ok("run", "--rm", "-v", "rov:/v", busybox_image, "sh", "-c", "echo keep > /v/f")
    for flags in (["-v", "rov:/v:ro"], ["--mount", "type=volume,source=rov,target=/v,readonly"]):
        proc = skiff("run", "--rm", *flags, busybox_image, "sh", "-c", "echo x > /v/f || exit 7")
        assert proc.returncode == 7, proc.stderr
        proc = skiff("run", "--rm", *flags, busybox_image, "sh", "-c", "touch /v/new || exit 7")
        assert proc.returncode == 7
    assert (_vol_data(skiff, "rov") / "f").read_text() == "keep\n"


def test_read_only_bind_is_read_only_on_submounts(skiff: Any, busybox_image: str, tmp_path: Path) -> None:
    from skiff import linux

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    linux.mount("tmpfs", src / "sub", "tmpfs", 0, "size=1m")
    try:
        proc = skiff("run", "--rm", "-v", f"{src}:/h:ro", busybox_image, "sh", "-c",
                     "touch /h/sub/x && exit 0; touch /h/y && exit 0; exit 7")
        assert proc.returncode == 7, proc.stdout + proc.stderr
        assert os.listdir(src / "sub") == []
    finally:
        linux.umount(src / "sub")


def test_read_only_rootfs_keeps_volumes_writable(skiff: Any, busybox_image: str) -> None:
    proc = skiff("run", "--rm", "--read-only", "-v", "rw1:/v", "--tmpfs", "/scratch", busybox_image, "sh", "-c",
                 "echo ok > /v/f && echo ok > /scratch/f && { touch /rootfile 2>/dev/null && exit 9; exit 0; }")
    assert proc.returncode == 0, proc.stderr
    assert (_vol_data(skiff, "rw1") / "f").read_text() == "ok\n"


# --- binds, --mount, --tmpfs, --volumes-from ------------------------------------------------


def test_bind_mount_creates_missing_host_dir(skiff: Any, busybox_image: str, tmp_path: Path) -> None:
    host = tmp_path / "made" / "by-run"
    skiff.ok("run", "--rm", "-v", f"{host}:/h", busybox_image, "sh", "-c", "echo hi > /h/f")
    assert (host / "f").read_text() == "hi\n"


def test_mount_flag(skiff: Any, busybox_image: str, tmp_path: Path) -> None:
    host = tmp_path / "bound"
    host.mkdir()
    out = skiff.ok("run", "--rm", "--mount", f"type=bind,source={host},target=/b",
                   "--mount", "type=volume,source=mv,target=/mv",
                   "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
                   busybox_image, "sh", "-c", "echo b > /b/f; echo v > /mv/f; stat -c %a /t; grep ' /t ' /proc/mounts")
    assert (host / "f").read_text() == "b\n" and (_vol_data(skiff, "mv") / "f").read_text() == "v\n"
    mode, mount_line = out.splitlines()[0], out.splitlines()[1]
    assert mode == "1770" and "tmpfs" in mount_line and "size=1024k" in mount_line


def test_missing_bind_source_is_dockers_error(skiff: Any, busybox_image: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    proc = skiff("run", "--rm", "--mount", f"type=bind,source={missing},target=/x", busybox_image, "true")
    assert proc.returncode == 125
    assert f'invalid mount config for type "bind": bind source path does not exist: {missing}' in proc.stderr
    assert not missing.exists()


def test_tmpfs_flag(skiff: Any, busybox_image: str) -> None:
    out = skiff.ok("run", "--rm", "--tmpfs", "/scratch:size=1m", busybox_image, "grep", " /scratch ", "/proc/mounts")
    fields = out.split()
    assert fields[2] == "tmpfs"
    options = fields[3].split(",")
    assert {"nosuid", "nodev", "noexec", "size=1024k"} <= set(options)
    out = skiff.ok("run", "--rm", "--tmpfs", "/scratch:exec", busybox_image, "grep", " /scratch ", "/proc/mounts")
    assert "noexec" not in out.split()[3].split(",")


def test_volumes_from(skiff: Any, busybox_image: str, tmp_path: Path) -> None:
    skiff.ok("run", "--name", "src", "-v", "vf:/d", "-v", "/anon", busybox_image, "sh", "-c",
             "echo hi > /d/f; echo anon > /anon/f")
    assert skiff.ok("run", "--rm", "--volumes-from", "src", busybox_image, "cat", "/d/f", "/anon/f") == "hi\nanon\n"
    proc = skiff("run", "--rm", "--volumes-from", "src:ro", busybox_image, "sh", "-c", "echo no > /d/f || exit 7")
    assert proc.returncode == 7
    volumes = skiff.ok("volume", "ls", "-q").split()
    assert len(volumes) == 2  # the inherited anonymous volume survived the --rm above
    skiff.ok("rm", "-v", "src")
    assert skiff.ok("volume", "ls", "-q").split() == ["vf"]


def test_create_makes_the_volumes_and_a_failed_start_keeps_them(skiff: Any, busybox_image: str,
                                                                  tmp_path: Path) -> None:
    """As Docker: named and anonymous volumes exist (and are in use) from ``create``; a start that
    fails keeps them for the next start, and ``rm -v`` removes the anonymous one."""
    device = tmp_path / "device"
    device.mkdir()
    skiff.ok("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={device}", "bv")
    skiff.ok("create", "--name", "c", "-v", "/anon", "-v", "bv:/b", "-v", "made:/m", busybox_image,
             "sh", "-c", "echo kept > /anon/f")
    volumes = set(skiff.ok("volume", "ls", "-q").split())
    (anon,) = volumes - {"bv", "made"}
    assert len(volumes) == 3 and len(anon) == 64
    device.rmdir()  # the bind device is gone: the start fails while preparing the volumes
    failed = skiff("start", "c")
    assert failed.returncode == 1 and "does not exist" in failed.stderr
    assert set(skiff.ok("volume", "ls", "-q").split()) == volumes
    device.mkdir()
    skiff.ok("start", "-a", "c")
    assert (_vol_data(skiff, anon) / "f").read_text() == "kept\n"  # the volume made at create
    skiff.ok("rm", "-v", "c")
    assert set(skiff.ok("volume", "ls", "-q").split()) == {"bv", "made"}


def test_create_that_fails_removes_what_it_made(skiff: Any, busybox_image: str) -> None:
    skiff.ok("create", "--name", "src", "-v", "lost:/d/e", busybox_image)
    import shutil

    shutil.rmtree(skiff.root / "volumes" / "lost")  # behind skiff's back: --volumes-from src now fails
    failed = skiff("create", "--name", "dst", "-v", "/a", "-v", "new:/n", "--volumes-from", "src", busybox_image)
    assert failed.returncode == 125 and "No such volume: lost" in failed.stderr
    assert skiff.ok("ps", "-a", "--format", "{{.Names}}").split() == ["src"]
    assert skiff.ok("volume", "ls", "-q") == ""  # /a and new, made before lost was missed, went again
    skiff.ok("rm", "-v", "src")


# --- image VOLUMEs, copy-up, anonymous volumes -------------------------------------------------


def _app_image(rootfs: Path) -> None:
    data = rootfs / "var" / "lib" / "app"
    (data / "sub").mkdir(parents=True)
    os.chown(data, 1000, 1000)
    os.chmod(data, 0o750)
    (data / "conf").write_text("from image\n")
    os.chown(data / "conf", 1000, 100)
    os.chmod(data / "conf", 0o640)
    os.link(data / "conf", data / "sub" / "hard")
    os.symlink("../conf", data / "sub" / "link")


def test_image_volume_gets_copy_up_and_rm_removes_it(skiff: Any, busybox_image: str, busybox_rootfs: Path,
                                                       tmp_path: Path) -> None:
    image = _image_from(skiff, busybox_rootfs, tmp_path, "app:1", ['VOLUME ["/var/lib/app"]'], _app_image)
    skiff.ok("run", "--name", "keeper", image, "cat", "/var/lib/app/conf")
    volumes = skiff.ok("volume", "ls", "-q").split()
    assert len(volumes) == 1 and len(volumes[0]) == 64
    data = _vol_data(skiff, volumes[0])
    st = os.stat(data)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o750)
    conf = os.stat(data / "conf")
    assert (conf.st_uid, conf.st_gid, stat.S_IMODE(conf.st_mode)) == (1000, 100, 0o640)
    assert os.stat(data / "sub" / "hard").st_ino == conf.st_ino
    assert os.readlink(data / "sub" / "link") == "../conf"
    info = json.loads(skiff.ok("volume", "inspect", volumes[0]))[0]
    assert info["Labels"] == {"com.docker.volume.anonymous": ""}
    # a volume in use by a stopped container cannot be removed
    rm = skiff("volume", "rm", volumes[0])
    assert rm.returncode == 1 and "volume is in use - [" in rm.stderr
    skiff.ok("rm", "-v", "keeper")
    assert skiff.ok("volume", "ls", "-q") == ""


def test_run_rm_removes_anonymous_never_named(skiff: Any, busybox_image: str, busybox_rootfs: Path,
                                              tmp_path: Path) -> None:
    image = _image_from(skiff, busybox_rootfs, tmp_path, "app:2", ['VOLUME ["/var/lib/app"]'], _app_image)
    skiff.ok("run", "--rm", "-v", "/extra", "-v", "named:/n", image, "true")
    assert skiff.ok("volume", "ls", "-q") == "named\n"


def test_image_volume_skipped_when_something_is_mounted_there(skiff: Any, busybox_image: str,
                                                               busybox_rootfs: Path, tmp_path: Path) -> None:
    image = _image_from(skiff, busybox_rootfs, tmp_path, "app:3", ['VOLUME ["/var/lib/app"]'], _app_image)
    out = skiff.ok("run", "--rm", "--tmpfs", "/var/lib/app", image, "ls", "-A", "/var/lib/app")
    assert out == "" and skiff.ok("volume", "ls", "-q") == ""
    out = skiff.ok("run", "--rm", "-v", "mine:/var/lib/app:nocopy", image, "ls", "-A", "/var/lib/app")
    assert out == "" and skiff.ok("volume", "ls", "-q") == "mine\n"


def test_bind_mounts_never_copy(skiff: Any, busybox_image: str, busybox_rootfs: Path, tmp_path: Path) -> None:
    image = _image_from(skiff, busybox_rootfs, tmp_path, "app:4", [], _app_image)
    host = tmp_path / "empty-bind"
    skiff.ok("run", "--rm", "-v", f"{host}:/var/lib/app", image, "true")
    assert os.listdir(host) == []


def test_symlink_escape_lands_in_container(skiff: Any, busybox_image: str, busybox_rootfs: Path,
                                          tmp_path: Path) -> None:
    def evil(rootfs: Path) -> None:
        os.symlink("/etc", rootfs / "data")
        os.symlink("../../../../../../../etc", rootfs / "data2")

    image = _image_from(skiff, busybox_rootfs, tmp_path, "evil:1", [], evil)
    marker = f"{_MARK}-{os.getpid()}"
    skiff.ok("run", "--rm", "-v", "evilvol:/data", image, "sh", "-c", f"echo pwned > /data/{marker}")
    assert not os.path.exists(f"/etc/{marker}")
    data = _vol_data(skiff, "evilvol")
    assert (data / marker).read_text() == "pwned\n"
    # copy-up took the container's /etc (busybox's passwd), not the host's
    assert "user:x:1000:1000" in (data / "passwd").read_text()
    assert not (data / "shadow").exists() and not (data / "os-release").exists()
    # a bind mount through the relative link lands on the container's /etc as well
    host = tmp_path / "bind-src"
    skiff.ok("run", "--rm", "-v", f"{host}:/data2", image, "sh", "-c", f"echo pwned > /data2/{marker}2")
    assert not os.path.exists(f"/etc/{marker}2")
    assert (host / f"{marker}2").read_text() == "pwned\n"


# --- driver options ---------------------------------------------------------------------


def test_tmpfs_driver_volume(skiff: Any, busybox_image: str) -> None:
    skiff.ok("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=64m,uid=1000",
             "tv")
    out = skiff.ok("run", "--rm", "-v", "tv:/v", busybox_image, "sh", "-c",
                   "grep ' /v ' /proc/mounts; stat -c %u /v; echo x > /v/f")
    assert "tmpfs" in out and "size=65536k" in out and out.splitlines()[1] == "1000"
    assert not _mounts_under(_vol_data(skiff, "tv"))  # unmounted when the last user ended
    assert os.listdir(_vol_data(skiff, "tv")) == []


def test_bind_driver_volume(skiff: Any, busybox_image: str, tmp_path: Path) -> None:
    device = tmp_path / "srv-data"
    device.mkdir()
    skiff.ok("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={device}", "bv")
    skiff.ok("run", "--rm", "-v", "bv:/v", busybox_image, "sh", "-c", "echo on-device > /v/f")
    assert (device / "f").read_text() == "on-device\n"
    assert not _mounts_under(_vol_data(skiff, "bv"))


# --- propagation ------------------------------------------------------------------------


@pytest.mark.parametrize("mode, seen", [("rslave", True), ("rprivate", False)])
def test_propagation(skiff: Any, busybox_image: str, tmp_path: Path, mode: str, seen: bool) -> None:
    from skiff import linux

    src = tmp_path / "shared-src"
    (src / "sub").mkdir(parents=True)
    linux.mount(src, src, None, linux.MS_BIND)
    linux.mount(None, src, None, linux.MS_SHARED)
    proc = None
    try:
        script = ("touch /h/ready; i=0; while [ $i -lt 100 ]; do [ -e /h/sub/marker ] && echo seen && exit 0; "
                  "sleep 0.1; i=$((i+1)); done; [ -e /h/sub/later ] && echo seen-late; echo unseen")
        proc = subprocess.Popen([sys.executable, "-m", "skiff", "run", "--rm", "-v", f"{src}:/h:{mode}",
                                 busybox_image, "sh", "-c", script],
                                env=skiff.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for(lambda: (src / "ready").exists())
        linux.mount("tmpfs", src / "sub", "tmpfs", 0, "size=1m")
        (src / "sub" / "marker").write_text("x")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.splitlines()[0] == ("seen" if seen else "unseen")
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        for target in (src / "sub", src):
            while _mounts_under(target):
                linux.umount(target, linux.MNT_DETACH)


# --- reliability ------------------------------------------------------------------------


def test_sigkill_container_while_writing(skiff: Any, busybox_image: str) -> None:
    marker = f"{_MARK}-c{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "run", "--rm", "-v", "kv:/v", busybox_image, "sh", "-c",
                             f": {marker}; echo durable > /v/a; sync; while true; do echo x >> /v/b; done"],
                            env=skiff.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: (_vol_data(skiff, "kv") / "b").exists())
        pids = _processes_with(marker)
        assert pids
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        assert proc.returncode == 137
    finally:
        _kill_leftovers(marker)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (_vol_data(skiff, "kv") / "a").read_text() == "durable\n"
    assert skiff.ok("run", "--rm", "-v", "kv:/v", busybox_image, "cat", "/v/a") == "durable\n"
    assert skiff.ok("ps", "-aq") == ""


@pytest.mark.parametrize("driver_opts", [[], ["--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=8m"]])
def test_sigkill_skiff_while_writing(skiff: Any, busybox_image: str, driver_opts: list[str]) -> None:
    skiff.ok("volume", "create", *driver_opts, "ks")
    marker = f"{_MARK}-s{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-m", "skiff", "run", "-v", "ks:/v", busybox_image, "sh", "-c",
                             f": {marker}; echo durable > /v/a; sync; touch /v/started; "
                             "while true; do echo x >> /v/b; sleep 0.01; done"],
                            env=skiff.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: (_vol_data(skiff, "ks") / "started").exists())
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if not driver_opts:
            assert (_vol_data(skiff, "ks") / "a").read_text() == "durable\n"
        # the next skiff command cleans up the dead container's state and mounts
        _kill_leftovers(marker)
        skiff.ok("ps", "-a")
        _wait_for(lambda: not _mounts_under(_vol_data(skiff, "ks")), timeout=10)
        cids = skiff.ok("ps", "-aq").split()
        for cid in cids:
            skiff.ok("rm", "-f", cid)
        if not driver_opts:
            assert skiff.ok("run", "--rm", "-v", "ks:/v", busybox_image, "cat", "/v/a") == "durable\n"
        skiff.ok("volume", "rm", "ks")
    finally:
        _kill_leftovers(marker)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("flags, message", [
    (["-v", "vol1:relative"], "mount path must be absolute"),
    (["-v", "vol1:/a/../../etc"], "escapes the container root"),
    (["-v", ":/x"], "invalid volume specification: ':/x'"),
    (["-v", "vol1:"], "invalid volume specification: 'vol1:'"),
    (["-v", "vol1:/x:rx"], "invalid mode: rx"),
    (["-v", "v@l:/x"], "includes invalid characters for a local volume name"),
    (["-v", "vol1:/"], "destination can't be '/'"),
    (["--mount", "type=volume,source=vol1,target=/x,colour=red"], "unexpected key 'colour' in 'colour=red'"),
    (["--tmpfs", "/t:size=huge"], "invalid tmpfs size: 'huge'"),
    (["--mount", "type=tmpfs,target=/t,tmpfs-size=huge"], "invalid value for tmpfs-size: huge"),
])
def test_bad_input(skiff: Any, busybox_image: str, flags: list[str], message: str) -> None:
    proc = skiff("run", "--rm", "-v", "shouldnotexist:/ok", *flags, busybox_image, "true")
    assert proc.returncode == 125
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert skiff.ok("volume", "ls", "-q") == ""
    assert skiff.ok("ps", "-aq") == ""
