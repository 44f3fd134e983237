"""Docker 20.10's ``--filter`` on ``ps``, the prunes, ``network ls`` and ``volume ls``, with real
containers, volumes, images and networks. Error texts and statuses as a private dockerd 20.10
printed them (``Invalid filter 'foo'``, exit 1), after skiff's prefix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Skiff
from tests.e2e.test_lifecycle import detach, lc  # noqa: F401  (lc: the fixture)


def names(skiff: Skiff, *args: str) -> list[str]:
    return skiff.ok(*args, "--format", "{{.Names}}").split()


def refused(skiff: Skiff, *args: str) -> str:
    """A daemon-side filter error: Docker's line on stderr, exit 1."""
    result = skiff(*args)
    assert result.returncode == 1, (args, result.stdout, result.stderr)
    assert result.stdout == ""
    return result.stderr.strip()


@pytest.fixture
def three(lc: Skiff) -> dict[str, str]:
    """``up`` running (label, volume, published port), ``done`` exited 3, ``made`` created."""
    ids = {"done": lc.ok("run", "-d", "--network", "none", "--name", "done", "-l", "tier=batch",
                         "busybox", "sh", "-c", "exit 3").strip()}
    lc.ok("wait", "done")
    ids["up"] = lc.ok("run", "-d", "--name", "up", "-l", "tier=web", "-l", "owner=me", "-v", "fvol:/data",
                      "-p", "127.0.0.1:18321:80", "busybox", "sleep", "300").strip()
    ids["made"] = lc.ok("create", "--network", "none", "--name", "made", "busybox", "true").strip()
    return ids


def test_ps_every_docker_filter(lc: Skiff, three: dict[str, str]) -> None:
    ps = ("ps", "-a")
    assert names(lc, *ps, "--filter", f"id={three['up'][:10]}") == ["up"]
    assert names(lc, *ps, "--filter", "name=^/(up|made)$") == ["made", "up"]  # a regexp, on "/name"
    assert names(lc, *ps, "--filter", "name=d") == ["made", "done"]
    assert names(lc, *ps, "--filter", "label=tier") == ["up", "done"]
    assert names(lc, *ps, "--filter", "label=tier=web", "--filter", "label=owner") == ["up"]  # labels AND-ed
    assert names(lc, *ps, "--filter", "exited=3") == ["done"]
    assert names(lc, *ps, "--filter", "exited=0") == []
    assert names(lc, "ps", "--filter", "status=created") == ["made"]  # status implies -a, as Docker's
    assert names(lc, *ps, "--filter", "status=running", "--filter", "status=exited") == ["up", "done"]
    assert names(lc, *ps, "--filter", "ancestor=busybox") == ["made", "up", "done"]
    assert names(lc, *ps, "--filter", "ancestor=nosuchimage") == []
    assert names(lc, *ps, "--filter", "before=made") == ["up", "done"]
    assert names(lc, *ps, "--filter", "since=done") == ["made", "up"]
    assert names(lc, *ps, "--filter", "volume=fvol") == ["up"]
    assert names(lc, *ps, "--filter", "volume=/data") == ["up"]
    assert names(lc, *ps, "--filter", "network=bridge") == ["up"]
    assert names(lc, *ps, "--filter", "network=none") == ["made", "done"]
    assert names(lc, *ps, "--filter", "publish=18321") == ["up"]
    assert names(lc, *ps, "--filter", "publish=18320-18330/tcp") == ["up"]
    assert names(lc, *ps, "--filter", "publish=18321/udp") == []
    assert names(lc, *ps, "--filter", "expose=80") == ["up"]
    assert names(lc, *ps, "--filter", "health=none") == ["made", "up", "done"]  # no healthcheck: "none"
    assert names(lc, *ps, "--filter", "health=healthy") == []
    assert names(lc, *ps, "--filter", "is-task=true") == []
    assert names(lc, *ps, "--filter", "is-task=false") == ["made", "up", "done"]
    assert names(lc, *ps, "--filter", "isolation=") == ["made", "up", "done"]
    assert names(lc, *ps, "--filter", "isolation=hyperv") == []
    assert lc.ok("ps", "-q", "--filter", "label=tier") == three["up"][:12] + "\n"


