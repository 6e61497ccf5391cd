"""The dispatch settings: one value, its flags built once, its argv round trip, and the fixed-mbs dispatcher."""

import argparse
from dataclasses import fields

import pytest
from lobra.costmodel import parse_plan
from lobra.policies.dispatchers import DispatcherConfig, dispatch_from_args, get_dispatcher
from lobra.policies.dispatchers.config import FLAGS
from lobra.policies.planners import PLANNERS, get_planner
from lobra.policies.registry import PolicyError
from lobra.policies.types import StepItem


def parser(**options) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    DispatcherConfig.add_arguments(p, dispatcher="balanced", **options)
    return p


def test_every_setting_has_a_flag():
    assert set(FLAGS) == {f.name for f in fields(DispatcherConfig)}


@pytest.mark.parametrize(
    "config",
    [
        DispatcherConfig(),
        DispatcherConfig(bucketing="pow2", num_buckets=4, packing=True, time_limit_s=0.25),
        DispatcherConfig(mbs=3, packing=True),
    ],
)
def test_argv_round_trip(config):
    assert DispatcherConfig.from_args(parser().parse_args(config.to_argv())) == config
    # whatever the base: every setting is explicit in the argv
    base = DispatcherConfig(bucketing="pow2", packing=not config.packing, num_buckets=2)
    assert DispatcherConfig.from_args(parser().parse_args(config.to_argv()), base) == config


def test_flags_left_out_keep_the_base():
    base = PLANNERS.get("lobra-plus").dispatcher_config
    assert base.packing
    assert DispatcherConfig.from_args(parser().parse_args([]), base) == base
    no_packing = DispatcherConfig.from_args(parser().parse_args(["--no-packing", "--num-buckets", "8"]), base)
    assert no_packing == DispatcherConfig(packing=False, num_buckets=8)


def test_flag_defaults_can_be_given():
    p = argparse.ArgumentParser()
    DispatcherConfig.add_arguments(p, only=("time_limit_s",), defaults={"time_limit_s": 2.0})
    assert DispatcherConfig.from_args(p.parse_args([])) == DispatcherConfig(time_limit_s=2.0)
    with pytest.raises(SystemExit):
        p.parse_args(["--packing"])  # only the time limit here


@pytest.mark.parametrize(
    "argv,default,expected",
    [
        ([], "balanced", ("balanced", DispatcherConfig(bucketing="pow2"))),
        (["--mbs", "2"], "balanced", ("fixed-mbs", DispatcherConfig(mbs=2))),
        (["--dispatcher", "length", "--packing"], "uniform", ("length", DispatcherConfig(packing=True))),
        ([], "uniform", ("uniform", DispatcherConfig(bucketing="pow2"))),  # the planner's own settings
        (["--packing"], "uniform", ("uniform", DispatcherConfig(bucketing="pow2", packing=True))),
    ],
)
def test_the_dispatcher_a_command_runs(argv, default, expected):
    planned = DispatcherConfig(bucketing="pow2")  # the default dispatcher's settings (a planner's)
    assert dispatch_from_args(parser().parse_args(argv), default, planned) == expected


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"bucketing": "log"}, "bucketing"),
        ({"num_buckets": 0}, "num_buckets must be a positive integer, got 0"),
        ({"packing": "yes"}, "packing must be True or False, got 'yes'"),
        ({"time_limit_s": 0}, "time_limit_s must be positive, got 0"),
        ({"mbs": 0}, "mbs must be a positive integer, got 0"),
        ({"mbs": True}, "mbs must be a positive integer, got True"),
    ],
)
def test_bad_settings_name_the_field_and_the_value(changes, needle):
    with pytest.raises(PolicyError, match=needle):
        DispatcherConfig(**changes)


def test_mbs_goes_with_the_fixed_mbs_dispatcher_only():
    with pytest.raises(PolicyError, match="'balanced' .* takes no mbs"):
        get_dispatcher("balanced", DispatcherConfig(mbs=2))
    with pytest.raises(PolicyError, match="'fixed-mbs' needs mbs"):
        get_dispatcher("fixed-mbs")


def test_fixed_mbs_deals_round_robin_in_micro_batches_of_mbs(cost7b):
    items = [StepItem("a", 1000 + i) for i in range(7)]
    plan = parse_plan("<1,1>x2")
    out = get_dispatcher("fixed-mbs", mbs=2).dispatch(items, plan, cost7b)
    assert [[mb.items for mb in m] for m in out.micro_batches] == [[(0, 2), (4, 6)], [(1, 3), (5,)]]
    assert [mb.seq_len for mb in out.micro_batches[0]] == [1002, 1006] and not out.micro_batches[0][0].packed
    packed = get_dispatcher("fixed-mbs", mbs=2, packing=True).dispatch(items, plan, cost7b)
    assert all(mb.packed for m in packed.micro_batches for mb in m)
    assert packed.micro_batches[0][0].tokens == 1000 + 1002
    out.check(items, cost7b)


def test_fixed_mbs_refuses_a_micro_batch_that_does_not_fit(cost7b):
    limit = cost7b.max_tokens(parse_plan("<1,1>x1").replicas[0])
    items = [StepItem("a", limit)] * 2
    with pytest.raises(PolicyError, match=f"a micro-batch of 2 x {limit} tokens does not fit <1,1>"):
        get_dispatcher("fixed-mbs", mbs=2).dispatch(items, parse_plan("<1,1>x1"), cost7b)


def test_planners_plan_with_the_settings_they_are_given():
    assert get_planner("lobra-plus").dispatcher_config == DispatcherConfig(packing=True)
    padded = get_planner("lobra-plus", dispatcher_config=DispatcherConfig())
    assert padded.dispatcher_config == DispatcherConfig()
    assert PLANNERS.get("lobra-plus").dispatcher_config == DispatcherConfig(packing=True)  # class untouched
