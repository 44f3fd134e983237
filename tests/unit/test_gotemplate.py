"""The Go template engine behind --format (skiff.cli.gotemplate), without containers.

Expected outputs and error messages come from Docker's documentation ("Format command and
log output") and from the docker client itself: ``docker context ls --format TEMPLATE``
runs Docker's template code without a daemon, on an object with the fields of ``CONTEXT``
below (its error names the type ``*formatter.clientContextContext``).
"""

from __future__ import annotations

import pytest

from skiff.cli.gotemplate import go_float, go_json, render, render_rows, tabwrite
from skiff.errors import TemplateError

CONTEXT = {"Current": True, "Description": "Current DOCKER_HOST based configuration",
           "DockerEndpoint": "unix:///var/run/docker.sock", "Error": "", "Name": "default"}
CONTEXT_TYPE = "*formatter.clientContextContext"

CONTAINER = {
    "Id": "d79e1adb10ca" + "0" * 52, "Name": "/web", "Args": ["-c", "echo hi"], "Path": "sh",
    "State": {"Status": "running", "Running": True, "Pid": 42, "ExitCode": 0, "Health": None},
    "Config": {"Cmd": ["sh", "-c", "echo hi"], "Entrypoint": None, "Image": "busybox:latest",
               "Labels": {"com.example.version": "1.0", "app": "web"}, "Env": ["PATH=/bin"]},
    "HostConfig": {"Memory": 67108864, "NanoCpus": 1500000000},
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2", "Gateway": "172.17.0.1"},
                                     "front": {"IPAddress": "10.0.0.2", "Gateway": "10.0.0.1"}},
                        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}},
    "Mounts": [{"Type": "volume", "Name": "data", "Source": "/var/lib/skiff/volumes/data/_data"},
               {"Type": "bind", "Source": "/srv", "Destination": "/srv"}],
}


def ctx(template: str) -> str:
    return render(template, CONTEXT, CONTEXT_TYPE)


def error(template: str, obj: object = CONTEXT, type_name: str | None = CONTEXT_TYPE) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        render(template, obj, type_name)
    return info.value


# --- Docker's documented examples (docs: "Format command and log output") ---------------

@pytest.mark.parametrize(("template", "expected"), [
    ('{{join .Args " , "}}', "-c , echo hi"),
    ("{{json .Config.Cmd}}", '["sh","-c","echo hi"]'),
    ("{{lower .State.Status}} {{upper .State.Status}} {{title .State.Status}}", "running RUNNING Running"),
    ('{{split .Config.Image ":"}}', "[busybox latest]"),
    ("{{println .Name}}", "/web\n"),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "172.17.0.2 10.0.0.2 "),
    ('{{index .Config.Labels "com.example.version"}}', "1.0"),
    ("{{.State.Pid}} {{.HostConfig.Memory}}", "42 67108864"),
    ("{{range $p, $conf := .NetworkSettings.Ports}}{{$p}}{{if $conf}} -> {{(index $conf 0).HostPort}}{{end}};{{end}}",
     "443/tcp;80/tcp -> 8080;"),
    ("{{range .Mounts}}{{if eq .Type \"bind\"}}{{.Source}}{{else}}{{.Name}}{{end}} {{end}}", "data /srv "),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{with .State}}{{.Status}}/{{.ExitCode}}{{end}}", "running/0"),
    ("{{.Config.Cmd}} {{.Config.Entrypoint}} {{.State.Health}}", "[sh -c echo hi] <nil> <nil>"),
    ("{{.Config.Labels}}", "map[app:web com.example.version:1.0]"),
    ("{{json .Config.Labels}}", '{"app":"web","com.example.version":"1.0"}'),
    ("{{len .Mounts}} {{len .Config.Labels}} {{len .Name}}", "2 2 4"),
])
def test_dockers_documented_examples(template: str, expected: str) -> None:
    assert render(template, CONTAINER) == expected


# --- Go's built-ins, as the docker client renders them ----------------------------------

