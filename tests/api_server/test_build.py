"""``docker build`` (classic builder, DOCKER_BUILDKIT=0) and ``docker commit`` through the Engine API."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.api_server.conftest import DOCKER, Service


def _classic(service: Service, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in service.env.items() if not k.startswith("DOCKER_")}
    env.update(DOCKER_CONFIG=str(service.socket.parent / "docker-config"), DOCKER_BUILDKIT="0")
    proc = subprocess.run([DOCKER, "-H", f"unix://{service.socket}", *args], env=env, capture_output=True,
                          text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_docker_build_sends_a_context_and_runs_the_steps(service: Service, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nARG WHO\nCOPY greeting /g\nRUN echo \"$(cat /g) $WHO\" > /out\n"
                                    "CMD [\"cat\", \"/out\"]\n")
    (ctx / "greeting").write_text("hello")
    out = _classic(service, "build", "--network", "none", "--build-arg", "WHO=api", "-t", "apibuilt:1",
                   str(ctx)).stdout
    assert "Step 4/5 : RUN" in out and "Successfully tagged apibuilt:1" in out
    assert service.docker("run", "--rm", "--network", "none", "apibuilt:1").stdout == "hello api\n"
    quiet = _classic(service, "build", "-q", "--network", "none", "--build-arg", "WHO=api", str(ctx)).stdout
    assert quiet.strip() == service.docker("image", "inspect", "-f", "{{.Id}}", "apibuilt:1").stdout.strip()
    # without DOCKER_BUILDKIT the client asks /_ping which builder to use: the classic one
    default = service.docker("build", "-q", "--network", "none", "--build-arg", "WHO=api", str(ctx)).stdout
    assert default.strip() == quiet.strip()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 7\n")
    failed = _classic(service, "build", "--network", "none", str(ctx), check=False)
    assert failed.returncode == 1 and "returned a non-zero code: 7" in failed.stderr


def test_docker_commit(service: Service) -> None:
    cid = service.docker("run", "-d", "--network", "none", "busybox", "sh", "-c",
                         "echo kept > /kept; sleep 60").stdout.strip()
    try:
        for _ in range(100):
            if service.docker("exec", cid, "cat", "/kept", check=False).stdout == "kept\n":
                break
        out = service.docker("commit", "-c", 'CMD ["cat", "/kept"]', "-m", "via api", cid, "apicommit:1").stdout
        assert out.startswith("sha256:")
        assert service.docker("run", "--rm", "--network", "none", "apicommit:1").stdout == "kept\n"
        comment = service.docker("image", "inspect", "-f", "{{.Comment}}", "apicommit:1").stdout.strip()
        assert comment == "via api"
    finally:
        service.docker("rm", "-f", cid, check=False)
    assert os.path.exists(DOCKER)
