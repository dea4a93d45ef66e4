from agent.multimap import Multimap


def test_a_key_holds_its_values_and_is_forgotten_with_its_last() -> None:
    index: Multimap[str, int] = Multimap()
    index.add("a", 1)
    assert list(index.get("a")) == [1] and "a" in index and len(index) == 1
    index.add("a", 1)  # a value held already
    assert list(index.get("a")) == [1]
    index.add("a", 2)
    index.add("a", 3)
    assert set(index.get("a")) == {1, 2, 3}
    index.discard("a", 2)
    index.discard("a", 9)  # a value never held
    assert set(index.get("a")) == {1, 3}
    index.discard("a", 1)
    assert list(index.get("a")) == [3]
    index.discard("a", 3)
    assert "a" not in index and list(index.get("a")) == [] and len(index) == 0


def test_keys_are_independent_and_a_missing_key_is_empty() -> None:
    index: Multimap[str, str] = Multimap()
    index.add("a", "x")
    index.add("b", "x")
    index.add("b", "y")
    index.discard("c", "x")
    assert sorted(index) == ["a", "b"]
    assert list(index.get("a")) == ["x"] and set(index.get("b")) == {"x", "y"} and index.get("c") == ()
