from agent.config import AppSpec, DirectorySpec, KustomizeSpec, RenderSettings
from agent.render import Manifest
from agent.render.cache import CacheScope, RenderCache, cache_key, input_ids, options_digest

APP = AppSpec(name="a", repo="https://git.example.com/r.git", path="apps/x")
SETTINGS = RenderSettings()


def manifest(name: str) -> Manifest:
    return Manifest(obj={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}, source="x", index=0)


def test_every_render_option_changes_the_options_digest() -> None:
    base = options_digest(APP, "apps/x", SETTINGS)
    variants = [
        options_digest(APP, "apps/y", SETTINGS),
        options_digest(AppSpec(name="a", repo=APP.repo, kustomize=KustomizeSpec(name_prefix="p-")), "apps/x", SETTINGS),
        options_digest(AppSpec(name="a", repo=APP.repo, kustomize=KustomizeSpec(images=("a:1",))), "apps/x", SETTINGS),
        options_digest(AppSpec(name="a", repo=APP.repo, directory=DirectorySpec(recurse=True)), "apps/x", SETTINGS),
        options_digest(AppSpec(name="a", repo=APP.repo, directory=DirectorySpec(exclude=("*.json",))), "apps/x",
                       SETTINGS),
        options_digest(APP, "apps/x", RenderSettings(kustomize_path="/opt/kustomize")),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_options_digest_ignores_what_does_not_shape_the_output() -> None:
    other = AppSpec(name="b", repo=APP.repo, path="./apps/x/", revision="v2", namespace="elsewhere")
    assert options_digest(other, "apps/x", RenderSettings(render_timeout=5, max_concurrent_renders=1)) == (
        options_digest(APP, "apps/x", SETTINGS))


def test_input_ids_are_canonical() -> None:
    assert input_ids({"b": "2", "a": "1", "c": None}) == (("a", "1"), ("b", "2"), ("c", ""))


def test_cache_key_depends_on_scope_and_every_input_sha() -> None:
    scope = CacheScope("r", "apps/x", "o")
    key = cache_key(scope, (("apps/x", "1"), ("base", "2")))
    assert key == cache_key(scope, (("apps/x", "1"), ("base", "2")))
    assert key != cache_key(scope, (("apps/x", "1"), ("base", "3")))
    assert key != cache_key(CacheScope("r", "apps/x", "p"), (("apps/x", "1"), ("base", "2")))


def test_hit_only_when_every_input_has_the_same_sha() -> None:
    cache, scope = RenderCache(), CacheScope("r", "apps/x", "o")
    cache.put(scope, (("apps/x", "t1"), ("base", "t2")), [manifest("one")])
    assert cache.watched_paths(scope) == ["apps/x", "base"]
    assert cache.get(scope, {"apps/x": "t1", "base": "t2", "unrelated": "zz"}) == (manifest("one"),)
    assert cache.get(scope, {"apps/x": "t1", "base": "changed"}) is None
    assert cache.get(scope, {"apps/x": "t1"}) is None
    assert cache.get(CacheScope("r", "apps/x", "other options"), {"apps/x": "t1", "base": "t2"}) is None


def test_a_scope_keeps_its_few_latest_renders_and_scopes_are_evicted_lru() -> None:
    cache = RenderCache(max_scopes=2, per_scope=2)
    first, second, third = (CacheScope("r", p, "o") for p in ("a", "b", "c"))
    for sha in ("1", "2", "3"):
        cache.put(first, (("a", sha),), [manifest(sha)])
    assert cache.get(first, {"a": "1"}) is None  # the oldest of three went
    assert cache.get(first, {"a": "2"}) == (manifest("2"),)  # a rollback still hits
    cache.put(second, (("b", "1"),), [manifest("b")])
    cache.get(first, {"a": "3"})
    cache.put(third, (("c", "1"),), [manifest("c")])
    assert cache.watched_paths(second) == []  # least recently used scope
    assert cache.watched_paths(first) == ["a"]
    assert len(cache) == 3