def test_ps_filter_errors_as_docker(lc: Skiff, three: dict[str, str]) -> None:
    daemon = "skiff: "  # where Docker names its daemon (skiff has none)
    for flt, text in (("foo=bar", "Invalid filter 'foo'"), ("status=bogus", "Invalid filter 'status=bogus'"),
                      ("health=bogus", "Unrecognised filter value for health: bogus"),
                      ("exited=abc", 'strconv.Atoi: parsing "abc": invalid syntax'),
                      ("is-task=maybe", "Invalid filter 'is-task=[maybe]'"),
                      ("before=nope", "no such container nope"),
                      ("publish=abc", 'error while looking up for publish abc: strconv.ParseUint: parsing '
                                      '"abc": invalid syntax'),
                      ("publish=1:2", "filter for 'publish' should not contain ':': 1:2")):
        assert refused(lc, "ps", "-a", "--filter", flt) == daemon + text
    bad = lc("ps", "--filter", "foo")
    assert bad.returncode == 125 and bad.stderr == (
        'invalid argument "foo" for "-f, --filter" flag: bad format of filter (expected name=value)\n'
        "See 'skiff ps --help'.\n")


def test_container_prune_filters(lc: Skiff) -> None:
    for name, label in (("keep", "keep=yes"), ("go1", "batch=1"), ("go2", "batch=2")):
        lc.ok("create", "--network", "none", "--name", name, "-l", label, "busybox", "true")
    assert lc.ok("container", "prune", "-f", "--filter", "until=1h") == "Total reclaimed space: 0B\n"
    out = lc.ok("container", "prune", "-f", "--filter", "label=batch=1")
    assert out.startswith("Deleted Containers:\n") and out.count("\n") == 4
    assert names(lc, "ps", "-a") == ["go2", "keep"]
    lc.ok("container", "prune", "-f", "--filter", "label!=keep")
    assert names(lc, "ps", "-a") == ["keep"]
    assert refused(lc, "container", "prune", "-f", "--filter", "until=soon") == \
        'skiff: failed to parse value as time or duration: "soon"'
    assert refused(lc, "container", "prune", "-f", "--filter", "name=keep") == \
        "skiff: Invalid filter 'name'"
    assert names(lc, "ps", "-a") == ["keep"]


def test_volume_ls_and_prune_filters(lc: Skiff) -> None:
    lc.ok("volume", "create", "--label", "env=prod", "prodvol")
    lc.ok("volume", "create", "--label", "env=test", "testvol")
    lc.ok("volume", "create", "usedvol")
    detach(lc, "--name", "user", "-v", "usedvol:/u", "busybox", "sleep", "300")
    ls = ("volume", "ls", "-q")
    assert lc.ok(*ls, "--filter", "dangling=true").split() == ["prodvol", "testvol"]
    assert lc.ok(*ls, "--filter", "dangling=0").split() == ["usedvol"]
    assert lc.ok(*ls, "--filter", "label=env").split() == ["prodvol", "testvol"]
    assert lc.ok(*ls, "--filter", "label=env=test").split() == ["testvol"]
    assert lc.ok(*ls, "--filter", "name=^(prod|used)").split() == ["prodvol", "usedvol"]
    assert lc.ok(*ls, "--filter", "driver=local").split() == ["prodvol", "testvol", "usedvol"]
    assert lc.ok(*ls, "--filter", "driver=nfs").split() == []
    assert refused(lc, *ls, "--filter", "dangling=maybe") == \
        "skiff: Invalid filter 'dangling=[maybe]'"
    assert refused(lc, *ls, "--filter", "size=1") == "skiff: Invalid filter 'size'"
    # 20.10 prunes unused named volumes too (23.0 and later: only anonymous ones without -a)
    out = lc.ok("volume", "prune", "-f", "--filter", "label!=env=prod")
    assert out.startswith("Deleted Volumes:\ntestvol\n\n")
    assert lc.ok(*ls).split() == ["prodvol", "usedvol"]
    assert refused(lc, "volume", "prune", "-f", "--filter", "until=1h") == \
        "skiff: Invalid filter 'until'"
    assert lc.ok("volume", "prune", "-f").startswith("Deleted Volumes:\nprodvol\n")
    assert lc.ok(*ls).split() == ["usedvol"]


