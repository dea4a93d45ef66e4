"""Argo CD definitions from Git: `Application`, `AppProject` and `ApplicationSet` objects found in an
app's render are adopted as configuration (an "app of apps") instead of being applied. Pure: no I/O.

    application     Application → AppSpec          project     AppProject → ProjectSpec
    applicationset  ApplicationSet → ApplicationSetSpec; generate() → the apps it generates
    generators      list, git (directories, files), matrix, merge, as typed values
    params          generators → parameter sets; git input as GitTree values the caller reads
    templates       `{{param}}` and `goTemplate: true` field access
    fields          strict reading; InvalidDefinition, Unsupported, Refused
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
from agent.argocd.fields import InvalidDefinition, Refused, Unsupported
from agent.argocd.params import GitTree, TreeRequest
from agent.argocd.project import parse_app_project

__all__ = [
    "ALLOW_EMPTY_ANNOTATION",
    "RESOURCES_FINALIZER",
    "ApplicationSetSpec",
    "ApplicationsSync",
    "Generated",
    "GenerationFailed",
    "GitTree",
    "InvalidDefinition",
    "NeedsTrees",
    "Refused",
    "SetPolicy",
    "TreeRequest",
    "Unsupported",
    "generate",
    "parse_app_project",
    "parse_application",
    "parse_application_set",
]
