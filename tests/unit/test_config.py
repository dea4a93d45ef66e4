from pathlib import Path

import pytest

from agent.config import load_settings, parse_duration, parse_settings
from agent.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("5s", 5.0), ("3m", 180.0), ("1h30m", 5400.0), ("1.5s", 1.5), ("2h", 7200.0)],
)
def test_parse_duration_accepts_go_style_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "s", "5x", "3m5", "-1s", "1m 5s"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_full_config_is_read_into_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[agent]
listen = "0.0.0.0:9090"
insecure_no_auth = true
state_dir = "/tmp/state"
poll_interval = "30s"
poll_jitter = "500ms"
kubeconfig = "/k/config"
max_concurrent_reconciles = 3

[[applications]]
name = "payment-service"
repo = "https://git.example.com/payments/gitops.git"
revision = "main"
path = "apps/payment-service/overlays/production"
namespace = "payments"
""",
    )
    settings = load_settings(path)
    assert settings.agent.listen_host == "0.0.0.0"
    assert settings.agent.listen_port == 9090
    assert settings.agent.poll_interval == 30.0
    assert settings.agent.poll_jitter == 0.5
    assert settings.agent.state_dir == Path("/tmp/state")
    assert settings.agent.max_concurrent_reconciles == 3
    (app,) = settings.applications
    assert (app.name, app.revision, app.namespace) == ("payment-service", "main", "payments")
    assert settings.app("payment-service") is app


def test_defaults_apply_when_keys_are_absent() -> None:
    settings = parse_settings({"applications": [{"name": "a", "repo": "https://x/r.git"}]})
    assert settings.agent.poll_interval == 180.0
    assert settings.applications[0].revision == "HEAD"
    assert settings.applications[0].path == "."
    assert settings.applications[0].namespace == "default"
    assert settings.agent.metrics_families == {"gitops_agent", "argocd"}


@pytest.mark.parametrize("families", [[], ["argocd"], ["gitops_agent"], ["argocd", "gitops_agent"]])
def test_metrics_families_take_any_subset(families: list[str]) -> None:
    settings = parse_settings({"agent": {"metrics_families": families}})
    assert settings.agent.metrics_families == set(families)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[agent]\npoll_intervall = "3m"\n', "agent.toml: agent.poll_intervall: unknown key"),
        ("[agent]\npoll_interval = 5\n", "agent.toml: agent.poll_interval: must be a string, not an integer 5"),
        ('[agent]\npoll_interval = "soon"\n', "agent.toml: agent.poll_interval: 'soon' is not a duration"),
        ('[agent]\nlisten = "8080"\n', "agent.toml: agent.listen: must be HOST:PORT"),
        ("[agent]\nmax_concurrent_reconciles = 0\n", "agent.max_concurrent_reconciles: must be at least 1"),
        ('[agent]\ncredentials_namespace = "Argo CD"\n', "agent.credentials_namespace: must be a namespace name"),
        ("[agent]\nmax_concurrent_reconciles = true\n", "must be an integer, not true or false True"),
        ('[[applications]]\nrepo = "x"\n', "agent.toml: applications[0].name: is required"),
        ('[[applications]]\nname = "a"\n', "agent.toml: applications[0].repo: is required"),
        ('[[applications]]\nname = "A_B"\nrepo = "x"\n', "applications[0].name: 'A_B' must be a DNS label"),
        ('[[applications]]\nname = "a"\nrepo = "x"\npath = "../up"\n', "applications[0].path: '../up' must be"),
        ('[[applications]]\nname = "a"\nrepo = "x"\nprune = true\n', "applications[0].prune: unknown key"),
        ('[[applications]]\nname = "a"\nrepo = "x"\nproject = "Payments Team"\n',
         "applications[0].project: 'Payments Team' must be a project name"),
        (
            '[[applications]]\nname = "a"\nrepo = "x"\n[[applications]]\nname = "a"\nrepo = "y"\n',
            "applications[1].name: 'a' is used by another application",
        ),
        ('[agent]\nmetrics_families = ["argo"]\n',
         "agent.toml: agent.metrics_families: unknown family 'argo' (known: gitops_agent, argocd)"),
        ('[agent]\nmetrics_families = "argocd"\n', "agent.metrics_families: must be an array, not a string"),
        ("[agnet]\n", "agent.toml: agnet: unknown table or key"),
        ('[[applications]]\nname = "a"\nrepo = "x"\n[applications.sync_policy]\noptions = ["Prune=confirm"]\n',
         "applications[0].sync_policy.options: sync option 'Prune=confirm' is not supported: pruning that waits"),
        ('[[applications]]\nname = "a"\nrepo = "x"\n[applications.sync_policy]\noptions = ["Validate=false"]\n',
         "sync option 'Validate=false' only has an effect with 'Replace=true'"),
        ('[[applications]]\nname = "a"\nrepo = "x"\n[applications.sync_policy]\noptions = ["Prune=nope"]\n',
         "applications[0].sync_policy.options: unknown sync option 'Prune=nope'"),
        ('[[applications]]\nname = "a"\nrepo = "x"\n[[applications.ignore_differences]]\nkind = "*"\n'
         'jq_path_expressions = [".spec.x[) | .y"]\n',
         "applications[0].ignore_differences[0].jq_path_expressions[0]: '.spec.x[) | .y' is not a jq path"),
        ("[agent\n", "agent.toml: not valid TOML"),
    ],
)
def test_bad_config_names_file_table_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert message in str(caught.value)


def test_an_app_names_its_project_and_where_it_was_declared(tmp_path: Path) -> None:
    path = write(tmp_path, '[[applications]]\nname = "a"\nrepo = "x"\n[[applications]]\nname = "b"\nrepo = "x"\n'
                           'project = "payments-team"\n')
    first, second = load_settings(path).applications
    assert (first.project, second.project) == ("default", "payments-team")
    assert (first.parent, second.origin) == ("", f"{path}: applications[1]")


def test_where_an_app_was_declared_does_not_make_it_another_app() -> None:
    one = parse_settings({"applications": [{"name": "a", "repo": "x"}]}, file="one.toml").applications[0]
    other = parse_settings({"applications": [{"name": "b", "repo": "y"}, {"name": "a", "repo": "x"}]},
                           file="two.toml").applications[1]
    assert one.origin != other.origin
    assert one == other  # a reload that only moves an app's table is not a change to the app


def test_credentials_namespace_is_read_and_empty_by_default() -> None:
    assert parse_settings({}).agent.credentials_namespace == ""
    assert parse_settings({"agent": {"credentials_namespace": "argocd"}}).agent.credentials_namespace == "argocd"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "absent.toml")


def test_example_config_is_valid() -> None:
    settings = load_settings(Path(__file__).parents[2] / "config.example.toml")
    assert settings.applications
