"""Whether a project's `destinations` let an app deploy to a cluster and namespace. Pure.

Argo CD's rule (AppProject.isDestinationMatched): an entry matches when its `server` glob
matches the app's server or its `name` glob matches the app's cluster name, and its
`namespace` glob matches the namespace. A pattern starting with `!` denies: the
destination is permitted when some entry matches and no deny entry excludes it. Globs
are Argo CD's: `*` (any text, `/` included), `?`, `[abc]`, `[!abc]` and `{a,b}`.

An app that names its cluster by name is checked with both its name and the server the
name stands for (Argo CD infers the server); one that names a server URL, with the
server alone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from agent.model import Destination


def destination_permitted(destinations: Iterable[Destination], *, server: str, name: str, namespace: str) -> bool:
    """Whether `destinations` permit deploying to `namespace` of the cluster `server` / `name`."""
    matched_any, denied = False, False
    for item in destinations:
        name_matched = bool(name) and glob_match(item.name, name)
        server_matched = bool(server) and glob_match(item.server, server)
        namespace_matched = glob_match(item.namespace, namespace)
        if (server_matched or name_matched) and namespace_matched:
            matched_any = True
        elif (not name_matched and _denies(item.name)) or (not server_matched and _denies(item.server)) \
                or (not namespace_matched and _denies(item.namespace)):
            denied = True
    return matched_any and not denied


def glob_match(pattern: str, value: str) -> bool:
    """Argo CD's glob with negation: `!pattern` matches what `pattern` does not."""
    if _denies(pattern):
        return not _compiled(pattern[1:]).fullmatch(value)
    return pattern == "*" or bool(_compiled(pattern).fullmatch(value))


def _denies(pattern: str) -> bool:
    return pattern.startswith("!")


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    """A glob as a regular expression: `*`, `?`, `[...]`, `[!...]`, `{a,b}`; everything else literal."""
    out, index, depth = [], 0, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and "]" in pattern[index + 2:]:
            end = pattern.index("]", index + 2)
            out.append(_char_class(pattern[index + 1:end]))
            index = end
        elif char == "{":
            out.append("(?:")
            depth += 1
        elif char == "}" and depth:
            out.append(")")
            depth -= 1
        elif char == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(char))
        index += 1
    if depth:  # unbalanced braces are literal text
        return re.compile(re.escape(pattern), re.DOTALL)
    return re.compile("".join(out), re.DOTALL)


def _char_class(body: str) -> str:
    """`[abc]`, `[a-z]`, `[!abc]` as a regular expression class (ranges kept, `!` negating)."""
    negate = body.startswith("!")
    chars = (body[1:] if negate else body).replace("\\", "\\\\")
    if chars.startswith("^"):
        chars = "\\" + chars
    return "[" + ("^" if negate else "") + chars + "]"
