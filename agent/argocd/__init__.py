"""Argo CD definitions from Git: `Application` and `AppProject` objects found in an app's render
are adopted as configuration (an "app of apps") instead of being applied. Pure: no I/O.

    application     Application → AppSpec          project     AppProject → ProjectSpec
    fields          strict reading; InvalidDefinition, Unsupported, Refused
"""

from agent.argocd.application import RESOURCES_FINALIZER, parse_application
from agent.argocd.fields import InvalidDefinition, Refused, Unsupported
from agent.argocd.project import parse_app_project

__all__ = [
    "RESOURCES_FINALIZER",
    "InvalidDefinition",
    "Refused",
    "Unsupported",
    "parse_app_project",
    "parse_application",
]
