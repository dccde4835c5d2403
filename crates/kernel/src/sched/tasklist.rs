//! A `list_head` of tasks: `rq->cfs_tasks` and each RT priority level's queue
//! (`rt_prio_array.queue[prio]`).
//!
//! As in Linux, the links live in the tasks (a [`ListNode`] in the task's entity: `se.group_node`
//! for `cfs_tasks`, `rt.run_list` for an RT queue) and the list holds only its ends, so
//! adding, deleting and moving a task are O(1) and the memory is O(tasks) whatever the
//! number of lists. A list knows which of the task's nodes it links ([`Link`]); its
//! operations take the task table to reach them.
//!
//! Deviation: the links are task ids instead of pointers, and the head is not itself a node
//! (it keeps the first and last task), so "empty" is a count, not a self-pointing head.

use crate::task::{Task, TaskId};

/// No task: the end of a list.
const NIL: u32 = u32::MAX;

/// Not on any list (`list_empty()` of a node, `INIT_LIST_HEAD`).
const UNLINKED: u32 = u32::MAX - 1;

/// A task's links on one kind of list (`struct list_head` in the task).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListNode {
    prev: u32,
    next: u32,
}

impl Default for ListNode {
    fn default() -> Self {
        ListNode {
            prev: UNLINKED,
            next: UNLINKED,
        }
    }
}

impl ListNode {
    /// Whether the task is on a list through this node.
    pub fn is_linked(&self) -> bool {
        self.prev != UNLINKED
    }
}

/// Which node of a task a list links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// `p->se.group_node`, on `rq->cfs_tasks`.
    CfsTasks,
    /// `p->rt.run_list`, on an RT priority queue.
    RtRunList,
}

impl Link {
    fn node(self, t: &Task) -> &ListNode {
        match self {
            Link::CfsTasks => &t.se.group_node,
            Link::RtRunList => &t.rt.run_list,
        }
    }

    fn node_mut(self, t: &mut Task) -> &mut ListNode {
        match self {
            Link::CfsTasks => &mut t.se.group_node,
            Link::RtRunList => &mut t.rt.run_list,
        }
    }
}

fn id(raw: u32) -> Option<TaskId> {
    (raw != NIL).then_some(TaskId(raw))
}

/// The head of a list of tasks. Protected by: the rq lock (as the tasks' nodes on it).
#[derive(Clone, Debug)]
pub struct TaskList {
    link: Link,
    head: u32,
    tail: u32,
    len: usize,
}

