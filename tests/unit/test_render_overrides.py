"""Image overrides parse as `kustomize edit set image` parses them (the expected values were
produced by kustomize v5.7.1; tests/integration/test_render_kustomize.py checks against the binary),
and overrides become the overlay kustomization documented in docs/rendering.md."""

import pytest

from agent.config import KustomizeSpec
from agent.model import split_image
from agent.render import ImageOverride, overlay_kustomization, parse_image


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx=my/nginx:1.2", ImageOverride("nginx", "my/nginx", "1.2")),
        ("nginx:1.2", ImageOverride("nginx", new_tag="1.2")),
        ("nginx@sha256:abc", ImageOverride("nginx", digest="sha256:abc")),
        ("nginx=my/nginx", ImageOverride("nginx", "my/nginx")),
        ("nginx=my/nginx@sha256:abc", ImageOverride("nginx", "my/nginx", digest="sha256:abc")),
        ("nginx=localhost:5000/nginx:v1", ImageOverride("nginx", "localhost:5000/nginx", "v1")),
        ("localhost:5000/nginx:v1", ImageOverride("localhost:5000/nginx", new_tag="v1")),
        ("nginx=my/nginx:1.2@sha256:abc", ImageOverride("nginx", "my/nginx", "1.2", "sha256:abc")),
        ("nginx:1.2@sha256:abc", ImageOverride("nginx", new_tag="1.2", digest="sha256:abc")),
        ("a=b=c", ImageOverride("a", "b=c")),
        ("nginx:*", ImageOverride("nginx")),
        ("nginx=*:v2", ImageOverride("nginx", new_tag="v2")),
        ("nginx=my/nginx:1.2:3", ImageOverride("nginx", "my/nginx", "1.2:3")),
        ("nginx:v1@sha256:a:b", ImageOverride("nginx", new_tag="v1", digest="sha256:a:b")),
    ],
)
def test_parse_image_matches_kustomize_edit_set_image(text: str, expected: ImageOverride) -> None:
    assert parse_image(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [("nginx", "changes nothing"), ("nginx:v1/x", "changes nothing"), (":v1", "names no image"),
     ("@sha256:abc", "names no image")],
)
def test_parse_image_refuses_what_changes_nothing_or_names_no_image(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_image(text)


def test_split_image_treats_a_colon_before_the_first_slash_as_a_port() -> None:
    assert split_image("registry:5000/team/app") == ("registry:5000/team/app", "", "")
    assert split_image("registry:5000/team/app:v1@sha256:x") == ("registry:5000/team/app", "v1", "sha256:x")


def test_no_overrides_is_just_the_resource() -> None:
    assert overlay_kustomization(KustomizeSpec(), ["../repo/apps/x"]) == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["../repo/apps/x"],
    }


def test_every_override_becomes_its_kustomize_field() -> None:
    spec = KustomizeSpec(
        name_prefix="eu-", name_suffix="-blue", namespace="payments-eu",
        common_labels=(("team", "payments"),), common_annotations=(("owner", "alice"),),
        images=("web=mirror/web:2", "api:1.1", "web:3"), replicas=(("api", 4),),
    )
    assert overlay_kustomization(spec, ["../repo"]) == {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../repo"],
        "namespace": "payments-eu",
        "namePrefix": "eu-",
        "nameSuffix": "-blue",
        "labels": [{"pairs": {"team": "payments"}, "includeSelectors": True}],
        "commonAnnotations": {"owner": "alice"},
        # one entry per image name, the last one wins, sorted by name: as `kustomize edit set image`
        "images": [{"name": "api", "newTag": "1.1"}, {"name": "web", "newTag": "3"}],
        "replicas": [{"name": "api", "count": 4}],
    }


def test_label_without_selector_leaves_selectors_alone() -> None:
    spec = KustomizeSpec(common_labels=(("team", "payments"),), label_without_selector=True)
    assert overlay_kustomization(spec, ["."])["labels"] == [{"pairs": {"team": "payments"}, "includeSelectors": False}]


def test_empty_spec_is_empty() -> None:
    assert KustomizeSpec().empty
    assert not KustomizeSpec(replicas=(("a", 1),)).empty
