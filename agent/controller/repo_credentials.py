"""Argo CD's repository Secrets (`argocd.argoproj.io/secret-type: repository` or `repo-creds`) in
`[agent] credentials_namespace`, watched, parsed and handed to the git source.

The git source uses them beside `[[repositories]]` (agent.source.credentials says which wins).
A Secret that cannot be used is logged once, by its namespace, name and key, never its values;
the others keep working. When the set changes, apps whose last reconcile failed try again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from agent.argocd import RepoCredentials, credential_kind, parse_credentials_secret
from agent.argocd.credentials import SECRET_TYPE_LABEL
from agent.errors import ConfigError
from agent.kube import KubeClient
from agent.kube.selected import SelectedWatch
from agent.model import KubeObject
from agent.source import GitSource
from agent.tasks import TaskSet

log = logging.getLogger(__name__)

SELECTOR = f"{SECRET_TYPE_LABEL} in (repository,repo-creds)"
FIRST_READ = 10.0  # start-up waits at most this long for the Secrets before the first reconcile


class RepoCredentialSecrets:
    def __init__(self, kube: KubeClient, namespace: str, *, source: GitSource,
                 on_change: Callable[[], None]) -> None:
        self._source, self._on_change = source, on_change
        self._watch = SelectedWatch(kube, api_version="v1", kind="Secret", namespace=namespace, selector=SELECTOR,
                                    on_change=self._update)
        self._tasks = TaskSet()
        self._problems: frozenset[str] = frozenset()
        self._current: tuple[RepoCredentials, ...] | None = None

    async def start(self, *, within: float = FIRST_READ) -> None:
        """Watch from now on; return once the Secrets were read (or `within` seconds passed)."""
        self._tasks.spawn("repository-secrets", self._watch.run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._watch.synced.wait(), within)
        if not self._watch.synced.is_set():
            log.warning("repository Secrets not read within %.0fs (%s); going on without them for now",
                        within, self._watch.where)

    async def close(self) -> None:
        await self._tasks.shutdown()

    def _update(self, secrets: list[KubeObject]) -> None:
        found: list[RepoCredentials] = []
        problems: set[str] = set()
        for secret in secrets:
            if credential_kind(secret) is None:
                continue
            try:
                credentials = parse_credentials_secret(secret)
            except ConfigError as exc:  # names the Secret and the key, never a value
                problems.add(str(exc))
                continue
            if credentials.project:
                problems.add(f"Secret {credentials.secret}: project {credentials.project!r}: project-scoped "
                             "credentials are not used yet (leave `project` out to use them for every app)")
                continue
            found.append(credentials)
        for problem in sorted(problems - self._problems):  # each once, not at every change
            log.warning("repository Secret not used: %s", problem)
        self._problems = frozenset(problems)
        current = tuple(found)
        if current == self._current:
            return
        first = self._current is None
        self._current = current
        self._source.use_secrets(current)
        log.info("repository credentials from Secrets: %d in use", len(current),
                 extra={"object": ", ".join(cred.secret for cred in current)})
        if not first:
            self._on_change()
