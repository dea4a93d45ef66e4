"""ApplicationSet template parameters: `{{param}}` (the default) and `goTemplate: true` field access.

The default syntax is Argo CD's fasttemplate substitution: `{{ name }}` (spaces trimmed) becomes
the parameter's value when it is a string parameter, and is left exactly as written otherwise;
a `{{` without its `}}` is an error, but only in a string that has `{{...}}` on one line.

With `goTemplate: true`, Argo CD runs Go's text/template with Sprig. Only what can be evaluated
here without guessing is accepted: field access (`{{.path.basename}}`, `{{ .name }}`), `index`
with constant indices (`{{index .path.segments 1}}`) and trim markers (`{{- ... -}}`). Any
other construct (pipelines, functions, `if`, `range`, variables, comments) is an error naming it.
A missing key renders `<no value>`, as Go does, or is an error with `missingkey=error`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_TEMPLATED_LINE = re.compile(r"\{\{.*\}\}")
_FIELD_CHAIN = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_INDEX_ARG = re.compile(r"-?\d+|\"[^\"\\]*\"")
_INVALID_NAME_CHARS = re.compile(r"[^-a-z0-9.]")
_MISSING = object()  # a key the parameters do not have

MISSING_KEY_OPTIONS = ("missingkey=default", "missingkey=invalid", "missingkey=zero", "missingkey=error")


class TemplateError(ValueError):
    """A template that cannot be rendered; the message quotes the construct."""


@dataclass(frozen=True)
class Syntax:
    """How an ApplicationSet's templates are written: `goTemplate` and its `missingkey` option."""

    go: bool = False
    missing_key_error: bool = False


def sanitize_name(name: str) -> str:
    """Argo CD's `SanitizeName` (`path.basenameNormalized`): lowercase, `[^-a-z0-9.]` → `-`,
    at most 253 characters, no `-` or `.` at either end."""
    return _INVALID_NAME_CHARS.sub("-", name.lower())[:253].strip("-.")


def go_string(value: Any) -> str:
    """How Go's `%v` prints a value decoded from JSON or YAML (where every number is a float64)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, int | float):
        return _go_float(float(value))
    raise TemplateError(f"cannot print {type(value).__name__} {value!r}")


def _go_float(number: float) -> str:
    """`strconv.FormatFloat(number, 'g', -1, 64)`: the shortest digits; an exponent from 1e+06 up
    and below 1e-04 (so 1000000 prints as 1e+06, as it does in Argo CD)."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    if number == 0:
        return sign + "0"
    decimal = Decimal(repr(abs(number))).normalize()
    digits = "".join(map(str, decimal.as_tuple().digits))
    point = len(digits) + int(decimal.as_tuple().exponent)  # digits before the decimal point
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def render_value(value: Any, params: Mapping[str, Any], syntax: Syntax) -> Any:
    """A copy of `value` with every string in it rendered, map keys included (as Argo CD does)."""
    if isinstance(value, str):
        return render_string(value, params, syntax)
    if isinstance(value, dict):
        return {render_value(key, params, syntax): render_value(item, params, syntax) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, params, syntax) for item in value]
    return value


def render_string(text: str, params: Mapping[str, Any], syntax: Syntax) -> str:
    return _render_go(text, params, syntax) if syntax.go else _render_legacy(text, params)


def _render_legacy(text: str, params: Mapping[str, Any]) -> str:
    if not _TEMPLATED_LINE.search(text):
        return text
    out: list[str] = []
    rest = text
    while (start := rest.find("{{")) >= 0:
        out.append(rest[:start])
        rest = rest[start + 2:]
        end = rest.find("}}")
        if end < 0:
            raise TemplateError(f"{text!r}: '{{{{' without '}}}}'")
        tag = rest[:end]
        value = params.get(tag.strip()) if tag.strip() else None
        out.append(value if isinstance(value, str) else "{{" + tag + "}}")
        rest = rest[end + 2:]
    out.append(rest)
    return "".join(out)


def _render_go(text: str, params: Mapping[str, Any], syntax: Syntax) -> str:
    out: list[str] = []
    rest = text
    while (start := rest.find("{{")) >= 0:
        out.append(rest[:start])
        rest = rest[start + 2:]
        end = rest.find("}}")
        if end < 0:
            raise TemplateError(f"{text!r}: unclosed action '{{{{'")
        action, rest = rest[:end], rest[end + 2:]
        if action[:1] == "-" and action[1:2] in (" ", "\t", "\r", "\n"):
            out[-1] = out[-1].rstrip(" \t\r\n")
            action = action[1:]
        if action[-1:] == "-" and action[-2:-1] in (" ", "\t", "\r", "\n"):
            rest = rest.lstrip(" \t\r\n")
            action = action[:-1]
        out.append(_action(action.strip(), params, syntax, text))
    out.append(rest)
    return "".join(out)


def _action(action: str, params: Mapping[str, Any], syntax: Syntax, text: str) -> str:
    words = action.split()
    if _FIELD_CHAIN.fullmatch(action):
        value = _field(params, action, syntax)
    elif len(words) >= 3 and words[0] == "index" and _FIELD_CHAIN.fullmatch(words[1]) \
            and all(_INDEX_ARG.fullmatch(word) for word in words[2:]):
        value = _field(params, words[1], syntax)
        for word in words[2:]:
            value = _index(value, word, action)
    else:
        raise TemplateError(f"{text!r}: {{{{{action}}}}} is not supported: only field access such as "
                            "{{.path.basename}} and {{index .path.segments 1}} are")
    if value is _MISSING or value is None:
        return "<no value>"
    if isinstance(value, dict | list):
        raise TemplateError(f"{text!r}: {{{{{action}}}}} is a {'map' if isinstance(value, dict) else 'list'}, "
                            "not a value to print")
    return go_string(value)


def _field(params: Mapping[str, Any], chain: str, syntax: Syntax) -> Any:
    value: Any = params
    walked = ""
    for key in chain[1:].split("."):
        if value is _MISSING or value is None:
            raise TemplateError(f"{{{{{chain}}}}}: nil pointer evaluating {walked}.{key}")
        if not isinstance(value, Mapping):
            raise TemplateError(f"{{{{{chain}}}}}: can't evaluate field {key} in {walked or 'the parameters'}")
        if key not in value and syntax.missing_key_error:
            raise TemplateError(f"{{{{{chain}}}}}: map has no entry for key {key!r}")
        value = value.get(key, _MISSING)
        walked += f".{key}"
    return value


def _index(value: Any, word: str, action: str) -> Any:
    if word.startswith('"'):
        if not isinstance(value, Mapping):
            raise TemplateError(f"{{{{{action}}}}}: cannot index {type(value).__name__} with {word}")
        return value.get(word[1:-1], _MISSING)
    if not isinstance(value, list):
        raise TemplateError(f"{{{{{action}}}}}: cannot index {type(value).__name__} with {word}")
    position = int(word)
    if not 0 <= position < len(value):
        raise TemplateError(f"{{{{{action}}}}}: index out of range: {position}")
    return value[position]
