"""The parity runner's own rules: what normalising hides and what it must not, how shapes compare.

These need no dockerd: they check that a difference the suite is there to find is not normalised
away, and that what two correct engines differ in (ids, times, roots, the client's prefix) is.
"""

from __future__ import annotations

from tests.parity.runner import normalise, normalise_error, scenario, shape, shape_differences, step


def test_normalise_hides_ids_times_sizes_roots_and_column_widths() -> None:
    docker = ("CONTAINER ID   IMAGE     STATUS                     NAMES\n"
              "3f2a9c0d1e4b   busybox   Exited (0) 2 seconds ago   p-x\n"
              "/var/lib/d1/volumes/v/_data 2026-12-04T17:42:49.123456789Z 1.24MB\n")
    skiff = ("CONTAINER ID  IMAGE    STATUS                            NAMES\n"
             "aa11bb22cc33  busybox  Exited (0) Less than a second ago  p-x\n"
             "/tmp/r/volumes/v/_data 2026-12-04T17:42:50Z 1.3MB\n")
    assert normalise(docker, ["/var/lib/d1"]) == normalise(skiff, ["/tmp/r"])


def test_normalise_keeps_what_users_read() -> None:
    assert normalise("Exited (0) 1 second ago") != normalise("Exited (1) 1 second ago")
    assert normalise("p-a\n") != normalise("p-b\n")
    assert normalise("uid=0(root) groups=0(root),10(wheel)") != normalise("uid=0(root) groups=10(wheel)")


def test_normalise_error_drops_the_clients_framing_only() -> None:
    docker = ("docker: Error response from daemon: the working directory 'rel' is invalid, it needs to be an "
              "absolute path.\nSee 'docker run --help'.\n")
    skiff = "skiff: the working directory 'rel' is invalid, it needs to be an absolute path\n"
    assert normalise_error(docker) == normalise_error(skiff)
    assert normalise_error("Error: No such container: x\n") == normalise_error("skiff: No such container: x\n")
    assert normalise_error("Error: No such object: x\n") != normalise_error("skiff: No such container: x\n")
    assert normalise_error('"docker rm" requires at least 1 argument.\nSee \'docker rm --help\'.\n') == \
        '"skiff rm" requires at least 1 argument.'
    assert normalise_error("") == ""


def test_shape_compares_keys_and_types() -> None:
    docker = [{"Name": "v", "Labels": {}, "Options": {}, "CreatedAt": "t", "Mounts": [{"RW": True}]}]
    skiff = [{"Name": "w", "Labels": None, "CreatedAt": "u", "Extra": 1, "Mounts": [{"RW": "yes"}]}]
    assert sorted(shape_differences(shape(docker), shape(skiff))) == [
        "[].Extra: extra", "[].Labels: object in docker, null in skiff", "[].Mounts[].RW: bool in docker, str in skiff",
        "[].Options: missing"]
    assert shape_differences(shape(docker), shape(docker)) == []


def test_scenario_names_its_containers() -> None:
    sc = scenario("x", step("create", "--name", "p-a", "busybox"), ["run", "--name=p-b", "busybox"],
                  containers=["p-c"])
    assert sc.names() == ["p-c", "p-a", "p-b"]