@pytest.mark.parametrize(("template", "expected"), [
    ("{{.Name | len}}", "7"),
    ('{{if eq .Name "x" "default"}}yes{{else if .Current}}cur{{end}}', "yes"),
    ('{{if eq .Name "x"}}yes{{else if .Current}}cur{{else}}no{{end}}', "cur"),
    ('{{printf "%s %d" 5 "a"}}', "%!s(int=5) %!d(string=a)"),
    ('{{printf "%d"}}|{{printf "%d" 1 2}}', "%!d(MISSING)|1%!(EXTRA int=2)"),
    ('{{printf "%q %5d|%-4s|%v" "x" 3 "ab" .Name}}', '"x"     3|ab  |default'),
    ('{{printf "%v %v %v" 1000000.0 1.5 true}}', "1e+06 1.5 true"),
    ('{{print 1 2 "a" "b" 3}}|{{println 1 "a"}}|', "1 2ab3|1 a\n|"),
    ('{{title "hello wORLD-foo_bar x.y"}}', "Hello WORLD-Foo_bar X.Y"),
    ('{{json (split "a,b" ",")}} {{split "a,b" ","}}', '["a","b"] [a b]'),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
    ("{{pad .Name 2 3}}|{{truncate .Name 3}}", "  default   |def"),
    ('{{- .Name -}}  x  {{- "y"}}', "defaultxy"),
    ("{{/* c */}}a{{- /* c */ -}} b", "ab"),
    ('{{.Current | not}} {{and 1 0}} {{or 0 "" "z"}} {{not 0}}', "false 0 z true"),
    ('{{ .Name | printf "%q" }}', '"default"'),
    ("{{slice .Name 1 3}}", "ef"),
    ('{{range $i, $v := split "a,b" ","}}{{$i}}={{$v}} {{end}}', "0=a 1=b "),
    ("{{json .}}", '{"Current":true,"Description":"Current DOCKER_HOST based configuration",'
                   '"DockerEndpoint":"unix:///var/run/docker.sock","Error":"","Name":"default"}'),
    ("{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 2 3}} {{ne .Name \"x\"}}", "true true false false true"),
    ('{{range split "" ","}}[{{.}}]{{else}}none{{end}}', "[]"),
    ("{{with .Error}}x{{else}}empty{{end}}", "empty"),
    ('{{$n := .Name}}{{range split "a b" " "}}{{$n}}-{{.}} {{end}}', "default-a default-b "),
    ("{{(.Name)}} {{$.Name}} {{.Error | len}}", "default default 0"),
    ("{{`raw\\t`}} {{\"esc\\t\"}} {{'a'}} {{0x10}}", "raw\\t esc\t 97 16"),
    ("line1\n{{- \"\\n\" -}}\nline2", "line1\nline2"),
])
def test_go_builtins_as_docker_renders_them(template: str, expected: str) -> None:
    assert ctx(template) == expected


# --- errors: Docker's messages; never the template echoed back ---------------------------

@pytest.mark.parametrize(("template", "message"), [
    ("{{len}}", 'template: :1:2: executing "" at <len>: wrong number of args for len: want 1 got 0'),
    ("{{index .Name 9}}", 'template: :1:2: executing "" at <index .Name 9>: error calling index: '
                          "index out of range: 9"),
    ("{{.Name.Foo}}", 'template: :1:7: executing "" at <.Name.Foo>: can\'t evaluate field Foo in type string'),
    ("{{range .Name}}{{.}}{{end}}", 'template: :1:8: executing "" at <.Name>: range can\'t iterate over default'),
    ("{{.Name 1}}", 'template: :1:2: executing "" at <.Name>: wrong number of args for Name: want 0 got 1'),
    ('{{"x" 1}}', 'template: :1:2: executing "" at <"x">: can\'t give argument to non-function "x"'),
    ('{{eq 1 "a"}}', 'template: :1:2: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison'),
    ('{{range $i, $v := "ab"}}{{end}}', 'template: :1:18: executing "" at <"ab">: range can\'t iterate over ab'),
    ("line1\n  {{.Nope}}", 'template: :2:4: executing "" at <.Nope>: can\'t evaluate field Nope in type '
                           "*formatter.clientContextContext"),
])
def test_execution_errors_are_dockers(template: str, message: str) -> None:
    exc = error(template)
    assert exc.message == message and not exc.parse and exc.exit_code == 1
    assert str(exc) == "template parsing error: " + message


@pytest.mark.parametrize(("template", "message"), [
    ("{{nope 1}}", 'template: :1: function "nope" not defined'),
    ("{{if}}", "template: :1: missing value for if"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{if 1}}", "template: :1: unexpected EOF"),
    ("{{.Names", "template: :1: unclosed action"),
    ("a\n{{$x}}", 'template: :2: undefined variable "$x"'),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
])
def test_parse_errors_are_dockers(template: str, message: str) -> None:
    exc = error(template)
    assert exc.message == message and exc.parse


@pytest.mark.parametrize("template", ['{{template "x"}}', '{{define "x"}}{{end}}', "{{html .Name}}",
                                      "{{range .}}{{break}}{{end}}", '{{block "x" .}}{{end}}'])
def test_unsupported_constructs_are_errors(template: str) -> None:
    assert "not supported" in str(error(template))


