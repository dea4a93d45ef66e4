"""Path patterns of the git generators, as Argo CD matches them: directories with Go's `path.Match`,
files with git's pathspecs (`git ls-files -- PATTERN`, Argo CD's default), and the directory listing
Argo CD's repo server makes from a tree."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

_GLOB_CHARS = frozenset("*?[")


def directories(files: tuple[str, ...]) -> list[str]:
    """Every directory holding a file, as Argo CD lists them: no hidden directory (`.name`) nor
    anything below one, and not the root."""
    found: set[str] = set()
    for file in files:
        parts = file.split("/")[:-1]
        for depth, part in enumerate(parts, start=1):
            if part.startswith("."):
                break
            found.add("/".join(parts[:depth]))
    return sorted(found)


def go_path_match(pattern: str, name: str) -> bool:
    """Go's `path.Match`: `*` and `?` stop at `/`, `[...]` classes (`^` negates), `\\` escapes.
    ValueError for a malformed pattern."""
    regex, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            regex.append("[^/]*")
        elif char == "?":
            regex.append("[^/]")
        elif char == "\\":
            index += 1
            if index == len(pattern):
                raise ValueError(f"{pattern!r} is not a valid pattern (it ends with '\\')")
            regex.append(re.escape(pattern[index]))
        elif char == "[":
            text, index = _character_class(pattern, index)
            regex.append(text)
            continue
        else:
            regex.append(re.escape(char))
        index += 1
    return re.fullmatch("".join(regex), name) is not None


def _character_class(pattern: str, start: int) -> tuple[str, int]:
    index, negate = start + 1, False
    if pattern[index:index + 1] == "^":
        negate, index = True, index + 1
    ranges: list[str] = []
    while True:
        if index >= len(pattern):
            raise ValueError(f"{pattern!r} is not a valid pattern (a '[' is not closed)")
        if pattern[index] == "]" and ranges:
            return f"[{'^' if negate else ''}{''.join(ranges)}]", index + 1
        low, index = _class_char(pattern, index)
        high = low
        if pattern[index:index + 1] == "-":
            high, index = _class_char(pattern, index + 1)
        ranges.append(re.escape(low) if low == high else f"{re.escape(low)}-{re.escape(high)}")


def _class_char(pattern: str, index: int) -> tuple[str, int]:
    if index >= len(pattern) or pattern[index] in "-]":
        raise ValueError(f"{pattern!r} is not a valid pattern (a character class is malformed)")
    if pattern[index] == "\\":
        index += 1
        if index >= len(pattern):
            raise ValueError(f"{pattern!r} is not a valid pattern (it ends with '\\')")
    return pattern[index], index + 1


def git_pathspec_match(pattern: str, path: str) -> bool:
    """`git ls-files -- PATTERN`, which Argo CD's git files generator runs: a pattern without
    wildcards names a file or everything below a directory; `*` and `?` also match `/`."""
    pattern = pattern.removeprefix("./")
    if not _GLOB_CHARS & set(pattern):
        return path == pattern or path.startswith(pattern.rstrip("/") + "/")
    return fnmatchcase(path, pattern)
