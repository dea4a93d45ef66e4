"""Argo CD definitions from Git: `Application`, `AppProject` and `ApplicationSet` objects found in an
app's render are adopted as configuration (an "app of apps") instead of being applied. Pure: no I/O.

    definitions     a parent's render → Definitions (apps, projects, sets, refusals, errors)
    application     Application → AppSpec (syncpolicy, durations: its syncPolicy and ignoreDifferences)
    project         AppProject → ProjectSpec
    applicationset  ApplicationSet → ApplicationSetSpec; generate() → the apps it generates
    generators      list, git (directories, files), matrix, merge, as typed values
    params          generators → parameter sets; git input as GitTree values the caller reads
    patterns        the git generators' path matching; yamlvalues: their JSON/YAML files
    templates       `{{param}}` and `goTemplate: true` field access
    lifecycle       what to create, update, keep and delete; never delete on doubt
    credentials     `repository` / `repo-creds` Secrets → RepoCredentials
    fields          strict reading; InvalidDefinition, Unsupported, Refused

How the controller uses it: parse_definitions() on a parent's render (after a successful render
only); claim_names() against the apps declared elsewhere; check_projects() against every project;
next_adopted() for its Application files; for each set, generate() (reading what NeedsTrees asks
for) then next_generated(); match_credentials() when fetching.
"""

from agent.argocd.application import RESOURCES_FINALIZER, parse_application
from agent.argocd.applicationset import (
    ALLOW_EMPTY_ANNOTATION,
    ApplicationSetSpec,
    ApplicationsSync,
    Generated,
    GenerationFailed,
    NeedsTrees,
    SetPolicy,
    generate,
    parse_application_set,
)
from agent.argocd.credentials import (
    CredentialKind,
    RepoCredentials,
    credential_kind,
    match_credentials,
    parse_credentials_secret,
)
from agent.argocd.definitions import Definitions, is_definition, parse_definitions, split_definitions
from agent.argocd.fields import InvalidDefinition, Refused, Unsupported
from agent.argocd.lifecycle import (
    Change,
    Removal,
    check_projects,
    claim_names,
    next_adopted,
    next_generated,
    next_removed_set,
)
from agent.argocd.params import GitTree, TreeRequest
from agent.argocd.project import parse_app_project

__all__ = [
    "ALLOW_EMPTY_ANNOTATION",
    "RESOURCES_FINALIZER",
    "ApplicationSetSpec",
    "ApplicationsSync",
    "Change",
    "CredentialKind",
    "Definitions",
    "Generated",
    "GenerationFailed",
    "GitTree",
    "InvalidDefinition",
    "NeedsTrees",
    "Refused",
    "Removal",
    "RepoCredentials",
    "SetPolicy",
    "TreeRequest",
    "Unsupported",
    "check_projects",
    "claim_names",
    "credential_kind",
    "generate",
    "is_definition",
    "match_credentials",
    "next_adopted",
    "next_generated",
    "next_removed_set",
    "parse_app_project",
    "parse_application",
    "parse_application_set",
    "parse_credentials_secret",
    "parse_definitions",
    "split_definitions",
]
