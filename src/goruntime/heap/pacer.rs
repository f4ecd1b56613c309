//! The GC pacer's heap goal (mgcpacer.go), reproduced from its inputs.

/// How `memoryLimitHeapGoal` leaves headroom below the limit.
#[derive(Debug, Clone, Copy)]
pub(super) enum Headroom {
    /// Go 1.19 (and 1.20): a fixed number of bytes.
    Fixed(u64),
    /// Go 1.21+: a percentage of the goal with a minimum.
    Percent { percent: u64, min: u64 },
}

/// `gcControllerState.memoryLimitHeapGoal` (mgcpacer.go).
pub(super) fn memory_limit_heap_goal(
    headroom: Headroom,
    memory_limit: u64,
    heap_free: u64,
    heap_alloc: u64,
    mapped_ready: u64,
    heap_marked: u64,
) -> u64 {
    let non_heap = mapped_ready
        .wrapping_sub(heap_free)
        .wrapping_sub(heap_alloc);
    let overage = mapped_ready.saturating_sub(memory_limit);
    let reserved = non_heap.wrapping_add(overage);
    if reserved >= memory_limit {
        return heap_marked;
    }
    let mut goal = memory_limit - reserved;
    let headroom = match headroom {
        Headroom::Fixed(h) => h,
        Headroom::Percent { percent, min } => (goal / 100).saturating_mul(percent).max(min),
    };
    if goal < headroom || goal - headroom < headroom {
        goal = headroom;
    } else {
        goal -= headroom;
    }
    goal.max(heap_marked)
}

/// `gcControllerState.heapGoalInternal` (identical from Go 1.19 to 1.27).
pub(super) fn heap_goal(
    gc_percent_goal: u64,
    mem_goal: u64,
    sweep_dist_trigger: u64,
    triggered: u64,
) -> u64 {
    let mut goal = gc_percent_goal;
    if mem_goal < goal {
        return mem_goal;
    }
    if sweep_dist_trigger > goal {
        goal = sweep_dist_trigger;
    }
    const MIN_RUNWAY: u64 = 64 << 10;
    if triggered != u64::MAX && goal < triggered.wrapping_add(MIN_RUNWAY) {
        goal = triggered.wrapping_add(MIN_RUNWAY);
    }
    goal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_goal_branches() {
        // Memory limit wins.
        assert_eq!(heap_goal(100, 50, 0, u64::MAX), 50);
        // Sweep distance pushes the goal up.
        assert_eq!(heap_goal(100, 1000, 200, u64::MAX), 200);
        // Minimum runway above the trigger point.
        assert_eq!(heap_goal(100, 1 << 40, 0, 90), 90 + (64 << 10));
    }

    #[test]
    fn memory_limit_goal() {
        let pct = Headroom::Percent {
            percent: 3,
            min: 1 << 20,
        };
        // No limit (GOMEMLIMIT unset): 3% below the limit minus non-heap memory.
        assert_eq!(
            memory_limit_heap_goal(pct, i64::MAX as u64, 100, 500, 1000, 0),
            8946670875749132145
        );
        // Go 1.19: a fixed 1 MiB of headroom.
        assert_eq!(
            memory_limit_heap_goal(Headroom::Fixed(1 << 20), 1 << 30, 100, 500, 1000, 0),
            (1 << 30) - 400 - (1 << 20)
        );
        // Non-heap memory above the limit: the goal is the marked heap.
        assert_eq!(memory_limit_heap_goal(pct, 300, 100, 500, 1000, 77), 77);
        // Tiny limits: the goal is the headroom itself, never below heapMarked.
        assert_eq!(
            memory_limit_heap_goal(pct, 4096, 100, 500, 1000, 0),
            1 << 20
        );
        assert_eq!(
            memory_limit_heap_goal(pct, 4096, 100, 500, 1000, 5 << 20),
            5 << 20
        );
    }
}
