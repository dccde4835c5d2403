//! A `list_head` of tasks as the model keeps it: `rq->cfs_tasks` and each RT priority level's
//! queue (`rt_prio_array.queue[prio]`).
//!
//! Deviation: Linux links the tasks themselves and unlinks one by pointer in O(1). The model
//! maps a position key to the task: an insertion at the head takes a key below every key used
//! so far, one at the tail a key above, and the task keeps its key (in its entity), so
//! unlinking is one O(log n) map removal and never a search; iteration is in list order.

use std::collections::BTreeMap;

use crate::task::TaskId;

#[derive(Clone, Default)]
pub struct TaskList {
    /// Position key → task, head first.
    nodes: BTreeMap<i64, TaskId>,
    /// The key the last head insertion took (the next one takes one less).
    head_key: i64,
    /// The key the next tail insertion takes.
    tail_key: i64,
}

impl TaskList {
    /// `list_add()` at the head; returns the task's position key.
    pub fn push_front(&mut self, p: TaskId) -> i64 {
        self.head_key -= 1;
        let key = self.head_key;
        let old = self.nodes.insert(key, p);
        assert!(old.is_none(), "task list key {key} reused");
        key
    }

    /// `list_add_tail()`; returns the task's position key.
    pub fn push_back(&mut self, p: TaskId) -> i64 {
        let key = self.tail_key;
        self.tail_key += 1;
        let old = self.nodes.insert(key, p);
        assert!(old.is_none(), "task list key {key} reused");
        key
    }

    /// `list_del_init()` of `p`, which holds position `key`.
    pub fn remove(&mut self, key: i64, p: TaskId) {
        let was = self.nodes.remove(&key);
        assert_eq!(was, Some(p), "task {p} missing from its list at key {key}");
    }

    /// The head of the list (`list_first_entry()`).
    pub fn front(&self) -> Option<TaskId> {
        self.nodes.values().next().copied()
    }

    /// The tail of the list (`list_last_entry()`).
    pub fn last(&self) -> Option<TaskId> {
        self.nodes.values().next_back().copied()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The tasks, head first.
    pub fn iter(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.nodes.values().copied()
    }
}

impl std::fmt::Debug for TaskList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<const N: usize> PartialEq<[TaskId; N]> for TaskList {
    fn eq(&self, other: &[TaskId; N]) -> bool {
        self.iter().eq(other.iter().copied())
    }
}
