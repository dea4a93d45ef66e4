"""ApplicationSet template parameters: Argo CD's `{{param}}` substitution and goTemplate field access."""

from __future__ import annotations

from typing import Any

import pytest

from agent.argocd.templates import Syntax, TemplateError, go_string, render_string, render_value, sanitize_name

LEGACY = Syntax()
GO = Syntax(go=True)
GO_STRICT = Syntax(go=True, missing_key_error=True)

# The parameters the git directory generator gives for Argo CD's cluster-addons example.
DIRECTORY = {"path": "applicationset/examples/git-generator-directory/cluster-addons/argo-workflows",
             "path.basename": "argo-workflows", "path.basenameNormalized": "argo-workflows",
             "path[0]": "applicationset", "path[3]": "cluster-addons"}
NESTED = {"path": {"path": "cluster-config/engineering/dev", "basename": "dev",
                   "segments": ["cluster-config", "engineering", "dev"]},
          "cluster": {"name": "engineering-dev", "address": "https://1.2.3.4"}, "replicas": 3, "debug": True}


@pytest.mark.parametrize(("text", "expected"), [
    ("{{path.basename}}", "argo-workflows"),
    ("{{ path.basename }}-addon", "argo-workflows-addon"),  # spaces inside the braces are trimmed
    ("{{path[3]}}/{{path[0]}}", "cluster-addons/applicationset"),
    ("{{unknown}}", "{{unknown}}"),  # an unknown parameter is left exactly as written
    ("{{ unknown }}", "{{ unknown }}"),
    ("{{}}", "{{}}"),
    ("no parameters", "no parameters"),
    ("{{\npath}}", "{{\npath}}"),  # no '{{...}}' on one line: not a template at all
])
def test_legacy_substitution_matches_fasttemplate(text: str, expected: str) -> None:
    assert render_string(text, DIRECTORY, LEGACY) == expected


def test_legacy_substitution_only_takes_string_parameters() -> None:
    assert render_string("{{n}}", {"n": 3}, LEGACY) == "{{n}}"


def test_legacy_unclosed_braces_are_an_error() -> None:
    with pytest.raises(TemplateError, match="without"):
        render_string("{{path}} and {{path", DIRECTORY, LEGACY)


@pytest.mark.parametrize(("text", "expected"), [
    ("{{.path.basename}}", "dev"),
    ("{{ .cluster.name }}-guestbook", "engineering-dev-guestbook"),
    ("{{index .path.segments 1}}", "engineering"),
    ('{{index .cluster "address"}}', "https://1.2.3.4"),
    ("{{.replicas}}/{{.debug}}", "3/true"),
    ("a  {{- .path.basename -}}  b", "adevb"),
    ("{{.missing}}", "<no value>"),  # Go's text/template, missingkey=default
])
def test_go_template_field_access(text: str, expected: str) -> None:
    assert render_string(text, NESTED, GO) == expected


def test_missingkey_error_makes_a_missing_key_an_error() -> None:
    with pytest.raises(TemplateError, match="no entry for key 'missing'"):
        render_string("{{.missing}}", NESTED, GO_STRICT)


@pytest.mark.parametrize("text", [
    "{{.path.basename | normalize}}",
    '{{ "guestbook" | normalize }}',
    "{{if .debug}}x{{end}}",
    "{{range .path.segments}}{{.}}{{end}}",
    "{{$x := .path}}",
    "{{/* a comment */}}",
    "{{.}}",
    "{{index .path.segments .replicas}}",
    "{{toJson .cluster}}",
])
def test_other_go_constructs_are_refused_naming_them(text: str) -> None:
    first_action = text[2:text.index("}}")].strip()
    with pytest.raises(TemplateError) as caught:
        render_string(text, NESTED, GO)
    assert f"{{{{{first_action}}}}} is not supported" in str(caught.value)


@pytest.mark.parametrize(("text", "problem"), [
    ("{{.path.segments}}", "is a list"),
    ("{{.cluster}}", "is a map"),
    ("{{index .path.segments 7}}", "index out of range: 7"),
    ("{{.path.basename.x}}", "can't evaluate field x"),
    ("{{.path", "unclosed action"),
])
def test_go_templates_that_cannot_print_are_errors(text: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        render_string(text, NESTED, GO)


def test_every_string_of_a_template_is_rendered_keys_included() -> None:
    template = {"metadata": {"name": "{{path.basename}}", "labels": {"{{path[0]}}": "yes"}},
                "spec": {"syncPolicy": {"automated": {"prune": True}}, "list": ["{{path[3]}}", 2]}}
    assert render_value(template, DIRECTORY, LEGACY) == {
        "metadata": {"name": "argo-workflows", "labels": {"applicationset": "yes"}},
        "spec": {"syncPolicy": {"automated": {"prune": True}}, "list": ["cluster-addons", 2]}}


@pytest.mark.parametrize(("value", "printed"), [
    (123456, "123456"), (1000000, "1e+06"), (1234567, "1.234567e+06"), (0.5, "0.5"), (0.0001, "0.0001"),
    (0.00001, "1e-05"), (2.5, "2.5"), (-3, "-3"), (0, "0"), (True, "true"), (None, "<nil>"), ("x", "x"),
])
def test_values_print_as_go_prints_json_numbers(value: Any, printed: str) -> None:
    assert go_string(value) == printed


@pytest.mark.parametrize(("name", "normalized"), [
    ("directory_2", "directory-2"), ("My.App", "my.app"), ("-x_", "x"), ("a" * 300, "a" * 253),
])
def test_sanitize_name_as_argo_cd_normalizes(name: str, normalized: str) -> None:
    assert sanitize_name(name) == normalized
