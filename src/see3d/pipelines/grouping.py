"""Splitting a long list of target views into multi-view groups that share anchor frames.

A group is ``[references, anchors, targets[i:i + group_size]]``. The first group has no anchors; every later
group takes ``num_anchors`` views already generated (spread over what exists, the last one included) as extra
clean references, so consecutive groups stay consistent. Memory grows with the square of the group's frame
count (joint self-attention over all its views), which is why long sequences are split.
"""

from __future__ import annotations


def plan_groups(num_targets: int, group_size: int | None) -> list[range]:
    """Consecutive target index ranges of at most ``group_size`` (None or <= 0: all in one group)."""
    if num_targets <= 0:
        return []
    if not group_size or group_size <= 0 or group_size >= num_targets:
        return [range(0, num_targets)]
    return [range(i, min(i + group_size, num_targets)) for i in range(0, num_targets, group_size)]


def anchor_indices(num_generated: int, num_anchors: int) -> list[int]:
    """Which of the ``num_generated`` views made so far serve as anchors: ``num_anchors`` indices spread evenly,
    ending with the most recent one (for 2 anchors: the middle and the last view, as the official SR stage)."""
    if num_generated <= 0 or num_anchors <= 0:
        return []
    k = min(num_anchors, num_generated)
    return sorted({(num_generated * (i + 1)) // k - 1 for i in range(k)})


def official_sr_group_size(num_refs: int, num_targets: int) -> int:
    """Targets per group of the official SR stage: ``(g + n + 3) // 2``."""
    return (num_refs + num_targets + 3) // 2
