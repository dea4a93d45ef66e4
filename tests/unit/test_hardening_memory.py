"""A render's memory budget: YAML nodes are counted from events before any node is built."""

from __future__ import annotations

import tracemalloc

import pytest

from agent.errors import RenderError
from agent.render import RenderLimits, load_manifests, parse_stream
from agent.render.documents import RenderBudget, check_stream
from tests.support import manifests

HEAD = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\n"


def tiny_scalars(count: int) -> bytes:
    """One document of `count` one-character scalars: the most nodes a byte can buy."""
    return HEAD + b"x: [" + b",".join([b"1"] * count) + b"]\n"


def config_map(name: str, keys: int) -> bytes:
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata:\n"
            + "".join(f"  k{i}: v\n" for i in range(keys))).encode()


def test_a_4mib_file_of_two_million_nodes_is_refused_without_building_them() -> None:
    content = tiny_scalars(2 * 1024 * 1024 - 64)
    assert len(content) <= 4 * 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(RenderError, match=r"^big\.yaml: document 1 \(line 1\): the render parses more than "
                                              r"30000 YAML nodes \(max_render_nodes\)$"):
            parse_stream("big.yaml", content)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024  # building those nodes took more than a gigabyte


def test_the_budget_spans_every_file_of_a_render() -> None:
    limits = RenderLimits(max_render_nodes=1000)
    files = {"a.yaml": config_map("a", 300), "b.yaml": config_map("b", 300)}
    assert len(load_manifests({"a.yaml": files["a.yaml"]}, limits=limits)) == 1
    with pytest.raises(RenderError, match=r"^b\.yaml: document 1 \(line 1\): the render parses more than 1000"):
        load_manifests(files, limits=limits)


def test_one_budget_is_shared_by_the_parts_of_a_render() -> None:
    budget = RenderBudget(RenderLimits(max_render_nodes=700, max_render_bytes=1000))
    parse_stream("one.yaml", config_map("one", 300), budget=budget)
    assert 600 < budget.nodes <= 700
    with pytest.raises(RenderError, match=r"^two\.yaml: .*more than 700 YAML nodes"):
        parse_stream("two.yaml", config_map("two", 100), budget=budget)
    budget.spend_bytes("exported", 900)
    assert budget.bytes_left == 100
    with pytest.raises(RenderError, match=r"^kustomize build: the render holds more than 1000 bytes of files "
                                          r"\(max_render_bytes\)$"):
        budget.spend_bytes("kustomize build", 101)


def test_files_for_kustomize_are_held_to_the_node_budget_too() -> None:
    with pytest.raises(RenderError, match="more than 30000 YAML nodes"):
        check_stream("huge.yaml", tiny_scalars(100_000), RenderLimits())
    check_stream("fine.yaml", config_map("fine", 1000), RenderLimits())


def test_aliases_are_still_measured_expanded() -> None:
    with pytest.raises(RenderError, match="expands to more than"):
        parse_stream("bomb.yaml", manifests.BILLION_LAUGHS.encode())
    anchored = HEAD + b"data: &d {a: '1'}\nagain: *d\n"
    (manifest,) = parse_stream("anchors.yaml", anchored)
    assert manifest.obj["again"] == {"a": "1"}


def test_document_length_and_lines_are_reported_as_before() -> None:
    content = b"---\n" + config_map("small", 2) + b"---\n" + HEAD + b"data: {x: '" + b"y" * 5000 + b"'}\n"
    with pytest.raises(RenderError, match=r"^x\.yaml: document 2 \(line 9\): is \d+ bytes long, over the limit "
                                          r"of 4096$"):
        parse_stream("x.yaml", content, RenderLimits(max_document_bytes=4096))
