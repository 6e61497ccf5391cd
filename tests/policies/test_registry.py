import pytest
from lobra.policies.dispatchers import DISPATCHERS
from lobra.policies.planners import PLANNERS
from lobra.policies.registry import PolicyError, Registry


def test_known_policies_are_registered():
    assert set(DISPATCHERS.names()) == {"uniform", "length", "balanced", "balanced-ilp", "fixed-mbs"}
    assert set(PLANNERS.names()) == {"task-sequential", "task-fused", "lobra", "lobra-plus", "exhaustive"}


def test_duplicate_and_unknown_names_are_refused():
    reg = Registry("widget")

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A and A.name == "a"
    with pytest.raises(PolicyError, match="already registered"):
        reg.register("a")(type("B", (), {}))
    with pytest.raises(PolicyError, match="unknown widget 'b'; choose from a"):
        reg.get("b")
