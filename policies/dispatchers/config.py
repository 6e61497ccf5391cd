"""DispatcherConfig: the dispatch settings, one value from the command line to the planner, simulator and executor.

A plan is only as good as the dispatch it was chosen for: lobra-plus scores plans by dispatching with packing, so
the simulator and the executor must dispatch with packing too. The planner carries its settings into its
PlanResult and the simulator's Policy; the executor's config carries them to every rank in its argv (`to_argv`),
and every rank builds the same dispatcher from them.

The command-line flags are built here once (`add_arguments`, `from_args`) for every subcommand that takes them.
A flag left out keeps the base settings it is applied to (a planner's own, else the defaults below), so defaults
never change what a command did before.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from lobra.policies.bucketing import DEFAULT_NUM_BUCKETS
from lobra.policies.registry import PolicyError
from lobra.policies.solver import DEFAULT_NODE_LIMIT, DEFAULT_TIME_LIMIT_S

BUCKETINGS = ("dp", "pow2")
# What happens to a sequence longer than the plan's largest replica holds (each task's overflow already applied at
# its max_len): by default an error, since cutting it silently would compare plans at unequal work.
BEYOND_CAPACITY = ("error", "truncate", "drop")
FIXED_MBS = "fixed-mbs"  # the dispatcher that `mbs` selects


@dataclass(frozen=True)
class DispatcherConfig:
    bucketing: str = "dp"  # "dp": optimal buckets per step; "pow2": fixed 256..16K ladder (baselines)
    num_buckets: int = DEFAULT_NUM_BUCKETS
    packing: bool = False  # pack real lengths into micro-batches instead of padding
    time_limit_s: float = DEFAULT_TIME_LIMIT_S  # integer programmes: a safety net (policies/solver.py)
    node_limit: int = DEFAULT_NODE_LIMIT  # integer programmes: the limit that decides
    mbs: int | None = None  # sequences per micro-batch: only the fixed-mbs dispatcher takes it (what-if mode)
    beyond_capacity: str = "error"  # one of BEYOND_CAPACITY

    def __post_init__(self) -> None:
        if self.bucketing not in BUCKETINGS:
            raise PolicyError(f"bucketing must be one of {BUCKETINGS}, got {self.bucketing!r}")
        if not _positive_int(self.num_buckets):
            raise PolicyError(f"num_buckets must be a positive integer, got {self.num_buckets!r}")
        if not isinstance(self.packing, bool):
            raise PolicyError(f"packing must be True or False, got {self.packing!r}")
        if isinstance(self.time_limit_s, bool) or not self.time_limit_s > 0:
            raise PolicyError(f"time_limit_s must be positive, got {self.time_limit_s!r}")
        if not _positive_int(self.node_limit):
            raise PolicyError(f"node_limit must be a positive integer, got {self.node_limit!r}")
        if self.mbs is not None and not _positive_int(self.mbs):
            raise PolicyError(f"mbs must be a positive integer, got {self.mbs!r}")
        if self.beyond_capacity not in BEYOND_CAPACITY:
            raise PolicyError(
                f"beyond_capacity must be one of {BEYOND_CAPACITY}, got {self.beyond_capacity!r}"
            )

    def with_changes(self, **changes) -> DispatcherConfig:
        """These settings with some replaced (None: keep the current value)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    # -- command line -----------------------------------------------------------------------------------------
    @staticmethod
    def add_arguments(
        parser: argparse.ArgumentParser,
        only: Iterable[str] | None = None,
        defaults: Mapping[str, object] | None = None,
        dispatcher: str | None = None,
    ) -> None:
        """The flags of the settings named in `only` (default: all), and --dispatcher when `dispatcher` says what
        its default is. A flag's default is None (keep the base's value) unless `defaults` gives one."""
        defaults = defaults or {}
        group = parser.add_argument_group(
            "dispatch (a flag left out keeps the planner's or the default setting)"
        )
        if dispatcher is not None:
            from lobra.policies.dispatchers.base import DISPATCHERS  # here: base imports this module

            names = ", ".join(DISPATCHERS.names())
            group.add_argument("--dispatcher", help=f"one of {names} (default {dispatcher})")
        for name in only or FLAGS:
            flag, kwargs = FLAGS[name]
            default = defaults.get(name)
            help_ = kwargs["help"]
            if default is not None:  # the command's default replaces the setting's own
                shown = f"{default:g}" if isinstance(default, float) else default
                help_ = re.sub(r" \(default [^)]*\)$", "", help_) + f" (default {shown})"
            group.add_argument(flag, dest=name, default=default, **{**kwargs, "help": help_})

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: DispatcherConfig | None = None) -> DispatcherConfig:
        """`base` (default: the defaults) with the settings the flags of `add_arguments` gave."""
        return (base or cls()).with_changes(**{name: getattr(args, name, None) for name in FLAGS})

    def to_argv(self) -> list[str]:
        """Flags that `from_args` parses back into exactly these settings (every one explicit)."""
        argv = ["--packing" if self.packing else "--no-packing"]
        argv += ["--bucketing", self.bucketing, "--num-buckets", str(self.num_buckets)]
        argv += ["--ilp-time-limit", repr(float(self.time_limit_s)), "--ilp-node-limit", str(self.node_limit)]
        argv += ["--beyond-capacity", self.beyond_capacity]
        return argv + ([] if self.mbs is None else ["--mbs", str(self.mbs)])


