import pytest

from agent.config import DirectorySpec
from agent.errors import RenderError
from agent.render import RenderLimits, load_manifests, select_files
from agent.render.plain import expand_braces

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


TREE = {
    "deploy.yaml": CM,
    "config.json": b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}',
    "notes.txt": b"not a manifest",
    "sub/extra.yml": CM.replace(b"name: a", b"name: extra"),
    "sub/deeper/more.yaml": CM.replace(b"name: a", b"name: more"),
    "sub/kustomization.yaml": b"resources: []\n",
    ".github/workflows/ci.yml": b"on: push\n",
}


def test_plain_directories_are_not_recursive_by_default_as_in_argo_cd() -> None:
    assert select_files(TREE, DirectorySpec()) == ["config.json", "deploy.yaml"]


def test_recurse_reads_subdirectories_but_never_kustomization_files() -> None:
    assert select_files(TREE, DirectorySpec(recurse=True)) == [
        ".github/workflows/ci.yml", "config.json", "deploy.yaml", "sub/deeper/more.yaml", "sub/extra.yml",
    ]


@pytest.mark.parametrize(
    ("include", "exclude", "chosen"),
    [
        (("*.yaml",), (), ["deploy.yaml", "sub/deeper/more.yaml"]),  # `*` crosses `/`, as in Argo CD
        (("{deploy.yaml,config.json}",), (), ["config.json", "deploy.yaml"]),
        (("sub/*",), ("sub/deeper/*",), ["sub/extra.yml"]),
        ((), (".github/*", "*.json"), ["deploy.yaml", "sub/deeper/more.yaml", "sub/extra.yml"]),
        (("./deploy.*",), (), ["deploy.yaml"]),
        (("sub/{extra,deeper/more}.y{a,}ml",), (), ["sub/deeper/more.yaml", "sub/extra.yml"]),
    ],
)
def test_include_and_exclude_globs(include: tuple[str, ...], exclude: tuple[str, ...], chosen: list[str]) -> None:
    assert select_files(TREE, DirectorySpec(recurse=True, include=include, exclude=exclude)) == chosen


def test_brace_expansion() -> None:
    assert expand_braces("a.{yaml,{yml,json}}") == ["a.yaml", "a.yml", "a.json"]
    assert expand_braces("plain") == ["plain"]
    assert expand_braces("x{unbalanced") == ["x{unbalanced"]


def test_sources_are_repository_relative() -> None:
    manifests = load_manifests({"deploy.yaml": CM}, base="apps/web")
    assert manifests[0].origin == "apps/web/deploy.yaml (document 1)"


def test_object_count_is_capped() -> None:
    many = b"---\n".join(CM.replace(b"name: a", f"name: a{i}".encode()) for i in range(5))
    with pytest.raises(RenderError, match="more than 3 objects"):
        load_manifests({"many.yaml": many}, limits=RenderLimits(max_objects=3))
