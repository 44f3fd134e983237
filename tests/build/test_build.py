"""``skiff build``: Dockerfiles that use every instruction, run afterwards; stages, the cache,
.dockerignore, hostile contexts, failures (real containers, a private root)."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.conftest import Skiff

EVERY_INSTRUCTION = """\
# syntax=docker/dockerfile:1
ARG BASE=busybox
FROM ${BASE} AS first
ARG WHO=world
ENV GREETING="hello ${WHO}" EMPTY=
LABEL org.example.a=b "second label"=two
WORKDIR /app
COPY hello.txt ./
COPY --chown=12:34 --chmod=0750 dir/ /data/
ADD archive.tar /unpacked/
RUN echo "$GREETING" > /app/out.txt && rm /bin/vi && mkdir -p /x && echo hi > /x/f
RUN <<EOF
echo from-heredoc > /app/heredoc.txt
EOF
SHELL ["/bin/sh", "-e", "-c"]
RUN echo "${EMPTY:-dflt}" > /app/default.txt
USER 1:2
EXPOSE 80/tcp 53/udp
VOLUME ["/vol"]
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s --retries=2 CMD true
ONBUILD RUN echo triggered > /trigger
ENTRYPOINT ["/bin/cat"]
CMD ["/app/out.txt"]
"""


def _context(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(text)
    return ctx


def _image_config(skiff: Skiff, ref: str) -> dict:
    return json.loads(skiff.ok("image", "inspect", ref))[0]


def test_every_instruction_then_run(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, EVERY_INSTRUCTION, {"hello.txt": "hello\n", "dir/a": "a\n", "dir/sub/b": "b\n"})
    os.symlink("/etc/shadow", ctx / "dir" / "link")
    os.link(ctx / "dir" / "a", ctx / "dir" / "sub" / "hard")
    with tarfile.open(ctx / "archive.tar", "w") as tar:  # no entry for its directory: made anyway
        info = tarfile.TarInfo("inside/file")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"tar"))
    out = skiff.ok("build", "--network", "none", "--build-arg", "WHO=skiff", "-t", "every:1", str(ctx))
    assert "Step 1/21 : ARG BASE=busybox" in out and "Step 21/21 : CMD [\"/app/out.txt\"]" in out
    assert " ---> Running in " in out and "Removing intermediate container" in out
    assert out.strip().splitlines()[-2].startswith("Successfully built ")
    assert out.strip().splitlines()[-1] == "Successfully tagged every:1"
    assert skiff.ok("run", "--rm", "--network", "none", "every:1") == "hello skiff\n"
    listing = skiff.ok("run", "--rm", "--network", "none", "-u", "0", "--entrypoint", "sh", "every:1", "-c",
                       "cat /app/heredoc.txt /app/default.txt /app/hello.txt /unpacked/inside/file; echo;"
                       "stat -c '%u:%g %a %n' /data /data/a /data/sub/b; readlink /data/link;"
                       "ls /bin/vi 2>&1; cat /x/f; ls -d /vol; stat -c %h:%i /data/a /data/sub/hard | uniq -c")
    assert listing.splitlines() == [
        "from-heredoc", "dflt", "hello", "tar", "12:34 755 /data", "12:34 750 /data/a", "12:34 750 /data/sub/b",
        "/etc/shadow", "ls: /bin/vi: No such file or directory", "hi", "/vol",
        listing.splitlines()[-1]]
    assert listing.splitlines()[-1].split()[0] == "2" and listing.splitlines()[-1].split()[1].startswith("2:")
    doc = _image_config(skiff, "every:1")
    config = doc["Config"]
    assert config["Env"][-2:] == ["GREETING=hello skiff", "EMPTY="]
    assert config["Labels"] == {"org.example.a": "b", "second label": "two"}
    assert config["WorkingDir"] == "/app" and config["User"] == "1:2" and config["StopSignal"] == "SIGUSR1"
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}} and config["Volumes"] == {"/vol": {}}
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert config["OnBuild"] == ["RUN echo triggered > /trigger"]
    assert config["Entrypoint"] == ["/bin/cat"] and config["Cmd"] == ["/app/out.txt"]
    assert config["Shell"] == ["/bin/sh", "-e", "-c"]
    history = json.loads(skiff.ok("image", "inspect", "-f", "{{json .RootFS.Layers}}", "every:1"))
    assert len(history) == 1 + 7  # busybox, then WORKDIR, COPY, COPY, ADD and three RUNs: one layer each
    listed = skiff.ok("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert sorted(listed) == ["busybox:latest", "every:1"]  # the steps' images are build cache, not listed


def test_onbuild_triggers_run_in_the_child_build(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    parent = _context(tmp_path / "p", "FROM busybox\nONBUILD RUN echo triggered > /trigger\n")
    skiff.ok("build", "--network", "none", "-t", "parent:1", str(parent))
    child = _context(tmp_path / "c", "FROM parent:1\nCMD [\"cat\", \"/trigger\"]\n")
    out = skiff.ok("build", "--network", "none", "-t", "child:1", str(child))
    assert "# Executing 1 build trigger" in out
    assert skiff.ok("run", "--rm", "--network", "none", "child:1") == "triggered\n"
    assert _image_config(skiff, "child:1")["Config"]["OnBuild"] is None


def test_multi_stage_and_target(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox AS builder\nRUN echo built > /artifact\n"
                             "FROM scratch AS final\nCOPY --from=builder /artifact /\nCOPY --from=0 /bin/busybox /\n"
                             "CMD [\"/busybox\", \"cat\", \"/artifact\"]\n")
    out = skiff.ok("build", "--network", "none", "-t", "multi:1", str(ctx))
    assert "Step 6/6" in out
    assert skiff.ok("run", "--rm", "--network", "none", "multi:1") == "built\n"
    assert len(_image_config(skiff, "multi:1")["RootFS"]["Layers"]) == 2
    out = skiff.ok("build", "--network", "none", "--target", "builder", "-t", "multi:builder", str(ctx))
    assert "Step 2/2" in out and "Step 3/" not in out
    assert skiff.ok("run", "--rm", "--network", "none", "multi:builder", "cat", "/artifact") == "built\n"
    failed = skiff("build", "--target", "nope", str(ctx))
    assert failed.returncode == 1 and "failed to reach build target nope" in failed.stderr


def test_cache_hits_and_misses(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nCOPY a /a\nRUN cat /a > /copy\nCOPY b /b\nRUN cat /a /b\n",
                   {"a": "one\n", "b": "two\n"})
    first = skiff.ok("build", "--network", "none", "-q", str(ctx)).strip()
    again = skiff.ok("build", "--network", "none", str(ctx))
    assert again.count(" ---> Using cache") == 4 and "Running in" not in again
    assert again.strip().endswith(f"Successfully built {first.removeprefix('sha256:')[:12]}")
    os.utime(ctx / "a", (1, 1))  # a new time, the same bytes: still a hit
    assert skiff.ok("build", "--network", "none", "-q", str(ctx)).strip() == first
    (ctx / "b").write_text("changed\n")
    changed = skiff.ok("build", "--network", "none", str(ctx))
    steps = changed.split("Step ")
    assert " ---> Using cache" in steps[2] and " ---> Using cache" in steps[3]
    assert " ---> Using cache" not in steps[4] and "Running in" in steps[5] and "one\nchanged\n" in steps[5]
    no_cache = skiff.ok("build", "--network", "none", "--no-cache", str(ctx))
    assert "Using cache" not in no_cache
    pruned = skiff.ok("builder", "prune", "-f")
    assert "Total reclaimed space" in pruned
    after = skiff.ok("build", "--network", "none", str(ctx))
    assert "Using cache" not in after


def test_dockerignore(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nCOPY . /ctx/\n", {
        ".dockerignore": "*.log\n!keep.log\nsecret\n**/*.tmp\n",
        "a.log": "", "keep.log": "", "secret/key": "", "sub/x.tmp": "", "sub/y.txt": ""})
    skiff.ok("build", "--network", "none", "-t", "ignored:1", str(ctx))
    found = skiff.ok("run", "--rm", "--network", "none", "ignored:1", "find", "/ctx", "-type", "f").split()
    assert sorted(found) == ["/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/keep.log", "/ctx/sub/y.txt"]
    failed = skiff("build", "--network", "none", str(_context(tmp_path, "FROM busybox\nCOPY a.log /\n")))
    assert failed.returncode == 1 and "excluded by .dockerignore" in failed.stderr


def test_hostile_context_stays_inside(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nCOPY tree /tree\n", {"tree/file": "x"})
    os.symlink("/etc/shadow", ctx / "tree" / "shadow")
    os.symlink("../../..", ctx / "tree" / "up")
    os.symlink("/etc/shadow", ctx / "toplink")
    skiff.ok("build", "--network", "none", "-t", "hostile:1", str(ctx))
    out = skiff.ok("run", "--rm", "--network", "none", "hostile:1", "sh", "-c",
                   "readlink /tree/shadow; readlink /tree/up; ls /tree")
    assert out.split() == ["/etc/shadow", "../../..", "file", "shadow", "up"]
    for dockerfile, message in [
        ("FROM busybox\nCOPY ../outside /x\n", "forbidden path outside the build context: ../outside"),
        ("FROM busybox\nCOPY toplink /x\n", "file not found in build context"),  # resolved inside the context
        ("FROM busybox\nADD http://127.0.0.1:9/file /x\n", "ADD failed: failed to GET http://127.0.0.1:9/file"),
        ("FROM busybox\nRUN exit 3\n", "The command '/bin/sh -c exit 3' returned a non-zero code: 3"),
    ]:
        (ctx / "Dockerfile").write_text(dockerfile)
        failed = skiff("build", "--network", "none", str(ctx))
        assert failed.returncode == 1, failed
        assert message in failed.stderr and "step 2/2" in failed.stderr and "Dockerfile line 2" in failed.stderr


def test_destination_links_resolve_inside_the_image(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN ln -s /etc/../../../tmp /escape\nCOPY f /escape/f\n",
                   {"f": "inside"})
    skiff.ok("build", "--network", "none", "-t", "dest:1", str(ctx))
    assert skiff.ok("run", "--rm", "--network", "none", "dest:1", "cat", "/tmp/f") == "inside"
    assert not Path("/tmp/f").exists() or Path("/tmp/f").read_text() != "inside"


def test_context_from_stdin(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    out = skiff.ok("build", "--network", "none", "-q", "-", input="FROM busybox\nCMD [\"echo\", \"stdin\"]\n")
    image = out.strip()
    assert image.startswith("sha256:")
    assert skiff.ok("run", "--rm", "--network", "none", image) == "stdin\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n"), ("f", b"tarred\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "skiff", "build", "--network", "none", "-t", "fromtar:1", "-"],
                          input=buffer.getvalue(), env=skiff.env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert skiff.ok("run", "--rm", "--network", "none", "fromtar:1") == "tarred\n"


def test_source_date_epoch_makes_builds_reproducible(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nCOPY f /f\nRUN echo x > /y\nENV A=1\n", {"f": "same"})
    env = {**skiff.env, "SOURCE_DATE_EPOCH": "1700000000"}
    reproducible = Skiff(env)
    first = reproducible.ok("build", "--network", "none", "--no-cache", "-q", str(ctx)).strip()
    second = reproducible.ok("build", "--network", "none", "--no-cache", "-q", str(ctx)).strip()
    assert first == second
    assert _image_config(skiff, first)["Created"] == "2023-11-14T22:13:20Z"


def test_output_oci_archive_and_iidfile(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nCOPY f /f\n", {"f": "x"})
    archive, iid = tmp_path / "out.tar", tmp_path / "iid"
    skiff.ok("build", "--network", "none", "--iidfile", str(iid), "--output", f"type=oci,dest={archive}",
             "--compression", "zstd", str(ctx))
    with tarfile.open(archive) as tar:
        assert "oci-layout" in tar.getnames() and "index.json" in tar.getnames()
    image = iid.read_text()
    media = [layer for layer in json.loads(skiff.ok("image", "inspect", image))[0]["RootFS"]["Layers"]]
    assert len(media) == 2


def test_heredocs_feed_the_shell(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN cat <<A > /a && cat <<'B' > /b\nfirst $HOME\nA\nsecond $HOME\nB\n"
                             "CMD [\"cat\", \"/a\", \"/b\"]\n")
    skiff.ok("build", "--network", "none", "-t", "heredoc:1", str(ctx))
    assert skiff.ok("run", "--rm", "--network", "none", "heredoc:1") == "first /root\nsecond $HOME\n"


def test_copy_from_a_heredoc(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nENV WHO=doc\nCOPY <<EOF /etc/greeting\nhello $WHO\nEOF\n"
                             "COPY --chmod=0700 <<'RAW' /raw.sh\necho $WHO\nRAW\n")
    skiff.ok("build", "--network", "none", "-t", "copydoc:1", str(ctx))
    out = skiff.ok("run", "--rm", "--network", "none", "copydoc:1", "sh", "-c", "cat /etc/greeting /raw.sh;"
                   "stat -c %a /raw.sh")
    assert out == "hello doc\necho $WHO\n700\n"


def test_run_steps_on_the_default_bridge(skiff: Skiff, busybox_image: str, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN ip -4 addr show eth0 | grep -q inet && echo networked > /net\n")
    skiff.ok("build", "-t", "bridged:1", str(ctx))
    assert skiff.ok("run", "--rm", "--network", "none", "bridged:1", "cat", "/net") == "networked\n"
    bad = skiff("build", "-t", "Bad:Tag", str(ctx))
    assert bad.returncode == 125 and 'invalid argument "Bad:Tag" for "-t, --tag" flag' in bad.stderr
