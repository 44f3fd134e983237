"""``--format`` (Go templates) through the CLI, on real containers, images, volumes and networks."""

from __future__ import annotations

import json
import re

from tests.conftest import Skiff
from tests.e2e.test_lifecycle import detach, lc  # noqa: F401 - lc is a fixture

MISSING_ROW_FIELD = ('template parsing error: template: :1:2: executing "" at <.Nope>: '
                     "can't evaluate field Nope in type {}")


def test_ps_format_renders_dockers_fields(lc: Skiff) -> None:
    cid = detach(lc, "--name", "web", "-l", "app=shop", "-l", "com.example.my-label=v", "busybox", "sleep", "300")
    assert lc.ok("ps", "--format", "{{.Names}}") == "web\n"
    assert lc.ok("ps", "--format", '{{.ID}} {{.Image}} {{.Command}} {{.State}} {{.Label "app"}} {{.Networks}}') == \
        f'{cid[:12]} busybox "sleep 300" running shop none\n'
    assert lc.ok("ps", "--no-trunc", "--format", "{{.ID}}") == cid + "\n"
    assert re.fullmatch(r"Up .+\|.+ ago\|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+\n",
                        lc.ok("ps", "--format", "{{.Status}}|{{.RunningFor}}|{{.CreatedAt}}"))
    row = json.loads(lc.ok("ps", "--format", "{{json .}}"))
    assert list(row) == sorted(row) and row["Names"] == "web" and row["Labels"] == "app=shop,com.example.my-label=v"
    assert lc.ok("ps", "--format", "json") == lc.ok("ps", "--format", "{{json .}}")


