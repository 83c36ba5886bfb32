"""GroupNorm group counts shared by the model builders and the layers that normalise internally."""

#: Maximum number of GroupNorm groups.
MAX_GROUPS = 32


def group_count(channels, max_groups=MAX_GROUPS):
    """Largest divisor of ``channels`` that is ≤ ``max_groups`` (32 for ≥ 32 channels divisible by 32;
    the reference code's min(32, C) for C ∈ {16, 32, 64})."""
    return max(g for g in range(1, min(max_groups, channels) + 1) if channels % g == 0)