def test_image_prune_filters(lc: Skiff, busybox_tar: Path) -> None:
    def dangling(label: str) -> str:
        return lc.ok("import", "--change", f"LABEL {label}", str(busybox_tar)).strip()

    labelled, other = dangling("purpose=scratch"), dangling("purpose=keep")
    ids = lambda: set(lc.ok("images", "-q", "--no-trunc").split())  # noqa: E731
    assert lc.ok("image", "prune", "-f", "--filter", "until=1h") == "Total reclaimed space: 0B\n"
    out = lc.ok("image", "prune", "-f", "--filter", "label=purpose=scratch")
    assert f"deleted: {labelled}" in out and other in ids()
    # dangling=false is -a: every unused image, here only those created more than an hour ago
    assert lc.ok("image", "prune", "-f", "--filter", "dangling=false", "--filter", "until=1h") == \
        "Total reclaimed space: 0B\n"
    assert refused(lc, "image", "prune", "-f", "--filter", "dangling=maybe") == \
        'skiff: invalid value for filter \'dangling\', must be "true" (or "1"), ' \
        'or "false" (or "0")'
    assert refused(lc, "image", "prune", "-f", "--filter", "reference=x") == \
        "skiff: Invalid filter 'reference'"
    assert other in ids()
    lc.ok("image", "prune", "-f", "--filter", "label=purpose")
    assert other not in ids()


def test_network_ls_filters(lc: Skiff) -> None:
    from tests.network.conftest import free_subnet

    taken = set(json.loads((lc.root / "network" / "config.json").read_text())["subnet_candidates"])
    first = free_subnet(used=taken)
    lc.ok("network", "create", "--subnet", first, "--label", "team=a", "fnet1")
    lc.ok("network", "create", "--subnet", free_subnet(used=taken | {first}), "fnet2")
    try:
        lc.ok("run", "-d", "--name", "onnet", "busybox", "sleep", "300")
        lc.ok("network", "connect", "fnet2", "onnet")
        ls = ("network", "ls", "--format", "{{.Name}}")
        assert lc.ok(*ls, "--filter", "type=custom").split() == ["fnet1", "fnet2"]
        assert lc.ok(*ls, "--filter", "type=builtin").split() == ["bridge", "host", "none"]
        assert lc.ok(*ls, "--filter", "label=team=a").split() == ["fnet1"]
        assert lc.ok(*ls, "--filter", "name=^fnet").split() == ["fnet1", "fnet2"]
        assert lc.ok(*ls, "--filter", "dangling=true").split() == ["fnet1"]
        assert lc.ok(*ls, "--filter", "dangling=false").split() == ["bridge", "fnet2", "host", "none"]
        assert lc.ok(*ls, "--filter", "driver=bridge", "--filter", "type=custom").split() == ["fnet1", "fnet2"]
        assert lc.ok(*ls, "--filter", "scope=local", "--filter", "name=fnet2").split() == ["fnet2"]
        assert lc.ok(*ls, "--filter", "scope=swarm").split() == []
        fnet1 = json.loads(lc.ok("network", "inspect", "fnet1"))[0]["Id"]
        assert lc.ok(*ls, "--filter", f"id={fnet1[:8]}").split() == ["fnet1"]
        assert refused(lc, *ls, "--filter", "type=bogus") == \
            "skiff: invalid filter: 'type'='bogus'"
        assert refused(lc, *ls, "--filter", "foo=1") == "skiff: Invalid filter 'foo'"
    finally:
        lc("rm", "-f", "onnet")
        lc("network", "rm", "fnet1", "fnet2")
