"""Preconditions of a delete: the uid and resourceVersion that were read."""

from agent.kube import preconditions


def test_preconditions_name_the_object_as_it_was_read() -> None:
    live = {"metadata": {"name": "a", "uid": "5f2c", "resourceVersion": "812"}}
    assert preconditions(live) == {"uid": "5f2c", "resourceVersion": "812"}
    assert preconditions(live, version=False) == {"uid": "5f2c"}
    assert preconditions({"metadata": {"name": "desired, never read"}}) == {}
