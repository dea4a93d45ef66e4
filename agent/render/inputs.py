"""What a kustomize render reads: the app's directory and every local directory its
kustomizations reach, transitively (`resources`, `bases`, `components`, `generators`,
`transformers`, `validators`).

Only those directories are exported and written for kustomize, and the render cache
keys on their tree SHAs. That is sound because kustomize's default load restrictor
refuses *files* outside a kustomization's own directory: everything a build can read
lies inside one of these directories. A reference that would leave the repository is
refused here, before kustomize could read the host's files. A remote reference (a
URL in any field kustomize loads from, in every kustomization followed and in every
generator, transformer or validator configuration) is checked against
`allowed_remote_bases` (see agent.render.remote); an allowed one is left to kustomize.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.errors import RenderError
from agent.model import Revision
from agent.render.documents import RenderBudget, RenderLimits, parse_documents
from agent.render.kustomize import kustomization_file
from agent.render.remote import RemoteBase, loader_strings, refusal, remote_target, shown
from agent.source.export import normalize_path

REFERENCE_FIELDS = ("resources", "bases", "components", "generators", "transformers", "validators")
CONFIGURATION_FIELDS = ("generators", "transformers", "validators")  # a file there is a plugin's configuration
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*::|[a-z][a-z0-9+.-]*://|git@)|[?&](?:ref|version|submodules|timeout)=",
                     re.IGNORECASE)


class PathId(Protocol):
    """What a path names at a revision (agent.source's TreeEntry)."""

    @property
    def sha(self) -> str: ...

    @property
    def is_dir(self) -> bool: ...


class ExportedFiles(Protocol):
    @property
    def files(self) -> Mapping[str, bytes]: ...


class TreeSource(Protocol):
    """What rendering needs from git (GitSource provides it)."""

    async def export(self, url: str, revision: Revision, path: str, *,
                     max_bytes: int | None = None) -> ExportedFiles: ...

    async def tree_ids(self, url: str, revision: Revision, paths: Sequence[str]) -> Mapping[str, PathId | None]: ...

    async def symlink_targets(self, url: str, revision: Revision, paths: Sequence[str]) -> tuple[str, ...]: ...


def kustomization_references(doc: Any) -> list[tuple[str, str]]:
    """(field, entry) for every entry of a kustomization that may name another directory."""
    if not isinstance(doc, dict):
        return []
    found: list[tuple[str, str]] = []
    for name in REFERENCE_FIELDS:
        entries = doc.get(name)
        if isinstance(entries, list):
            found.extend((name, entry) for entry in entries if isinstance(entry, str) and "\n" not in entry)
    return found


def is_remote(reference: str) -> bool:
    """A URL kustomize fetches itself (`https://…`, `git@…`, `…?ref=v1`)."""
    return bool(_REMOTE.search(reference))


def looks_like_host_path(reference: str) -> bool:
    """`github.com/org/repo/path`: kustomize tries such a missing local path as a remote."""
    first, _, rest = reference.partition("/")
    return bool(rest) and "." in first and first not in (".", "..")


def resolve(directory: str, reference: str) -> str | None:
    """A reference made repository-relative; None when it leaves the repository."""
    return normalize_path(posixpath.join(directory, reference))


@dataclass
class KustomizeInputs:
    """Exported directories (repository path → files relative to it) and remote references."""

    roots: dict[str, Mapping[str, bytes]] = field(default_factory=dict)
    remote: set[str] = field(default_factory=set)

    def covering(self, path: str) -> tuple[str, str] | None:
        """(root, path relative to it) of an exported directory holding `path`."""
        for root in self.roots:
            if path == root:
                return root, ""
            if root == "" or path.startswith(root + "/"):
                return root, path[len(root) + 1:] if root else path
        return None

    def kind(self, path: str) -> str | None:
        """'dir', 'file' or 'missing' inside an exported directory; None when none holds it."""
        found = self.covering(path)
        if found is None:
            return None
        root, rel = found
        files = self.roots[root]
        if not rel:
            return "dir"
        if rel in files:
            return "file"
        prefix = rel + "/"
        return "dir" if any(name.startswith(prefix) for name in files) else "missing"

    def files_of(self, directory: str) -> dict[str, bytes]:
        found = self.covering(directory)
        if found is None:
            return {}
        root, rel = found
        if not rel:
            return dict(self.roots[root])
        prefix = rel + "/"
        return {name[len(prefix):]: data for name, data in self.roots[root].items() if name.startswith(prefix)}

    def outermost(self) -> dict[str, Mapping[str, bytes]]:
        """The exported directories that no other one contains (what to write out)."""
        return {root: files for root, files in self.roots.items()
                if not any(other != root and (other == "" or root.startswith(other + "/")) for other in self.roots)}


async def collect_inputs(source: TreeSource, url: str, revision: Revision, app_dir: str,
                         app_files: Mapping[str, bytes], limits: RenderLimits, *,
                         allowed_remote: Sequence[RemoteBase] = (),
                         budget: RenderBudget | None = None) -> KustomizeInputs:
    """Follow the app's kustomization and everything it references, exporting each directory once.

    A remote reference that `allowed_remote` does not admit is a RenderError naming it. What
    each further directory holds is spent from `budget` (the render's; the app's own directory
    is the caller's to count), as are the nodes of the kustomizations read.
    """
    budget = budget or RenderBudget(limits)
    inputs = KustomizeInputs(roots={app_dir: app_files})
    queue, seen = [app_dir], {app_dir}
    while queue:
        directory = queue.pop(0)
        files = inputs.files_of(directory)
        name = kustomization_file(files)
        if name is None:
            continue  # kustomize says what is wrong with a directory that is not a kustomization
        where = posixpath.join(directory, name)
        documents = parse_documents(where, files[name], limits, budget)
        kustomization = documents[0] if documents else None
        check_remote(where, kustomization, allowed_remote)
        for field_name, reference in kustomization_references(kustomization):
            exported = len(inputs.roots)
            target = await _follow(source, url, revision, inputs, where, field_name, reference, allowed_remote,
                                   budget.bytes_left)
            if target is not None and len(inputs.roots) > exported:
                budget.spend_bytes(target, sum(len(data) for data in inputs.roots[target].values()))
            if target is not None and target not in seen:
                seen.add(target)
                queue.append(target)
            elif field_name in CONFIGURATION_FIELDS and inputs.kind(resolve(directory, reference) or "") == "file":
                configuration = resolve(directory, reference) or ""
                for document in parse_documents(configuration, _content(inputs, configuration), limits, budget):
                    check_remote(configuration, document, allowed_remote)
    return inputs


def check_remote(where: str, document: Any, allowed: Sequence[RemoteBase]) -> None:
    """Refuse every URL in the document's loaded fields that no allowed remote base admits."""
    for key, value in loader_strings(document):
        target = remote_target(value, key=key)
        if target is not None:
            _refuse_unless_allowed(where, key, target, allowed)


def _refuse_unless_allowed(where: str, field_name: str, reference: str, allowed: Sequence[RemoteBase]) -> None:
    problem = refusal(reference, allowed)
    if problem is not None:
        raise RenderError(f"{where}: {field_name}: remote reference {shown(reference)!r} refused: {problem}")


def _content(inputs: KustomizeInputs, path: str) -> bytes:
    found = inputs.covering(path)
    return inputs.roots[found[0]].get(found[1], b"") if found else b""


async def _follow(source: TreeSource, url: str, revision: Revision, inputs: KustomizeInputs, where: str,
                  field_name: str, reference: str, allowed: Sequence[RemoteBase], max_bytes: int) -> str | None:
    """The directory a reference names (exported on the way), or None for a file or a remote base."""
    if is_remote(reference):
        _refuse_unless_allowed(where, field_name, reference, allowed)
        inputs.remote.add(reference)
        return None
    target = resolve(posixpath.dirname(where), reference)
    if target is None:
        raise RenderError(f"{where}: {field_name}: {reference!r} leaves the repository")
    kind = inputs.kind(target)
    if kind is None:
        entry = (await source.tree_ids(url, revision, [target])).get(target)
        if entry is not None and entry.is_dir:
            inputs.roots[target] = (await source.export(url, revision, target, max_bytes=max_bytes)).files
            return target
        kind = "missing" if entry is None else "file"
    if kind == "missing":
        if looks_like_host_path(reference):
            _refuse_unless_allowed(where, field_name, reference, allowed)
            inputs.remote.add(reference)
            return None
        raise RenderError(f"{where}: {field_name}: {reference!r} does not exist ({target or '.'} is not in the "
                          f"repository at {revision.sha[:12]})")
    if kind == "file" and not _inside(target, posixpath.dirname(where)):
        raise RenderError(f"{where}: {field_name}: {reference!r} is a file outside the kustomization's directory "
                          "(kustomize loads files only from inside it; make the other directory a base)")
    return target if kind == "dir" else None


def _inside(path: str, directory: str) -> bool:
    return not directory or path == directory or path.startswith(directory + "/")