def test_ps_table_format_prints_dockers_header(lc: Skiff) -> None:
    cid = detach(lc, "--name", "web", "-l", "com.example.my-label=v", "busybox", "sleep", "300")
    out = lc.ok("ps", "--format", 'table {{.ID}}\\t{{.Names}}\\t{{.Label "com.example.my-label"}}')
    assert out == f"CONTAINER ID   NAMES     my label\n{cid[:12]}   web       v\n"
    # 'table' alone is the default table; -q with it still lists ids only
    assert re.split(r"\s{2,}", lc.ok("ps", "--format", "table").splitlines()[0]) == [
        "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert lc.ok("ps", "-q", "--format", "table") == cid[:12] + "\n"


def test_ps_format_errors_exit_1_and_print_nothing(lc: Skiff) -> None:
    detach(lc, "--name", "web", "busybox", "sleep", "300")
    proc = lc("ps", "--format", "{{.Nope}}")
    assert (proc.returncode, proc.stdout) == (1, "")
    # Docker 20.10's ps words these itself
    assert proc.stderr == "skiff: " + MISSING_ROW_FIELD.format("*formatter.ContainerContext").replace(
        "template parsing error", "failed to execute template") + "\n"
    proc = lc("ps", "--format", "{{.Names")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == "skiff: failed to parse template: template: :1: unclosed action\n"


def test_inspect_format_runs_the_template(lc: Skiff) -> None:
    detach(lc, "--name", "web", "-l", "app=shop", "busybox", "sleep", "300")
    assert lc.ok("inspect", "-f", "{{json .Config.Cmd}}", "web") == '["sleep","300"]\n'
    assert lc.ok("inspect", "--format", "{{.Name}} {{.State.Status}} {{.Config.Cmd}} {{.Config.Labels}}", "web") == \
        "/web running [sleep 300] map[app:shop]\n"
    assert lc.ok("inspect", "-f", '{{if .State.Running}}up{{end}} {{index .Config.Labels "app"}}', "web") == "up shop\n"
    assert lc.ok("inspect", "-f", "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}{{end}}", "web") == "app=shop\n"
    # a free-form map's missing key is <no value>, as Docker's
    assert lc.ok("inspect", "-f", "{{.Config.Labels.nope}}", "web") == "<no value>\n"
    assert json.loads(lc.ok("inspect", "-f", "json", "web"))[0]["Name"] == "/web"


def test_inspect_format_errors(lc: Skiff) -> None:
    detach(lc, "--name", "web", "busybox", "sleep", "300")
    proc = lc("inspect", "-f", "{{.Nope}}", "web")
    assert (proc.returncode, proc.stdout) == (1, "\n")  # Docker's inspector prints an empty line
    assert proc.stderr == ('template parsing error: template: :1:2: executing "" at <.Nope>: '
                           'map has no entry for key "Nope"\n')
    proc = lc("inspect", "-f", "{{.State.Nope}}", "web")
    assert proc.returncode == 1 and 'at <.State.Nope>: map has no entry for key "Nope"' in proc.stderr
    proc = lc("inspect", "-f", "{{.Foo", "web")  # as Docker: a template that does not parse exits 64
    assert (proc.returncode, proc.stdout) == (64, "")
    assert proc.stderr == "skiff: template parsing error: template: :1: unclosed action\n"
    proc = lc("inspect", "-f", "{{template \"x\"}}", "web")
    assert proc.returncode == 64 and "not supported" in proc.stderr and proc.stdout == ""


def test_images_format(lc: Skiff) -> None:
    image_id = json.loads(lc.ok("image", "inspect", "busybox"))[0]["Id"]
    assert lc.ok("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}") == f"busybox:latest {image_id[7:19]}\n"
    assert lc.ok("images", "--no-trunc", "--format", "{{.ID}} {{.Digest}}") == f"{image_id} <none>\n"
    out = lc.ok("images", "--format", "table {{.Repository}}\\t{{.Size}}").splitlines()
    assert out[0] == "REPOSITORY   SIZE" and out[1].startswith("busybox      ") and out[1].endswith("B")
    assert set(json.loads(lc.ok("images", "--format", "{{json .}}"))) >= {
        "Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository", "SharedSize", "Size", "Tag",
        "UniqueSize", "VirtualSize"}
    proc = lc("images", "--format", "{{.Nope}}")
    assert proc.returncode == 1 and MISSING_ROW_FIELD.format("*formatter.imageContext") in proc.stderr
    assert lc.ok("image", "inspect", "-f", "{{.Os}} {{json .Config.Cmd}}", "busybox") == 'linux ["sh"]\n'


def test_volume_format(lc: Skiff) -> None:
    lc.ok("volume", "create", "--label", "tier=db", "data")
    assert lc.ok("volume", "ls", "--format", '{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}} {{.Label "tier"}}') == \
        "data local local tier=db db\n"
    mountpoint = lc.ok("volume", "ls", "--format", "{{.Mountpoint}}").strip()
    assert mountpoint == json.loads(lc.ok("volume", "inspect", "data"))[0]["Mountpoint"]
    assert lc.ok("volume", "ls", "--format", "table {{.Name}}\\t{{.Driver}}") == \
        "VOLUME NAME   DRIVER\ndata          local\n"
    assert lc.ok("volume", "inspect", "-f", "{{.Name}} {{.Labels}} {{.Labels.nope}}", "data") == \
        "data map[tier:db] <no value>\n"
    proc = lc("volume", "inspect", "-f", "{{.Nope}}", "data")
    assert proc.returncode == 1 and 'map has no entry for key "Nope"' in proc.stderr
    lc.ok("volume", "rm", "data")


def test_network_ls_format(lc: Skiff) -> None:
    names = lc.ok("network", "ls", "--format", "{{.Name}}").split()
    assert {"bridge", "host", "none"} <= set(names)
    assert lc.ok("network", "ls", "--format", "table {{.Name}}\\t{{.Driver}}").splitlines()[0] == "NAME      DRIVER"
    rows = [json.loads(line) for line in lc.ok("network", "ls", "--format", "{{json .}}").splitlines()]
    assert {"ID", "Name", "Driver", "Scope", "IPv6", "Internal", "Labels", "CreatedAt"} <= set(rows[0])
    proc = lc("network", "ls", "--format", "{{.Nope}}")
    assert proc.returncode == 1 and MISSING_ROW_FIELD.format("*network.networkContext") in proc.stderr
    proc = lc("network", "inspect", "-f", "{{.Foo", "none")
    assert proc.returncode == 64 and "unclosed action" in proc.stderr


def test_stats_format(lc: Skiff) -> None:
    cid = detach(lc, "--name", "web", "busybox", "sleep", "300")
    assert lc.ok("stats", "--no-stream", "--format", "{{.Container}} {{.Name}} {{.ID}} {{.PIDs}}", "web") == \
        f"web web {cid[:12]} 1\n"
    out = lc.ok("stats", "--no-stream", "--format", "table {{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}").splitlines()
    assert re.fullmatch(r"NAME +CPU % +MEM USAGE / LIMIT", out[0]) and out[1].startswith("web   ")
    row = json.loads(lc.ok("stats", "--no-stream", "--format", "{{json .}}"))
    assert row["Container"] == cid[:12] and row["NetIO"] and row["BlockIO"] and row["MemPerc"].endswith("%")
    proc = lc("stats", "--no-stream", "--format", "{{.Nope}}")
    assert proc.returncode == 1 and MISSING_ROW_FIELD.format("*container.statsContext") in proc.stderr
