"""Image references parse and print as Docker's do."""

from __future__ import annotations

import pytest

from skiff.errors import InvalidReference
from skiff.image.reference import parse_reference

H = "a" * 64


@pytest.mark.parametrize("text, full, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("user/repo:tag", "docker.io/user/repo:tag", "user/repo:tag"),
    ("user/sub/repo", "docker.io/user/sub/repo:latest", "user/sub/repo:latest"),
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    ("localhost:5000/x:tag", "localhost:5000/x:tag", "localhost:5000/x:tag"),
    ("quay.io/org/app:v1.2-rc_3", "quay.io/org/app:v1.2-rc_3", "quay.io/org/app:v1.2-rc_3"),
    ("Registry.Example:443/a/b", "Registry.Example:443/a/b:latest", "Registry.Example:443/a/b:latest"),
    ("ab-c__d/e.f", "docker.io/ab-c__d/e.f:latest", "ab-c__d/e.f:latest"),
    (f"busybox@sha256:{H}", f"docker.io/library/busybox@sha256:{H}", f"busybox@sha256:{H}"),
    (f"busybox:1@sha256:{H}", f"docker.io/library/busybox:1@sha256:{H}", f"busybox:1@sha256:{H}"),
    (f"host:5000/r@sha256:{H}", f"host:5000/r@sha256:{H}", f"host:5000/r@sha256:{H}"),
])
def test_valid_references(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar == familiar


def test_parts() -> None:
    ref = parse_reference("localhost:5000/team/app:v2")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "team/app", "v2", None)
    assert ref.familiar_name == "localhost:5000/team/app"


@pytest.mark.parametrize("text", ["Busybox", "user/Repo", "docker.io/Library/busybox:latest"])
def test_uppercase_repository_is_refused(text: str) -> None:
    with pytest.raises(InvalidReference, match="^invalid reference format: repository name must be lowercase$"):
        parse_reference(text)


@pytest.mark.parametrize("text", [
    "", ":tag", "busybox:", "busybox:-bad", "bus box", "a//b", "-a", "a-", "a..b", "busybox@sha256:abc",
    f"busybox@sha256:{'A' * 64}", "busybox:" + "t" * 129, "host:port/x", "/busybox", H,
    "x/" + "a" * 260,
])
def test_invalid_references(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_invalid_reference_exit_code() -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference("UPPER")
    assert info.value.exit_code == 125