def dispatch_from_args(
    args: argparse.Namespace, default: str = "balanced", planned: DispatcherConfig | None = None
) -> tuple[str, DispatcherConfig]:
    """The dispatcher a command runs and its settings: the one --dispatcher names, else fixed-mbs when --mbs gives
    a micro-batch size, else `default` (a planner's own dispatcher). The flags apply to the defaults, or to
    `planned` (that planner's settings) when its own dispatcher runs, so a planner runs as it planned."""
    name = getattr(args, "dispatcher", None)
    given = DispatcherConfig.from_args(args)
    if name is not None:
        return name, given
    if given.mbs is not None:
        return FIXED_MBS, given
    return default, DispatcherConfig.from_args(args, planned)


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# field -> (flag, argparse options); the flag names are the ones the commands have always used.
FLAGS: dict[str, tuple[str, dict]] = {
    "packing": (
        "--packing",
        {
            "action": argparse.BooleanOptionalAction,
            "help": "pack sequences into micro-batches instead of padding them (--no-packing: pad)",
        },
    ),
    "bucketing": (
        "--bucketing",
        {"choices": BUCKETINGS, "help": "padded lengths: dp (optimal per step) or pow2 (fixed ladder)"},
    ),
    "num_buckets": (
        "--num-buckets",
        {"type": int, "metavar": "B", "help": f"at most B buckets per step (default {DEFAULT_NUM_BUCKETS})"},
    ),
    "time_limit_s": (
        "--ilp-time-limit",
        {
            "type": float,
            "metavar": "S",
            "help": f"safety-net time limit of every integer programme, s (default {DEFAULT_TIME_LIMIT_S:g})",
        },
    ),
    "node_limit": (
        "--ilp-node-limit",
        {
            "type": int,
            "metavar": "N",
            "help": f"branch-and-bound nodes per integer programme, planner and dispatcher (default "
            f"{DEFAULT_NODE_LIMIT})",
        },
    ),
    "beyond_capacity": (
        "--beyond-capacity",
        {
            "choices": BEYOND_CAPACITY,
            "help": "sequences longer than the plan's largest replica holds (after each task's max_len): an error, "
            "or truncate/drop them, counted in the outputs (default error)",
        },
    ),
    "mbs": (
        "--mbs",
        {
            "type": int,
            "metavar": "K",
            "help": "every micro-batch holds K sequences (the fixed-mbs dispatcher)",
        },
    ),
}