impl TaskList {
    /// An empty list linking the tasks' `link` nodes (`LIST_HEAD_INIT`).
    pub fn new(link: Link) -> Self {
        TaskList {
            link,
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    /// Link `p` (on no list) between `prev` and `next` (either `NIL` at an end).
    fn link_between(&mut self, tasks: &mut [Task], p: TaskId, prev: u32, next: u32) {
        let node = self.link.node_mut(&mut tasks[p.idx()]);
        assert!(!node.is_linked(), "task {p} is already on a {:?} list", self.link);
        *node = ListNode { prev, next };
        if prev == NIL {
            self.head = p.0;
        } else {
            self.link.node_mut(&mut tasks[prev as usize]).next = p.0;
        }
        if next == NIL {
            self.tail = p.0;
        } else {
            self.link.node_mut(&mut tasks[next as usize]).prev = p.0;
        }
        self.len += 1;
    }

    /// `list_add()` at the head.
    pub fn push_front(&mut self, tasks: &mut [Task], p: TaskId) {
        let head = self.head;
        self.link_between(tasks, p, NIL, head);
    }

    /// `list_add_tail()`.
    pub fn push_back(&mut self, tasks: &mut [Task], p: TaskId) {
        let tail = self.tail;
        self.link_between(tasks, p, tail, NIL);
    }

    /// `list_del_init()` of `p`, which must be on this list.
    pub fn remove(&mut self, tasks: &mut [Task], p: TaskId) {
        let node = *self.link.node(&tasks[p.idx()]);
        assert!(node.is_linked(), "task {p} is on no {:?} list", self.link);
        let ListNode { prev, next } = node;
        // The ends name p exactly when it is first or last here; a node linked on another
        // list would fail one of these.
        if prev == NIL {
            assert_eq!(self.head, p.0, "task {p} is not the head of this list");
            self.head = next;
        } else {
            self.link.node_mut(&mut tasks[prev as usize]).next = next;
        }
        if next == NIL {
            assert_eq!(self.tail, p.0, "task {p} is not the tail of this list");
            self.tail = prev;
        } else {
            self.link.node_mut(&mut tasks[next as usize]).prev = prev;
        }
        *self.link.node_mut(&mut tasks[p.idx()]) = ListNode::default();
        self.len -= 1;
    }

    /// The head of the list (`list_first_entry()`).
    pub fn front(&self) -> Option<TaskId> {
        id(self.head)
    }

    /// The tail of the list (`list_last_entry()`).
    pub fn last(&self) -> Option<TaskId> {
        id(self.tail)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tasks, head first.
    pub fn iter<'a>(&'a self, tasks: &'a [Task]) -> impl Iterator<Item = TaskId> + 'a {
        let mut at = self.head;
        // Bounded by the count: a cycle in the links would be a model bug.
        (0..self.len).map(move |_| {
            let p = id(at).expect("a list shorter than its count");
            at = self.link.node(&tasks[p.idx()]).next;
            p
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::fair::test_util::new_for_tests;
    use crate::sched::SchedState;

    fn order(l: &TaskList, s: &SchedState) -> Vec<TaskId> {
        l.iter(&s.tasks).collect()
    }

    /// Unlinking from the middle and both ends, relinking at both ends, and two lists of
    /// different links over the same tasks keep list order and each task's node state.
    #[test]
    fn links_in_the_tasks_keep_list_order() {
        let mut s = new_for_tests(1, 6);
        let t = TaskId;
        let mut l = TaskList::new(Link::CfsTasks);
        let mut r = TaskList::new(Link::RtRunList);
        for i in 1..=3 {
            l.push_back(&mut s.tasks, t(i));
        }
        r.push_front(&mut s.tasks, t(2));
        assert_eq!(order(&l, &s), [t(1), t(2), t(3)]);
        l.remove(&mut s.tasks, t(2));
        assert!(!s.tasks[2].se.group_node.is_linked());
        assert!(s.tasks[2].rt.run_list.is_linked(), "the other node is untouched");
        assert_eq!(order(&l, &s), [t(1), t(3)]);
        l.push_front(&mut s.tasks, t(2));
        assert_eq!(order(&l, &s), [t(2), t(1), t(3)]);
        l.remove(&mut s.tasks, t(3));
        assert_eq!(l.last(), Some(t(1)));
        l.remove(&mut s.tasks, t(2));
        assert_eq!(l.front(), Some(t(1)));
        l.push_back(&mut s.tasks, t(4));
        assert_eq!(order(&l, &s), [t(1), t(4)]);
        l.remove(&mut s.tasks, t(1));
        l.remove(&mut s.tasks, t(4));
        assert!(l.is_empty());
        assert_eq!((l.front(), l.last(), order(&l, &s).len()), (None, None, 0));
        assert_eq!(order(&r, &s), [t(2)]);
        l.push_front(&mut s.tasks, t(5));
        assert_eq!(order(&l, &s), [t(5)]);
    }

    #[test]
    #[should_panic(expected = "already on a CfsTasks list")]
    fn linking_a_linked_task_fails() {
        let mut s = new_for_tests(1, 2);
        let mut a = TaskList::new(Link::CfsTasks);
        let mut b = TaskList::new(Link::CfsTasks);
        a.push_back(&mut s.tasks, TaskId(1));
        b.push_back(&mut s.tasks, TaskId(1));
    }
}
