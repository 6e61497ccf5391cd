"""The LobRA paper's published numbers we check ourselves against (PVLDB 18(8) 2025, arXiv 2509.01193).

Plans are written as the paper writes them, `<a,b>xN`, without saying which degree comes first: a plan of ours
agrees with one of the paper's when their multisets of configs match under one of the two readings; the replica
sizes (GPUs per replica), which do not depend on the reading, are said beside it.
"""

from __future__ import annotations

import re
from collections import Counter

HEADLINE_REDUCTION_PCT = (45.03, 60.67)  # fewer GPU-seconds than the baselines, over the paper's settings
PLANS = {
    "7B": {"lobra": "<1,1>x6 <2,1>x1 <8,1>x1", "task-fused": "<8,1>x2"},  # 16 A100-40GB, 6 tasks
    "70B": {"lobra": "<2,4>x4 <4,2>x1 <8,1>x1 <16,1>x1", "task-fused": "<16,1>x4"},  # 64 A800-80GB, 12 tasks
}
# 70B, 4 tasks: GPU-seconds relative to each policy's own 16-GPU point.
GPU_SCALING = {"num_gpus": (16, 32, 64), "task-fused": (1.00, 1.08, 1.12), "lobra": (1.00, 0.65, 0.59)}
# 70B on 64 GPUs: GPU-seconds relative to Task-Fused with 4 tasks.
TASK_SCALING = {
    "num_tasks": (4, 8, 12, 16),
    "task-fused": (1.00, 2.06, 3.18, 4.41),
    "lobra": (0.52, 0.97, 1.47, 2.02),
}
# Planning time with pruning, 70B, 4 tasks, 64 threads (the plain MINLP times out after 1 h from 48 GPUs).
PLANNING_TIME_S = {32: 1.7, 48: 49.0, 64: 149.0, 128: 240.0, 256: 428.0}
BUCKET_KNEE = 12  # step time stops improving beyond about this many buckets (default 16)
DEFAULT_BUCKETS = 16

ENTRY = re.compile(r"<\s*(\d+)\s*,\s*(\d+)\s*(,\s*ckpt\s*)?>\s*(?:[xX*]\s*(\d+))?")


def configs(plan: str, swap: bool = False) -> Counter:
    """The multiset of (a, b, checkpointing) entries of a plan; swap: read `<a,b>` as `<b,a>`."""
    out: Counter = Counter()
    for a, b, ckpt, n in ENTRY.findall(plan):
        first, second = (int(b), int(a)) if swap else (int(a), int(b))
        out[(first, second, bool(ckpt))] += int(n or 1)
    return out


def same_configs(ours: str, published: str) -> str | None:
    """The reading of the paper's plan ("(tp,pp)" or "(pp,tp)") under which both plans hold the same configs, if
    any."""
    for reading, swap in (("(tp,pp)", False), ("(pp,tp)", True)):
        if configs(ours) == configs(published, swap):
            return reading
    return None


def replica_sizes(plan: str) -> list[int]:
    """GPUs per replica, largest first: '<1,1>x6 <8,1>x1' -> [8, 1, 1, 1, 1, 1, 1]."""
    return sorted((a * b for (a, b, _), n in configs(plan).items() for _ in range(n)), reverse=True)


def sizes_str(plan: str) -> str:
    """'8+2+1x6': the replica sizes of a plan, for side-by-side comparison."""
    sizes = replica_sizes(plan)
    parts = []
    for s in sorted(set(sizes), reverse=True):
        n = sizes.count(s)
        parts.append(f"{s}x{n}" if n > 1 else str(s))
    return " + ".join(parts) + " GPUs"
