"""The render cache against real git commits: only a change to an app's inputs renders it again.

Every kustomize run goes through a wrapper script that logs it, so "nothing was
rendered" is counted at the process level, not only by the renderer's own counters.
"""

from __future__ import annotations

import stat
from pathlib import Path

from agent.config import DirectorySpec, KustomizeSpec
from tests.integration.render_support import RenderRig, kustomize_binary, make_rig, platform_files
from tests.support.gitserver import GitServer, WorkTree

PAYMENT_PROD = "apps/payment-service/overlays/production"
PAYMENT_DEV = "apps/payment-service/overlays/dev"


def counting_kustomize(tmp_path: Path) -> tuple[Path, Path]:
    """A kustomize that appends its arguments to a log, then runs the real one."""
    log = tmp_path / "kustomize-invocations.log"
    script = tmp_path / "kustomize-counting"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec "{kustomize_binary()}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def invocations(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def counting_rig(repo: WorkTree, git_server: GitServer, tmp_path: Path) -> tuple[RenderRig, Path]:
    script, log = counting_kustomize(tmp_path)
    return make_rig(repo, git_server, tmp_path, kustomize_path=str(script)), log


async def test_a_commit_touching_only_another_app_renders_nothing_again(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    rig, log = counting_rig(repo, git_server, tmp_path)
    app = rig.app(PAYMENT_PROD)
    first = repo.commit_and_push(platform_files(), "payments platform")
    rendered = await rig.renderer.render(app, await rig.revision(first))
    assert invocations(log) == 1

    second = repo.commit_and_push(
        {"apps/ledger-service/base/ledger.env": "LEDGER_DB_HOST=ledger-db-2\nLEDGER_DB_PORT=5432\n",
         "apps/fraud-detection/manifests/new.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: n}\n",
         "docs/runbook.md": "# on call\n"},
        "ledger: move the database",
    )
    assert second != first
    again = await rig.renderer.render(app, await rig.revision(second))

    assert invocations(log) == 1, "the payment-service render must come from the cache"
    assert rig.renderer.stats.cache_hits == 1 and rig.renderer.stats.renders == 1
    assert again == rendered
    # The other app did change, and does render again.
    await rig.renderer.render(rig.app("apps/ledger-service/overlays/dev"), await rig.revision(second))
    assert invocations(log) == 2


async def test_a_change_to_a_base_or_component_renders_again_only_where_it_is_used(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    rig, log = counting_rig(repo, git_server, tmp_path)
    prod, dev = rig.app(PAYMENT_PROD), rig.app(PAYMENT_DEV)
    first = repo.commit_and_push(platform_files(), "payments platform")
    await rig.render(prod, first)
    await rig.render(dev, first)
    assert invocations(log) == 2

    component = platform_files()["components/monitoring/kustomization.yaml"].replace('"9090"', '"9191"')
    second = repo.commit_and_push({"components/monitoring/kustomization.yaml": component}, "scrape port 9191")
    prod_objects = await rig.render(prod, second)
    await rig.render(dev, second)  # dev does not use the monitoring component
    assert invocations(log) == 3
    deployment = next(o for o in prod_objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9191"

    base = platform_files()["apps/payment-service/base/kustomization.yaml"].replace("CURRENCY=EUR", "CURRENCY=CHF")
    third = repo.commit_and_push({"apps/payment-service/base/kustomization.yaml": base}, "francs")
    dev_objects = await rig.render(dev, third)
    await rig.render(prod, third)
    assert invocations(log) == 5
    config = next(o for o in dev_objects if o["kind"] == "ConfigMap")
    assert config["data"]["CURRENCY"] == "CHF"


async def test_changed_overrides_render_again_at_the_same_commit(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    rig, log = counting_rig(repo, git_server, tmp_path)
    sha = repo.commit_and_push(platform_files(), "payments platform")
    await rig.render(rig.app(PAYMENT_PROD), sha)
    await rig.render(rig.app(PAYMENT_PROD, kustomize=KustomizeSpec(name_prefix="eu-")), sha)
    await rig.render(rig.app(PAYMENT_PROD, kustomize=KustomizeSpec(name_prefix="eu-")), sha)
    await rig.render(rig.app(PAYMENT_PROD, kustomize=KustomizeSpec(name_prefix="us-")), sha)
    await rig.render(rig.app(PAYMENT_PROD), sha)
    assert invocations(log) == 3
    assert rig.renderer.stats.cache_hits == 2


async def test_a_changed_symlink_target_renders_again(repo: WorkTree, git_server: GitServer, tmp_path: Path) -> None:
    """A tree SHA holds a link's path, not its target's content: the target is an input of its own."""
    rig, _ = counting_rig(repo, git_server, tmp_path)
    repo.write({"shared/limits.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: limits}\ndata: {max: '1'}\n",
                "app/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n"})
    repo.symlink("app/limits.yaml", "../shared/limits.yaml")
    first = repo.commit("shared limits")
    repo.push()
    app = rig.app("app")
    assert [o["metadata"]["name"] for o in await rig.render(app, first)] == ["app", "limits"]

    second = repo.commit_and_push(
        {"shared/limits.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: limits}\ndata: {max: '2'}\n"},
        "raise the limit",
    )
    objects = await rig.render(app, second)
    assert objects[1]["data"] == {"max": "2"}
    assert rig.renderer.stats.renders == 2 and rig.renderer.stats.cache_hits == 0


async def test_plain_directory_render_is_cached_too(repo: WorkTree, git_server: GitServer, tmp_path: Path) -> None:
    rig, log = counting_rig(repo, git_server, tmp_path)
    first = repo.commit_and_push(platform_files(), "payments platform")
    app = rig.app("apps/fraud-detection/manifests", directory=DirectorySpec(recurse=True))
    await rig.render(app, first)
    second = repo.commit_and_push({"apps/ledger-service/base/ledger.env": "LEDGER_BATCH_SIZE=1\n"}, "ledger")
    await rig.render(app, second)
    assert rig.renderer.stats.renders == 1 and rig.renderer.stats.cache_hits == 1
    assert invocations(log) == 0
