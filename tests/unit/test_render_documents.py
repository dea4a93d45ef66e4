import time

import pytest
import yaml

from agent.errors import RenderError
from agent.render import RenderLimits, parse_stream
from agent.render.documents import check_stream, expanded_size
from tests.support import manifests

BILLION_LAUGHS = manifests.BILLION_LAUGHS.encode()


def test_billion_laughs_is_rejected_in_well_under_a_second() -> None:
    started = time.perf_counter()
    with pytest.raises(RenderError, match=r"^bomb\.yaml: document 1 \(line 1\): expands to more than 16777216 "):
        parse_stream("bomb.yaml", BILLION_LAUGHS)
    assert time.perf_counter() - started < 0.1


def test_billion_laughs_after_good_documents_names_its_document() -> None:
    good = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\n"
    with pytest.raises(RenderError, match=r"^x\.yaml: document 2 \(line 5\): expands to more than"):
        parse_stream("x.yaml", good + BILLION_LAUGHS)


def test_a_self_referring_alias_is_rejected() -> None:
    with pytest.raises(RenderError, match="refers to the node that contains it"):
        parse_stream("loop.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: &d {x: *d}\n")


def test_ordinary_anchors_and_merge_keys_still_work() -> None:
    content = b"""apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  template:
    spec:
      containers:
        - &main {name: main, image: app:v1, env: &env [{name: A, value: "1"}]}
        - <<: *main
          name: sidecar
          env: *env
"""
    (manifest,) = parse_stream("d.yaml", content)
    containers = manifest.obj["spec"]["template"]["spec"]["containers"]
    assert containers[1] == {"name": "sidecar", "image": "app:v1", "env": [{"name": "A", "value": "1"}]}


def test_expanded_size_counts_every_alias_use() -> None:
    node = yaml.compose(b"a: &x [bb, cc]\nb: *x\nc: *x\n")
    # mapping 1 + keys a,b,c (1+1 each) + three uses of the list (1 + (1+2) + (1+2) each)
    assert expanded_size(node, 10_000, "t") == 1 + 3 * 2 + 3 * 7


def test_document_size_limit() -> None:
    content = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata: {k: '" + b"x" * 5000 + b"'}\n"
    with pytest.raises(RenderError, match=r"big\.yaml: document 1 \(line 1\): is \d+ bytes long, over the limit"):
        parse_stream("big.yaml", content, RenderLimits(max_document_bytes=4096))
    assert len(parse_stream("big.yaml", content)) == 1


def test_check_stream_refuses_bombs_but_leaves_syntax_to_kustomize() -> None:
    with pytest.raises(RenderError, match="expands to more than"):
        check_stream("b.yaml", BILLION_LAUGHS, RenderLimits())
    check_stream("s.yaml", b"key: [unclosed\n", RenderLimits())


def test_sources_and_document_indexes_are_kept_for_messages() -> None:
    content = b"---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n" \
              b"- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n---\n---\n" \
              b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    manifests = parse_stream("apps/x/all.yaml", content)
    assert [(m.obj["metadata"]["name"], m.index) for m in manifests] == [("a", 0), ("b", 0), ("c", 2)]
    assert manifests[2].origin == "apps/x/all.yaml (document 3)"
