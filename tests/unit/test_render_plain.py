import pytest

from agent.errors import RenderError
from agent.render import load_manifests

CM = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n"


def test_multi_document_files_are_loaded_in_path_order_and_empty_documents_skipped() -> None:
    files = {
        "b.yaml": CM.replace(b"name: a", b"name: b") + b"---\n---\n" + CM.replace(b"name: a", b"name: c"),
        "a.yml": CM,
        "README.md": b"# not a manifest",
        "x.json": b'{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}',
    }
    manifests = load_manifests(files)
    assert [(m.source, m.index, m.obj["metadata"]["name"]) for m in manifests] == [
        ("a.yml", 0, "a"),
        ("b.yaml", 0, "b"),
        ("b.yaml", 2, "c"),
        ("x.json", 0, "s"),
    ]
    assert manifests[2].origin == "b.yaml (document 3)"


def test_kind_list_is_flattened() -> None:
    files = {"list.yaml": b"apiVersion: v1\nkind: List\nitems:\n- " + CM.replace(b"\n", b"\n  ").rstrip() + b"\n"}
    (manifest,) = load_manifests(files)
    assert manifest.obj["kind"] == "ConfigMap"


def test_yaml_syntax_error_names_file_and_line() -> None:
    files = {"bad.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n"}
    with pytest.raises(RenderError, match=r"bad.yaml: line \d+ column \d+: invalid YAML"):
        load_manifests(files)


def test_unsafe_tags_are_refused() -> None:
    files = {"evil.yaml": b"!!python/object/apply:os.system ['true']\n"}
    with pytest.raises(RenderError, match=r"evil\.yaml"):
        load_manifests(files)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"- 1\n- 2\n", "document 1 is a list, not an object"),
        (b"kind: ConfigMap\nmetadata: {name: a}\n", "missing apiVersion"),
        (b"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "ConfigMap has no metadata.name"),
    ],
)
def test_objects_without_identity_are_refused(content: bytes, problem: str) -> None:
    with pytest.raises(RenderError, match=problem):
        load_manifests({"x.yaml": content})
