"""What users declare, as plain frozen values: sync and retry policy, ignore rules, repository
access, directory and kustomize options, render settings. Config builds them; every layer reads them."""

from __future__ import annotations

from dataclasses import dataclass

PRESERVE = "*"  # `kustomize edit set image` keeps the existing value; over a fresh overlay: no change


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed sync is retried (Argo CD's `retry`); limit 0 means not retried."""

    limit: int = 0
    backoff_duration: float = 5.0
    backoff_factor: float = 2.0
    backoff_max_duration: float = 180.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return float(min(self.backoff_duration * self.backoff_factor ** (attempt - 1), self.backoff_max_duration))


APP_SYNC_OPTIONS = frozenset({
    "CreateNamespace=true", "PruneLast=true", "ApplyOutOfSyncOnly=true", "ServerSideApply=true",
    "SkipDryRunOnMissingResource=true", "Replace=true", "Force=true", "Prune=false", "Validate=false",
    "RespectIgnoreDifferences=true", "FailOnSharedResource=true", "PrunePropagationPolicy=foreground",
    "PrunePropagationPolicy=background", "PrunePropagationPolicy=orphan",
})
# Argo CD's sync options this agent does not implement, and why: refused rather than ignored.
REFUSED_SYNC_OPTIONS = {
    "Prune=confirm": "pruning that waits for a confirmation is not supported; use Prune=false and delete by hand",
    "Delete=confirm": "deletion that waits for a confirmation is not supported; use Delete=false",
    "ServerSideApply=false": "objects are always written with server-side apply (or replaced, with Replace=true)",
    "ClientSideApplyMigration=false": "there is no client-side apply to migrate from",
    "CreateNamespace=false": "leave CreateNamespace=true out instead",
}
_PROPAGATION = {"foreground": "Foreground", "background": "Background", "orphan": "Orphan"}


@dataclass(frozen=True)
class SyncPolicy:
    automated: bool = True
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    options: frozenset[str] = frozenset()
    retry: RetryPolicy = RetryPolicy()
    health_timeout: float = 300.0

    def has(self, option: str) -> bool:
        return option in self.options

    @property
    def prune_propagation(self) -> str:
        """The deletion propagation of a prune (`PrunePropagationPolicy=…`; Argo CD's default: foreground)."""
        for option in self.options:
            key, _, value = option.partition("=")
            if key == "PrunePropagationPolicy":
                return _PROPAGATION[value]
        return "Foreground"


@dataclass(frozen=True)
class IgnoreDifference:
    """Fields left out of the comparison for matching objects (Argo CD's `ignoreDifferences`).

    `group` and `kind` are globs (`*` matches every group or kind); `jq_path_expressions` are
    jq paths, each removed as `del(<expression>)` does.
    """

    kind: str
    group: str = ""
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()
    jq_path_expressions: tuple[str, ...] = ()


# ---------------------------------------------------------------- repository credentials (read from config)


@dataclass(frozen=True)
class RepoSpec:
    """Access to every repository whose URL starts with `url` (Argo CD's repo-creds).

    Holds where secrets live (an environment variable or a file), never a secret itself:
    they are read at each use, so a rotated token or key is picked up without a restart.
    """

    url: str
    username: str = ""
    password_env: str = ""
    password_file: str = ""
    ssh_key_file: str = ""
    known_hosts_file: str = ""
    insecure_ignore_host_key: bool = False
    ca_file: str = ""
    insecure_skip_tls_verify: bool = False
    webhook_secret_env: str = ""
    webhook_secret_file: str = ""


@dataclass(frozen=True)
class DirectorySpec:
    """Which files of a plain directory are manifests (Argo CD's `source.directory`)."""

    recurse: bool = False
    include: tuple[str, ...] = ()  # globs on the path relative to the app's path; empty: every manifest
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class KustomizeSpec:
    """Overrides over what the app's path renders (Argo CD's `source.kustomize`)."""

    name_prefix: str = ""
    name_suffix: str = ""
    namespace: str = ""
    common_labels: tuple[tuple[str, str], ...] = ()
    common_annotations: tuple[tuple[str, str], ...] = ()
    label_without_selector: bool = False
    images: tuple[str, ...] = ()  # as `kustomize edit set image` takes them: `name=new:tag`, `name:tag`, `name@digest`
    replicas: tuple[tuple[str, int], ...] = ()

    @property
    def empty(self) -> bool:
        return self == KustomizeSpec()


@dataclass(frozen=True)
class RenderSettings:
    """The render keys of `[agent]`: which kustomize, how long one render may take, how many at once."""

    kustomize_path: str = ""  # empty: `kustomize` on PATH, else `kubectl kustomize`
    render_timeout: float = 60.0
    max_concurrent_renders: int = 4
    allowed_remote_bases: tuple[str, ...] = ()  # hosts or https/ssh URL prefixes kustomize may fetch from
    # One render's budget: measured so that max_concurrent_renders (4) renders, their kustomize
    # processes included, fit a 512 MiB pod beside the agent (docs/security.md has the numbers).
    max_render_bytes: int = 8 * 1024 * 1024  # files one render holds: exported, and what kustomize printed
    max_render_nodes: int = 30_000  # YAML nodes the agent parses in one render; what it hands kustomize, again


@dataclass(frozen=True)
class ImageOverride:
    """One `images` entry of a kustomization."""

    name: str
    new_name: str = ""
    new_tag: str = ""
    digest: str = ""

    def as_kustomization(self) -> dict[str, str]:
        fields = {"name": self.name, "newName": self.new_name, "newTag": self.new_tag, "digest": self.digest}
        return {key: value for key, value in fields.items() if value}


def split_image(image: str) -> tuple[str, str, str]:
    """Name, tag and digest of an image reference, exactly as kustomize's `image.Split` cuts them.

    A `:` before the first `/` is a registry port, not a tag.
    """
    slash = image.find("/")
    offset = slash if slash > 0 else 0
    search = image[offset:]
    at, colon = search.find("@"), search.find(":")
    if colon < 0 and at < 0:
        return image, "", ""
    if at >= 0 and (colon < 0 or at < colon):
        return image[:offset + at], "", image[offset + at + 1:]
    if at >= 0:
        return image[:offset + colon], image[offset + colon + 1:offset + at], image[offset + at + 1:]
    return image[:offset + colon], image[offset + colon + 1:], ""


def parse_image(text: str) -> ImageOverride:
    """Parse an override as `kustomize edit set image` (which Argo CD runs) parses its argument.

    `name=newName:tag`, `name=newName@digest`, `name=newName:tag@digest`, `name=newName`,
    `name:tag`, `name@digest`, `name:tag@digest`; `*` keeps what the app sets.
    Raises ValueError for anything else.
    """
    key, separator, value = text.partition("=")
    if not separator:
        key, value = "", text
    name, tag, digest = split_image(value)
    if not separator and name == text:
        raise ValueError(f"{text!r} changes nothing: write name=newName:tag, name:tag or name@digest")
    image = ImageOverride(name=key or name, new_name=name if key else "", new_tag=tag, digest=digest)
    if not image.name:
        raise ValueError(f"{text!r} names no image to change")
    return ImageOverride(
        name=image.name,
        new_name="" if image.new_name == PRESERVE else image.new_name,
        new_tag="" if image.new_tag == PRESERVE else image.new_tag,
        digest="" if image.digest == PRESERVE else image.digest,
    )
