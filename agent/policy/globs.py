"""The two glob dialects Argo CD matches projects and RBAC with, as regular expressions. Pure.

    glob_match      gobwas/glob (Argo CD's `util/glob`): `*` any run of characters but the
                    separators, `**` any run at all, `?` one character but a separator,
                    `[abc]` `[a-z]` `[!abc]` classes, `{a,b}` alternatives, `\\` escapes
    kind_match      Go's `filepath.Match` (the resource white- and blacklists): `*` and `?`
                    never match `/`, classes negate with `^`, `\\` escapes
    negatable_match Argo CD's `globMatch`: a leading `!` inverts the match, a lone `*`
                    matches everything

A pattern that does not compile matches nothing, as in Argo CD (which logs and answers
false): a typo in a whitelist must never widen it.
"""

from __future__ import annotations

import functools
import re

_CACHE = 10_000  # compiled patterns kept; the patterns come from configuration, not from requests


class _Unbalanced(ValueError):
    pass


def glob_match(pattern: str, text: str, separators: str = "") -> bool:
    compiled = _gobwas(pattern, separators)
    return compiled is not None and compiled.fullmatch(text) is not None


def kind_match(pattern: str, text: str) -> bool:
    compiled = _filepath(pattern)
    return compiled is not None and compiled.fullmatch(text) is not None


def negatable_match(pattern: str, text: str, *, allow_negation: bool, separators: str = "") -> bool:
    if allow_negation and pattern.startswith("!"):
        return not glob_match(pattern[1:], text, separators)
    if pattern == "*":
        return True
    return glob_match(pattern, text, separators)


def is_deny_pattern(pattern: str) -> bool:
    return pattern.startswith("!")


@functools.lru_cache(maxsize=_CACHE)
def _gobwas(pattern: str, separators: str) -> re.Pattern[str] | None:
    try:
        body, end = _gobwas_body(pattern, 0, separators, inside_braces=False)
    except _Unbalanced:
        return None
    if end != len(pattern):
        return None
    return re.compile(body, re.DOTALL)


def _gobwas_body(pattern: str, start: int, separators: str, *, inside_braces: bool) -> tuple[str, int]:
    """Translate from `start` up to the end, or (inside `{...}`) up to an unnested `,` or `}`."""
    not_separator = f"[^{re.escape(separators)}]" if separators else "."
    out: list[str] = []
    i = start
    while i < len(pattern):
        char = pattern[i]
        if inside_braces and char in ",}":
            return "".join(out), i
        if char == "\\":
            if i + 1 >= len(pattern):
                raise _Unbalanced(pattern)
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif char == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
            else:
                out.append(f"{not_separator}*")
                i += 1
        elif char == "?":
            out.append(not_separator)
            i += 1
        elif char == "[":
            cls, i = _char_class(pattern, i, negation="!")
            out.append(cls)
        elif char == "{":
            alternatives, i = _alternatives(pattern, i, separators)
            out.append(alternatives)
        elif char == "}" or (char == "," and inside_braces):
            raise _Unbalanced(pattern)
        else:
            out.append(re.escape(char))
            i += 1
    if inside_braces:
        raise _Unbalanced(pattern)
    return "".join(out), i


def _alternatives(pattern: str, start: int, separators: str) -> tuple[str, int]:
    """`{a,b,...}` starting at `start`; returns the regex group and the index after `}`."""
    options: list[str] = []
    i = start + 1
    while True:
        body, i = _gobwas_body(pattern, i, separators, inside_braces=True)
        options.append(body)
        if pattern[i] == "}":
            return "(?:" + "|".join(options) + ")", i + 1
        i += 1  # past the comma


def _char_class(pattern: str, start: int, *, negation: str) -> tuple[str, int]:
    """`[...]` starting at `start`: a regex class and the index after `]`."""
    i = start + 1
    negated = i < len(pattern) and pattern[i] == negation
    if negated:
        i += 1
    parts: list[str] = []
    while i < len(pattern) and pattern[i] != "]":
        char = pattern[i]
        if char == "\\":
            if i + 1 >= len(pattern):
                raise _Unbalanced(pattern)
            char = pattern[i + 1]
            i += 1
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            low, high = char, pattern[i + 2]
            if low > high:
                raise _Unbalanced(pattern)
            parts.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 3
        else:
            parts.append(re.escape(char))
            i += 1
    if i >= len(pattern) or not parts:
        raise _Unbalanced(pattern)
    return f"[{'^' if negated else ''}{''.join(parts)}]", i + 1


@functools.lru_cache(maxsize=_CACHE)
def _filepath(pattern: str) -> re.Pattern[str] | None:
    out: list[str] = []
    i = 0
    try:
        while i < len(pattern):
            char = pattern[i]
            if char == "\\":
                if i + 1 >= len(pattern):
                    return None
                out.append(re.escape(pattern[i + 1]))
                i += 2
            elif char == "*":
                out.append("[^/]*")
                i += 1
            elif char == "?":
                out.append("[^/]")
                i += 1
            elif char == "[":
                cls, i = _char_class(pattern, i, negation="^")
                out.append(cls)
            else:
                out.append(re.escape(char))
                i += 1
    except _Unbalanced:
        return None
    return re.compile("".join(out), re.DOTALL)