# --- the rule for skiff's dicts: struct fields error, free-form maps do not --------------

def test_a_missing_field_of_a_document_is_an_error_as_dockers_inspect() -> None:
    for template, key in (("{{.Nope}}", "Nope"), ("{{.Config.Nope}}", "Nope"), ("{{.State.Nope.X}}", "Nope"),
                          ("{{range .NetworkSettings.Networks}}{{.Nope}}{{end}}", "Nope")):
        assert f'map has no entry for key "{key}"' in error(template, CONTAINER, None).message


def test_a_missing_key_of_a_free_form_map_prints_no_value() -> None:
    assert render("{{.Config.Labels.nope}}|{{.NetworkSettings.Networks.nope}}", CONTAINER) == \
        "<no value>|<no value>"
    assert render('[{{index .Config.Labels "nope"}}]', CONTAINER) == "[]"  # Go's zero value of a string map
    assert render("{{.NetworkSettings.Networks.bridge.Gateway}}", CONTAINER) == "172.17.0.1"


def test_a_field_of_nil_is_an_error() -> None:
    assert "nil pointer evaluating interface {}.Status" in error("{{.State.Health.Status}}", CONTAINER, None).message


def test_a_row_method_with_an_argument() -> None:
    row = {"Names": "web", "Label": lambda key: {"a": "1"}.get(key, "")}
    assert render('{{.Label "a"}}|{{.Label "b"}}', row, "*formatter.ContainerContext") == "1|"
    assert render("{{json .}}", row) == '{"Names":"web"}'  # methods with arguments are not marshalled


# --- printing values as Go does --------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [(1000000.0, "1e+06"), (1.5, "1.5"), (123456.0, "123456"),
                                             (123456789.0, "1.23456789e+08"), (0.0001, "0.0001"),
                                             (0.00001, "1e-05"), (3.0, "3"), (0.1 + 0.2, "0.30000000000000004")])
def test_floats_print_as_gos_v(value: float, text: str) -> None:
    assert go_float(value) == text


def test_json_is_gos_without_html_escaping() -> None:
    assert go_json({"a": "<&>", "b": [1, 2.0, None, True], "ü": "é"}) == '{"a":"<&>","b":[1,2,null,true],"ü":"é"}'


def test_struct_like_dicts_print_their_values_in_order() -> None:
    assert render("{{.State}}", CONTAINER) == "{running true 42 0 <nil>}"


# --- table mode and Docker's tabwriter --------------------------------------------------

HEADERS = {"Name": "NAME", "Description": "DESCRIPTION", "DockerEndpoint": "DOCKER ENDPOINT"}


def test_table_prints_the_header_and_aligns_as_docker() -> None:
    out = render_rows("table {{.Name}}\\t{{.Description}}\\t{{.DockerEndpoint}}", [CONTEXT], HEADERS, "", CONTEXT_TYPE)
    assert out == ("NAME      DESCRIPTION                               DOCKER ENDPOINT\n"
                   "default   Current DOCKER_HOST based configuration   unix:///var/run/docker.sock\n")


def test_table_header_uses_dockers_header_functions_and_label() -> None:
    from skiff.cli.listing import _header_context

    rows = [{"Names": "web", "Label": lambda key: "v"}]
    out = render_rows('table {{upper .Names}}\t{{.Label "com.example.my-label"}}', rows,
                      _header_context({"Names": "NAMES"}), "", "*formatter.ContainerContext")
    assert out == "NAMES     my label\nWEB       v\n"


def test_table_alone_is_the_default_table_and_a_header_without_rows() -> None:
    assert render_rows("table", [], {"Name": "NAME", "ID": "ID"}, "table {{.ID}}\t{{.Name}}", "T") == "ID        NAME\n"


def test_without_table_each_row_ends_with_a_newline_and_literal_tabs_become_tabs() -> None:
    rows = [{"A": "x", "B": "y"}, {"A": "z", "B": "w"}]
    assert render_rows("{{.A}}\\t{{.B}}", rows, {}, "", "T") == "x\ty\nz\tw\n"


def test_a_row_error_prints_nothing() -> None:
    with pytest.raises(TemplateError, match="can't evaluate field Nope in type T"):
        render_rows("{{.Nope}}", [{"A": "x"}], {}, "", "T")


def test_tabwriter_column_blocks_are_gos() -> None:
    # Lines without a cell in a column end that column's block: widths restart after them.
    text = "a\tbbbbbbbbbbbbbb\tc\nshort\nxx\ty\tz\n"
    assert tabwrite(text) == "a         bbbbbbbbbbbbbb   c\nshort\nxx        y         z\n"
