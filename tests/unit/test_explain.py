"""skiff.explain's formatting and its on/off switch, without root (the kernel's side: tests/e2e/test_explain.py)."""

from __future__ import annotations

import json
import os
import pytest

from skiff import explain

LAYER = "/var/lib/skiff/overlay/{}/diff"


def _enable(mode: str) -> int:
    read_fd, write_fd = os.pipe()
    explain.enable(mode, write_fd)
    os.close(write_fd)  # explain holds its own duplicate
    return read_fd


def _read_all(fd: int) -> str:
    explain.close()
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def test_a_long_lowerdir_list_keeps_its_ends_and_counts_the_rest() -> None:
    layers = [LAYER.format(n) for n in range(10)]
    options = f"lowerdir={':'.join(layers)},upperdir=/c/upper,workdir=/c/work,index=off"
    shown = explain.overlay_options(options)
    assert shown == (f"lowerdir={layers[0]}:{layers[1]}:<6 more layers>:{layers[8]}:{layers[9]},"
                     "upperdir=/c/upper,workdir=/c/work,index=off")


def test_a_short_lowerdir_list_and_escaped_separators_stay_whole() -> None:
    options = r"lowerdir=/a\:b:/c:/d,upperdir=/u\,v,workdir=/w"
    assert explain.overlay_options(options) == options
    five = ":".join(f"/l{n}" for n in range(5))
    assert explain.overlay_options(f"lowerdir={five}") == f"lowerdir={five}"
    seven = ":".join([r"/x\:0", *(f"/l{n}" for n in range(1, 7))])
    assert explain.overlay_options(f"lowerdir={seven}") == r"lowerdir=/x\:0:/l1:<3 more layers>:/l5:/l6"


def test_flags_and_namespaces_in_words() -> None:
    assert explain.clone_flags(0x00020000 | 0x04000000 | 0x40000000) == "CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWNET"
    assert explain.namespace_words(0x00020000 | 0x08000000) == "mount and IPC"
    assert explain.namespace_words(0x40000000) == "network"
    assert explain.namespace_words(0) == "no"
    assert explain.mount_flags(0x1000 | 0x4000) == "MS_BIND|MS_REC"
    assert explain.mount_flags(0) == "0"


def test_ids_are_cut_to_twelve_digits_in_text_only() -> None:
    cid = "ab" * 32
    assert explain.short_ids(f"/run/skiff/containers/{cid}/rootfs") == f"/run/skiff/containers/{cid[:12]}/rootfs"
    assert explain.short_ids("a" * 63) == "a" * 63 and explain.short_ids("a" * 65) == "a" * 65
    line = explain.format_json("root", "x", "mount", {"target": f"/c/{cid}"}, 1.0)
    assert json.loads(line)["args"]["target"] == f"/c/{cid}"


def test_a_long_value_is_cut_in_the_middle() -> None:
    text = "/a" + "x" * 500 + "/end"
    shown = explain.shorten(text)
    assert len(shown) <= explain.VALUE_LIMIT and shown.startswith("/axx") and shown.endswith("x/end")
    assert "[...]" in shown


def test_text_step_has_phase_time_words_and_call() -> None:
    text = explain.format_text("mounts", "mount a new proc at /proc", "mount",
                               {"source": "proc", "target": "/proc", "flags": ["nosuid", "nodev"]}, 0.125)
    first, second = text.splitlines()
    assert first.split()[:3] == ["mounts", "0.12", "ms"] and first.endswith("mount a new proc at /proc")
    assert second.strip() == "mount(source=proc, target=/proc, flags=[nosuid, nodev])"
    composite = explain.format_text("root", "x", "open_tree + move_mount", {"target": "/d"}, 0)
    assert composite.splitlines()[1].strip() == "open_tree + move_mount: target=/d"


def test_mount_entries_in_words() -> None:
    what, call, args = explain.mount_entry({"destination": "/data", "type": "bind", "source": "/v/_data",
                                            "options": ["rbind", "ro"]})
    assert (what, call) == ("bind /v/_data to /data (read-only)", "open_tree(OPEN_TREE_CLONE) + move_mount")
    assert args["options"] == "rbind,ro"
    what, call, args = explain.mount_entry({"destination": "/proc", "type": "proc", "source": "proc"})
    assert (what, call, args["type"]) == ("mount a new proc at /proc", "mount", "proc")


def test_off_writes_nothing_and_keeps_no_fd() -> None:
    assert not explain.on
    explain.step(explain.ROOT, "nothing", "pivot_root", {})
    explain.mark()
    assert explain.fds() == () and explain.handoff() == ""


def test_json_steps_are_one_object_per_line() -> None:
    read_fd = _enable("json")
    assert explain.on and explain.fds()
    (fd,) = explain.fds()
    assert fd >= 10 and not os.get_inheritable(fd)  # close-on-exec: no child keeps it by accident
    explain.step(explain.CGROUPS, "memory.max = 1", "write", {"path": "/sys/fs/cgroup/x/memory.max", "value": "1"})
    explain.step(explain.TEARDOWN, "rmdir", "rmdir", None)
    lines = _read_all(read_fd).splitlines()
    steps = [json.loads(line) for line in lines]
    assert [set(s) for s in steps] == [{"phase", "step", "call", "args", "ms"}] * 2
    assert steps[0]["phase"] == "cgroups" and steps[0]["args"]["value"] == "1" and steps[0]["ms"] >= 0
    assert not explain.on and explain.fds() == ()


def test_text_begins_with_a_header_and_a_fresh_interpreter_resumes() -> None:
    read_fd = _enable("text")
    state = explain.handoff()
    assert state.startswith("text:")
    (fd,) = explain.fds()
    explain.on = False  # as a fresh interpreter, which has only the handoff and the fd
    explain.resume(state)
    assert explain.on and explain.fds() == (fd,)
    explain.step(explain.ROOT, "pivot_root", "pivot_root", {"new_root": "."})
    text = _read_all(read_fd)
    assert text.startswith(explain.HEADER) and "pivot_root(new_root=.)" in text


def test_a_bad_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        explain.enable("yaml")
    assert not explain.on
