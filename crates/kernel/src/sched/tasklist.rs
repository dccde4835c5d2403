//! A `list_head` of tasks as the model keeps it: `rq->cfs_tasks` and each RT priority level's
//! queue (`rt_prio_array.queue[prio]`).
//!
//! Deviation: Linux links the tasks themselves (`list_head` inside the task). The model keeps
//! the links in the list: a slot vector of nodes (task, previous slot, next slot) linked
//! head to tail, with freed slots reused. A task's position key is its slot index, which the
//! task keeps (in its entity) while it is on the list, so unlinking is O(1) by key and never
//! a search, as Linux's `list_del()` by pointer; iteration is in list order.

use crate::task::TaskId;

/// No slot: the end of the list.
const NIL: u32 = u32::MAX;

/// One linked slot of a [`TaskList`].
#[derive(Clone, Copy, Debug)]
struct Node {
    /// The task in the slot; `None` while the slot is free.
    task: Option<TaskId>,
    prev: u32,
    next: u32,
}

#[derive(Clone)]
pub struct TaskList {
    /// Slots, linked head to tail through `prev`/`next`; free ones are on `free`.
    nodes: Vec<Node>,
    /// Free slots, the most recently freed last (reused first).
    free: Vec<u32>,
    head: u32,
    tail: u32,
    len: usize,
}

impl Default for TaskList {
    fn default() -> Self {
        TaskList {
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl TaskList {
    /// A slot for `p`, unlinked.
    fn alloc(&mut self, p: TaskId) -> u32 {
        let node = Node {
            task: Some(p),
            prev: NIL,
            next: NIL,
        };
        match self.free.pop() {
            Some(slot) => {
                assert!(
                    self.nodes[slot as usize].task.is_none(),
                    "task list slot {slot} reused"
                );
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                let slot = u32::try_from(self.nodes.len()).expect("task list slots fit in u32");
                assert!(slot != NIL, "task list full");
                self.nodes.push(node);
                slot
            }
        }
    }

    /// `list_add()` at the head; returns the task's position key.
    pub fn push_front(&mut self, p: TaskId) -> i64 {
        let slot = self.alloc(p);
        let old = self.head;
        self.nodes[slot as usize].next = old;
        if old == NIL {
            self.tail = slot;
        } else {
            self.nodes[old as usize].prev = slot;
        }
        self.head = slot;
        self.len += 1;
        i64::from(slot)
    }

    /// `list_add_tail()`; returns the task's position key.
    pub fn push_back(&mut self, p: TaskId) -> i64 {
        let slot = self.alloc(p);
        let old = self.tail;
        self.nodes[slot as usize].prev = old;
        if old == NIL {
            self.head = slot;
        } else {
            self.nodes[old as usize].next = slot;
        }
        self.tail = slot;
        self.len += 1;
        i64::from(slot)
    }

    /// `list_del_init()` of `p`, which holds position `key`.
    pub fn remove(&mut self, key: i64, p: TaskId) {
        let node = usize::try_from(key).ok().and_then(|k| self.nodes.get(k)).copied();
        let was = node.and_then(|n| n.task);
        assert_eq!(was, Some(p), "task {p} missing from its list at key {key}");
        let Some(Node { prev, next, .. }) = node else {
            unreachable!("checked above");
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
        let slot = key as u32;
        self.nodes[slot as usize] = Node {
            task: None,
            prev: NIL,
            next: NIL,
        };
        self.free.push(slot);
        self.len -= 1;
    }

    /// The head of the list (`list_first_entry()`).
    pub fn front(&self) -> Option<TaskId> {
        self.task_at(self.head)
    }

    /// The tail of the list (`list_last_entry()`).
    pub fn last(&self) -> Option<TaskId> {
        self.task_at(self.tail)
    }

    fn task_at(&self, slot: u32) -> Option<TaskId> {
        if slot == NIL {
            None
        } else {
            self.nodes[slot as usize].task
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tasks, head first.
    pub fn iter(&self) -> impl Iterator<Item = TaskId> + '_ {
        let mut slot = self.head;
        // Bounded by the slot count: a cycle in the links would be a model bug.
        (0..self.len).map(move |_| {
            let node = &self.nodes[slot as usize];
            slot = node.next;
            node.task.expect("a linked slot holds a task")
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Unlinking from the middle and the ends, then reusing the freed slots at both ends,
    /// keeps list order (a slot reused without relinking would show up at its old place).
    #[test]
    fn removal_and_slot_reuse_keep_list_order() {
        let t = |i| TaskId(i);
        let mut l = TaskList::default();
        let ka = l.push_back(t(1));
        let kb = l.push_back(t(2));
        let kc = l.push_back(t(3));
        assert_eq!(l, [t(1), t(2), t(3)]);
        l.remove(kb, t(2));
        assert_eq!(l, [t(1), t(3)]);
        let kd = l.push_front(t(4));
        assert_eq!(kd, kb, "the freed slot is reused");
        assert_eq!(l, [t(4), t(1), t(3)]);
        l.remove(kc, t(3));
        assert_eq!(l.last(), Some(t(1)));
        l.remove(kd, t(4));
        assert_eq!(l.front(), Some(t(1)));
        let ke = l.push_back(t(5));
        assert_eq!(l, [t(1), t(5)]);
        l.remove(ka, t(1));
        l.remove(ke, t(5));
        assert!(l.is_empty());
        assert_eq!((l.front(), l.last(), l.iter().count()), (None, None, 0));
        l.push_front(t(6));
        assert_eq!(l, [t(6)]);
    }

    #[test]
    #[should_panic(expected = "missing from its list")]
    fn removing_with_another_tasks_key_fails() {
        let mut l = TaskList::default();
        let k = l.push_back(TaskId(1));
        l.remove(k, TaskId(2));
    }
}
