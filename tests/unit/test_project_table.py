"""ProjectTable: configured projects win over adopted ones; the first parent keeps a name."""

from __future__ import annotations

from agent.controller.projects import ProjectTable
from agent.model import DEFAULT_PROJECT, ProjectSpec


def project(name: str, description: str = "") -> ProjectSpec:
    return ProjectSpec(name=name, description=description)


def test_default_exists_until_declared_and_unknown_names_are_none() -> None:
    table = ProjectTable()
    default = table.get(DEFAULT_PROJECT)
    assert default is not None and default == ProjectSpec.default()
    assert table.get("payments-team") is None
    table.configure([project(DEFAULT_PROJECT, "narrowed")])
    assert table.get(DEFAULT_PROJECT) == project(DEFAULT_PROJECT, "narrowed")


def test_configuration_wins_and_the_first_parent_keeps_a_name() -> None:
    table = ProjectTable([project("payments-team", "toml")])
    heard: list[set[str]] = []
    table.on_change(heard.append)
    assert table.adopt("root", [project("payments-team", "git"), project("tenants", "root")]) == {"tenants"}
    assert table.adopt("other-root", [project("tenants", "other")]) == set()
    assert table.get("payments-team") == project("payments-team", "toml")
    assert table.get("tenants") == project("tenants", "root")
    assert (table.parent_of("tenants"), table.parent_of("payments-team")) == ("root", "")
    assert table.adopt("root", []) == {"tenants"}  # root's project goes; the other parent's shows
    assert table.get("tenants") == project("tenants", "other")
    assert [p.name for p in table.all()] == ["payments-team", "tenants"]
    assert heard == [{"tenants"}, {"tenants"}]


def test_a_reload_reports_the_names_whose_rules_changed() -> None:
    table = ProjectTable([project("a"), project("b")])
    assert table.configure([project("a"), project("b", "new"), project("c")]) == {"b", "c"}
    assert table.configure([project("a")]) == {"b", "c"}


def test_a_repository_outside_the_apps_project_may_not_even_be_asked() -> None:
    from agent.config import AppSpec

    table = ProjectTable([ProjectSpec(name="payments-team", source_repos=("https://github.com/payments-engine/*",))])
    app = AppSpec(name="api", repo="https://github.com/payments-engine/gitops.git", project="payments-team")
    assert table.permits_repo(app)
    assert not table.permits_repo(AppSpec(name="api", repo="https://github.com/someone/else.git",
                                          project="payments-team"))
    assert not table.permits_repo(AppSpec(name="api", repo=app.repo, project="nowhere"))
    assert table.permits_repo(AppSpec(name="api", repo="https://anywhere.example.com/x.git"))  # default
