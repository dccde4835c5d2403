//! Workload shrinking: smaller variants of a workload, for reducing a failure found by
//! exploration to something a person can read.
//!
//! [`candidates`] is a pure function from workload text to smaller workload texts, most
//! reducing first. The caller (`proxysched shrink`) runs them in order, keeps the first that
//! still fails the same way, and asks again, until no candidate fails: a greedy
//! delta-debugging pass (Zeller and Hildebrandt, "Simplifying and Isolating Failure-Inducing
//! Input", TSE 2002) over the workload's structure instead of its characters, so every
//! candidate is a workload, not a syntax error. The edits, in the order they are proposed:
//!
//! 1. drop a task (the largest first);
//! 2. fewer CPUs: half, then one less (`cpus` masks and `queue_work` CPUs are remapped
//!    modulo the new count, so every mask stays non-empty);
//! 3. drop a phase of a task that has several;
//! 4. drop a work item, with every `queue_work`/`flush_work` that names it, and a resource
//!    declared in `"resources"` that no event uses;
//! 5. fewer instances of a task: one, then half;
//! 6. a shorter `global.duration` (half);
//! 7. half of every loop count;
//! 8. drop one event of a phase, or one step of a work item (a `lock` goes together with its
//!    matching `unlock`, so nothing is left locked by the edit);
//! 9. half of every `run`/`runtime` length, then of every `sleep` and `delay`;
//! 10. the same halvings (lengths, sleeps, loops) for one task at a time.
//!
//! Every candidate loads ([`crate::load`]) and is smaller than its input by [`Size`]: no
//! count grows and at least one shrinks, so repeated shrinking ends. Comments of the input
//! are not kept.

use std::fmt;

use crate::json::{self, Kind, Member, Node};
use crate::loader::event_prefix;
use uapi::ResourceId;

use crate::spec::{Event, LoopCount, WorkStepSpec, Workload};

/// How big a workload is, for "sizes before and after" and to order candidates. Counts are of
/// the file (an event inside a loop counts once), except that per-task lengths count once per
/// instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Size {
    /// Entries of `"tasks"`.
    pub tasks: usize,
    /// Threads (instances of all tasks).
    pub threads: usize,
    /// Phases over all tasks.
    pub phases: usize,
    /// Events over all phases, plus the steps of all work items.
    pub events: usize,
    /// CPUs (`proxysched.cpus`; 1 when absent, the command line's default).
    pub cpus: usize,
    /// Work items.
    pub work_items: usize,
    /// Mutexes and condition variables (declared or used), rt-app's internal ones included.
    pub resources: usize,
    /// Total `run` and `runtime` µs (one iteration of every phase, times the instances), and
    /// the `run` steps of work items.
    pub run_us: u64,
    /// Total `sleep` and `delay` µs, counted as `run_us`.
    pub sleep_us: u64,
    /// Sum of all finite loop counts (task and phase level).
    pub loops: u64,
    /// `global.duration` in ms (0: until every thread exits).
    pub duration_ms: u64,
}

impl Size {
    /// The size of a loaded workload.
    pub fn of(w: &Workload) -> Size {
        let mut size = Size {
            tasks: w.tasks.len(),
            threads: w.threads.len(),
            cpus: w.settings.cpus.unwrap_or(1),
            work_items: w.settings.workqueues.items.len(),
            resources: w.resources.len(),
            duration_ms: w.duration_s.map_or(0, |s| (s * 1000.0).round() as u64),
            ..Size::default()
        };
        let finite = |l: LoopCount| match l {
            LoopCount::Times(n) => u64::from(n),
            LoopCount::Forever => 0,
        };
        for t in &w.tasks {
            let instances = u64::from(t.instances);
            size.phases += t.phases.len();
            size.sleep_us = size.sleep_us.saturating_add(t.delay_us.saturating_mul(instances));
            // A task without phases keeps its loop count on its one phase.
            if t.phases.len() > 1 || t.thread_loop != LoopCount::Times(1) {
                size.loops += finite(t.thread_loop);
            }
            for p in &t.phases {
                size.events += p.events.len();
                size.loops += finite(p.loop_count);
                for e in &p.events {
                    match e.event {
                        Event::Run { work_us } => {
                            size.run_us = size.run_us.saturating_add(work_us * instances)
                        }
                        Event::Runtime { duration_us } => {
                            size.run_us = size.run_us.saturating_add(duration_us * instances)
                        }
                        Event::Sleep { duration_us } => {
                            size.sleep_us = size.sleep_us.saturating_add(duration_us * instances)
                        }
                        _ => {}
                    }
                }
            }
        }
        for item in &w.settings.workqueues.items {
            size.events += item.steps.len();
            for s in &item.steps {
                match *s {
                    WorkStepSpec::Run { work_us } => size.run_us = size.run_us.saturating_add(work_us),
                    WorkStepSpec::Sleep { duration_us } => {
                        size.sleep_us = size.sleep_us.saturating_add(duration_us)
                    }
                    _ => {}
                }
            }
        }
        size
    }

    fn fields(&self) -> [u64; 11] {
        [
            self.tasks as u64,
            self.threads as u64,
            self.phases as u64,
            self.events as u64,
            self.cpus as u64,
            self.work_items as u64,
            self.resources as u64,
            self.run_us,
            self.sleep_us,
            self.loops,
            self.duration_ms,
        ]
    }

    /// No count is larger than `other`'s and at least one is smaller.
    pub fn smaller_than(&self, other: &Size) -> bool {
        let (a, b) = (self.fields(), other.fields());
        a.iter().zip(&b).all(|(x, y)| x <= y) && a != b
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} tasks ({} threads, {} phases), {} events, {} CPUs, {} work items, {} resources, run {} µs, \
             sleep {} µs, loops {}, duration {} ms",
            self.tasks,
            self.threads,
            self.phases,
            self.events,
            self.cpus,
            self.work_items,
            self.resources,
            self.run_us,
            self.sleep_us,
            self.loops,
            self.duration_ms
        )
    }
}

/// The [`Size`] of a workload's text; `Size::default()` (all zero) if it does not load.
pub fn size(json: &str) -> Size {
    crate::load("shrink.json", json).map_or(Size::default(), |w| Size::of(&w))
}

/// Smaller variants of the workload `json`, most reducing first (see the module docs). Each
/// loads and is [`Size::smaller_than`] the input; none repeats another. Empty if `json` does
/// not load or nothing can be removed.
pub fn candidates(json: &str) -> Vec<String> {
    let Ok(workload) = crate::load("shrink.json", json) else {
        return Vec::new();
    };
    let Ok(root) = json::parse(json) else {
        return Vec::new();
    };
    let before = Size::of(&workload);
    let mut edits: Vec<Node> = Vec::new();
    let tree = Tree::new(&root);
    tree.drop_tasks(&mut edits);
    tree.fewer_cpus(&workload, &mut edits);
    tree.drop_phases(&mut edits);
    tree.drop_work_items(&mut edits);
    tree.drop_unused_resources(&workload, &mut edits);
    tree.fewer_instances(&mut edits);
    tree.shorter_duration(&mut edits);
    tree.halve_all(&mut edits, None, Halve::Loops);
    tree.drop_events(&mut edits);
    tree.drop_work_steps(&mut edits);
    tree.halve_all(&mut edits, None, Halve::Runs);
    tree.halve_all(&mut edits, None, Halve::Sleeps);
    for t in 0..tree.task_count() {
        for what in [Halve::Runs, Halve::Sleeps, Halve::Loops] {
            tree.halve_all(&mut edits, Some(t), what);
        }
    }

    let mut out: Vec<String> = Vec::new();
    for edit in edits {
        let text = json::to_text(&edit);
        if text == json || out.contains(&text) {
            continue;
        }
        let Ok(w) = crate::load("shrink.json", &text) else {
            continue;
        };
        if Size::of(&w).smaller_than(&before) {
            out.push(text);
        }
    }
    out
}

// ---- editing the tree ------------------------------------------------------------------------

/// What a halving edit halves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Halve {
    Runs,
    Sleeps,
    Loops,
}

/// The parsed workload and where its parts are.
struct Tree<'n> {
    root: &'n Node,
    /// Index of the (last) `"tasks"` member of the top level.
    tasks_at: usize,
}

fn members(node: &Node) -> &[Member] {
    node.as_object().unwrap_or(&[])
}

fn members_mut(node: &mut Node) -> &mut Vec<Member> {
    match &mut node.kind {
        Kind::Object(m) => m,
        _ => unreachable!("only objects are edited"),
    }
}

fn last_index(members: &[Member], key: &str) -> Option<usize> {
    members.iter().rposition(|m| m.key == key)
}

fn number(v: u64) -> Kind {
    Kind::Number(v.to_string())
}

/// The phase objects of a task: the members of `"phases"`, or the task object itself.
fn phases_mut(task: &mut Node) -> Vec<&mut Node> {
    let at = last_index(members(task), "phases").filter(|&i| members(task)[i].value.as_object().is_some());
    match at {
        Some(i) => members_mut(&mut members_mut(task)[i].value)
            .iter_mut()
            .map(|p| &mut p.value)
            .collect(),
        None => vec![task],
    }
}

fn phases(task: &Node) -> Vec<&Node> {
    let obj = members(task);
    match last_index(obj, "phases") {
        Some(i) if obj[i].value.as_object().is_some() => {
            members(&obj[i].value).iter().map(|p| &p.value).collect()
        }
        _ => vec![task],
    }
}

fn is_event(key: &str) -> bool {
    event_prefix(key).is_some()
}

/// Whether event `m` is a signal to task `name` (`"signal": {"thread": NAME}`).
fn signals_task(m: &Member, name: &str) -> bool {
    event_prefix(&m.key) == Some("signal")
        && m.value
            .as_object()
            .and_then(|o| o.iter().rev().find(|k| k.key == "thread"))
            .and_then(|k| k.value.as_str())
            == Some(name)
}

/// The string a `queue_work` / `flush_work` value names (`"G"` or `{"item": "G", ...}`).
fn item_named(value: &Node) -> Option<&str> {
    value.as_str().or_else(|| {
        value
            .as_object()
            .and_then(|o| o.iter().rev().find(|m| m.key == "item")?.value.as_str())
    })
}

/// Indices of the events to drop together with the event at `i` of `list` (keys and values):
/// a `lock` with the first later `unlock` of the same mutex; `None` if a lock has no unlock.
fn drop_group(list: &[(&str, &Node)], i: usize) -> Option<Vec<usize>> {
    let (key, value) = list[i];
    if event_prefix(key) == Some("lock") {
        let name = value.as_str()?;
        let j = (i + 1..list.len())
            .find(|&j| event_prefix(list[j].0) == Some("unlock") && list[j].1.as_str() == Some(name))?;
        return Some(vec![i, j]);
    }
    Some(vec![i])
}

impl<'n> Tree<'n> {
    fn new(root: &'n Node) -> Tree<'n> {
        let tasks_at = last_index(members(root), "tasks").expect("a loaded workload has tasks");
        Tree { root, tasks_at }
    }

    fn tasks(&self) -> &'n [Member] {
        members(&members(self.root)[self.tasks_at].value)
    }

    fn task_count(&self) -> usize {
        self.tasks().len()
    }

    /// A copy of the tree and its task list, for one edit.
    fn edit(&self, f: impl FnOnce(&mut Node)) -> Node {
        let mut root = self.root.clone();
        f(&mut root);
        root
    }

    fn tasks_mut(root: &mut Node, tasks_at: usize) -> &mut Vec<Member> {
        members_mut(&mut members_mut(root)[tasks_at].value)
    }

    fn proxysched_mut(root: &mut Node) -> Option<&mut Vec<Member>> {
        let top = members_mut(root);
        let i = last_index(top, "proxysched")?;
        match &mut top[i].value.kind {
            Kind::Object(m) => Some(m),
            _ => None,
        }
    }

    fn drop_tasks(&self, edits: &mut Vec<Node>) {
        let tasks = self.tasks();
        if tasks.len() < 2 {
            return;
        }
        // Largest first: instances times events.
        let weight = |m: &Member| {
            let instances = members(&m.value)
                .iter()
                .rev()
                .find(|k| k.key == "instance")
                .and_then(|k| k.value.as_integer())
                .unwrap_or(1)
                .max(1);
            let events: usize = phases(&m.value)
                .iter()
                .map(|p| members(p).iter().filter(|k| is_event(&k.key)).count())
                .sum();
            instances * events as i128
        };
        let mut order: Vec<usize> = (0..tasks.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(weight(&tasks[i])));
        for i in order {
            edits.push(self.edit(|root| {
                let tasks = Tree::tasks_mut(root, self.tasks_at);
                let gone = tasks.remove(i);
                // A signal to the dropped task would no longer load: it goes with the task.
                for task in tasks.iter_mut() {
                    for phase in phases_mut(&mut task.value) {
                        members_mut(phase).retain(|m| !signals_task(m, &gone.key));
                    }
                }
            }));
        }
    }

    fn fewer_cpus(&self, w: &Workload, edits: &mut Vec<Node>) {
        let Some(n) = w.settings.cpus else {
            return;
        };
        let mut targets = vec![n / 2, n - 1];
        targets.retain(|&t| t >= 1);
        targets.dedup();
        for target in targets {
            edits.push(self.edit(|root| {
                let ps = Tree::proxysched_mut(root).expect("cpus came from proxysched");
                for m in ps.iter_mut() {
                    match m.key.as_str() {
                        "cpus" => m.value.kind = number(target as u64),
                        "llc_size" => {
                            if let Some(l) = m.value.as_integer() {
                                m.value.kind = number((l as u64).min(target as u64).max(1));
                            }
                        }
                        _ => {}
                    }
                }
                remap_cpus(root, target as u64);
            }));
        }
    }

    fn drop_phases(&self, edits: &mut Vec<Node>) {
        for (t, task) in self.tasks().iter().enumerate() {
            let obj = members(&task.value);
            let Some(pi) = last_index(obj, "phases") else {
                continue;
            };
            let count = members(&obj[pi].value).len();
            if count < 2 {
                continue;
            }
            for p in 0..count {
                edits.push(self.edit(|root| {
                    let task = &mut Tree::tasks_mut(root, self.tasks_at)[t].value;
                    members_mut(&mut members_mut(task)[pi].value).remove(p);
                }));
            }
        }
    }

    fn drop_work_items(&self, edits: &mut Vec<Node>) {
        let Some(items) = work_items(self.root) else {
            return;
        };
        let names: Vec<String> = items.iter().map(|m| m.key.clone()).collect();
        for name in names {
            edits.push(self.edit(|root| {
                let ps = Tree::proxysched_mut(root).expect("work items came from proxysched");
                let wq = ps
                    .iter_mut()
                    .rev()
                    .find(|m| m.key == "workqueues")
                    .expect("workqueues");
                let items = members_mut(
                    &mut members_mut(&mut wq.value)
                        .iter_mut()
                        .rev()
                        .find(|m| m.key == "items")
                        .expect("items")
                        .value,
                );
                items.retain(|m| m.key != name);
                for item in items.iter_mut() {
                    if let Kind::Array(steps) = &mut item.value.kind {
                        steps.retain(|s| {
                            !members(s)
                                .iter()
                                .any(|m| m.key == "queue_work" && item_named(&m.value) == Some(&name))
                        });
                    }
                }
                for task in Tree::tasks_mut(root, self.tasks_at).iter_mut() {
                    for phase in phases_mut(&mut task.value) {
                        members_mut(phase).retain(|m| {
                            !(matches!(event_prefix(&m.key), Some("queue_work" | "flush_work"))
                                && item_named(&m.value) == Some(&name))
                        });
                    }
                }
            }));
        }
    }

    /// Drop each entry of the top-level `"resources"` object that names no resource an event
    /// or work step uses.
    fn drop_unused_resources(&self, w: &Workload, edits: &mut Vec<Node>) {
        let top = members(self.root);
        let Some(r) = last_index(top, "resources") else {
            return;
        };
        let mut used: Vec<ResourceId> = Vec::new();
        for e in w.tasks.iter().flat_map(|t| &t.phases).flat_map(|p| &p.events) {
            match e.event {
                Event::Lock { mutex } | Event::Unlock { mutex } => used.push(mutex),
                Event::Signal { cond } | Event::Broadcast { cond } => used.push(cond),
                Event::Wait { cond, mutex }
                | Event::Sync { cond, mutex }
                | Event::Suspend { cond, mutex }
                | Event::Resume { cond, mutex } => used.extend([cond, mutex]),
                Event::Barrier { barrier } => {
                    used.extend([w.barriers[barrier].mutex, w.barriers[barrier].cond]);
                }
                _ => {}
            }
        }
        for item in &w.settings.workqueues.items {
            for step in &item.steps {
                if let WorkStepSpec::Lock { mutex } | WorkStepSpec::Unlock { mutex } = *step {
                    used.push(mutex);
                }
            }
        }
        let used_names: Vec<&str> = used
            .iter()
            .map(|&id| w.resources[id as usize].name.as_str())
            .collect();
        for (i, m) in members(&top[r].value).iter().enumerate() {
            if used_names.contains(&m.key.as_str()) {
                continue;
            }
            edits.push(self.edit(|root| {
                members_mut(&mut members_mut(root)[r].value).remove(i);
            }));
        }
    }

    fn fewer_instances(&self, edits: &mut Vec<Node>) {
        for (t, task) in self.tasks().iter().enumerate() {
            let obj = members(&task.value);
            let Some(i) = last_index(obj, "instance") else {
                continue;
            };
            let Some(n) = obj[i].value.as_integer() else {
                continue;
            };
            let mut targets = vec![1, n / 2];
            targets.retain(|&x| x >= 1 && x < n);
            targets.dedup();
            for target in targets {
                edits.push(self.edit(|root| {
                    let task = &mut Tree::tasks_mut(root, self.tasks_at)[t].value;
                    members_mut(task)[i].value.kind = number(target as u64);
                }));
            }
        }
    }

    fn shorter_duration(&self, edits: &mut Vec<Node>) {
        let top = members(self.root);
        let Some(g) = last_index(top, "global") else {
            return;
        };
        let Some(d) = last_index(members(&top[g].value), "duration") else {
            return;
        };
        let Some(secs) = members(&top[g].value)[d].value.as_f64() else {
            return;
        };
        if secs < 0.002 {
            return;
        }
        // Whole seconds while they stay whole (rt-app reads an integer); then milliseconds.
        let half = if secs.fract() == 0.0 && secs >= 2.0 {
            format!("{}", (secs as u64) / 2)
        } else {
            format!("{}", ((secs * 500.0).round() / 1000.0).max(0.001))
        };
        edits.push(self.edit(|root| {
            let global = &mut members_mut(root)[g].value;
            members_mut(global)[d].value.kind = Kind::Number(half);
        }));
    }

    /// Halve lengths, sleeps or loop counts of every task (`task` = None) or of one.
    fn halve_all(&self, edits: &mut Vec<Node>, task: Option<usize>, what: Halve) {
        let at = self.tasks_at;
        edits.push(self.edit(|root| {
            for (t, m) in Tree::tasks_mut(root, at).iter_mut().enumerate() {
                if task.is_some_and(|only| only != t) {
                    continue;
                }
                let has_phases = last_index(members(&m.value), "phases").is_some();
                if what == Halve::Loops && has_phases {
                    halve_key(members_mut(&mut m.value), "loop", 1);
                }
                if what == Halve::Sleeps {
                    halve_key(members_mut(&mut m.value), "delay", 0);
                }
                for phase in phases_mut(&mut m.value) {
                    let obj = members_mut(phase);
                    match what {
                        Halve::Loops => halve_key(obj, "loop", 1),
                        Halve::Runs => {
                            for e in obj.iter_mut() {
                                if matches!(event_prefix(&e.key), Some("run" | "runtime")) {
                                    halve_value(&mut e.value, 1);
                                }
                            }
                        }
                        Halve::Sleeps => {
                            for e in obj.iter_mut() {
                                if event_prefix(&e.key) == Some("sleep") {
                                    halve_value(&mut e.value, 1);
                                }
                            }
                        }
                    }
                }
            }
            // Work items belong to no task: halved with all tasks only.
            if task.is_none() && what != Halve::Loops {
                let key = if what == Halve::Runs { "run" } else { "sleep" };
                if let Some(items) = work_items_mut(root) {
                    for item in items.iter_mut() {
                        if let Kind::Array(steps) = &mut item.value.kind {
                            for step in steps.iter_mut() {
                                if let Kind::Object(ms) = &mut step.kind {
                                    for m in ms.iter_mut().filter(|m| m.key == key) {
                                        halve_value(&mut m.value, 1);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }));
    }

    fn drop_events(&self, edits: &mut Vec<Node>) {
        for (t, task) in self.tasks().iter().enumerate() {
            for (p, phase) in phases(&task.value).into_iter().enumerate() {
                let obj = members(phase);
                let events: Vec<(usize, (&str, &Node))> = obj
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| is_event(&m.key))
                    .map(|(i, m)| (i, (m.key.as_str(), &m.value)))
                    .collect();
                let list: Vec<(&str, &Node)> = events.iter().map(|&(_, e)| e).collect();
                for e in 0..events.len() {
                    if event_prefix(list[e].0) == Some("unlock") {
                        // Dropped with its lock; an unlock without a lock may go alone.
                        let has_lock = (0..e).any(|j| {
                            event_prefix(list[j].0) == Some("lock")
                                && list[j].1.as_str() == list[e].1.as_str()
                        });
                        if has_lock {
                            continue;
                        }
                    }
                    let Some(group) = drop_group(&list, e) else {
                        continue;
                    };
                    if group.len() >= events.len() {
                        continue; // a phase needs an event
                    }
                    let drop: Vec<usize> = group.iter().map(|&g| events[g].0).collect();
                    edits.push(self.edit(|root| {
                        let task = &mut Tree::tasks_mut(root, self.tasks_at)[t].value;
                        let phase = phases_mut(task).into_iter().nth(p).expect("same tree");
                        let obj = members_mut(phase);
                        let mut i = 0;
                        obj.retain(|_| {
                            i += 1;
                            !drop.contains(&(i - 1))
                        });
                    }));
                }
            }
        }
    }

    fn drop_work_steps(&self, edits: &mut Vec<Node>) {
        let Some(items) = work_items(self.root) else {
            return;
        };
        for (it, item) in items.iter().enumerate() {
            let Kind::Array(steps) = &item.value.kind else {
                continue;
            };
            // One-key step objects, as the loader reads them.
            let list: Vec<(&str, &Node)> = steps
                .iter()
                .map(|s| members(s).first().map_or(("", s), |m| (m.key.as_str(), &m.value)))
                .collect();
            for s in 0..list.len() {
                if list[s].0 == "unlock"
                    && (0..s).any(|j| list[j].0 == "lock" && list[j].1.as_str() == list[s].1.as_str())
                {
                    continue;
                }
                let group = if list[s].0 == "lock" {
                    let name = list[s].1.as_str();
                    match (s + 1..list.len()).find(|&j| list[j].0 == "unlock" && list[j].1.as_str() == name) {
                        Some(j) => vec![s, j],
                        None => continue,
                    }
                } else {
                    vec![s]
                };
                if group.len() >= list.len() {
                    continue;
                }
                edits.push(self.edit(|root| {
                    let items = work_items_mut(root).expect("same tree");
                    if let Kind::Array(steps) = &mut items[it].value.kind {
                        let mut i = 0;
                        steps.retain(|_| {
                            i += 1;
                            !group.contains(&(i - 1))
                        });
                    }
                }));
            }
        }
    }
}

/// The members of `proxysched.workqueues.items`.
fn work_items(root: &Node) -> Option<&[Member]> {
    let top = members(root);
    let ps = &top[last_index(top, "proxysched")?].value;
    let wq = &members(ps)[last_index(members(ps), "workqueues")?].value;
    let items = &members(wq)[last_index(members(wq), "items")?].value;
    items.as_object()
}

fn work_items_mut(root: &mut Node) -> Option<&mut Vec<Member>> {
    let ps = Tree::proxysched_mut(root)?;
    let wq = ps.iter_mut().rev().find(|m| m.key == "workqueues")?;
    let Kind::Object(wq) = &mut wq.value.kind else {
        return None;
    };
    let items = wq.iter_mut().rev().find(|m| m.key == "items")?;
    match &mut items.value.kind {
        Kind::Object(m) => Some(m),
        _ => None,
    }
}

/// Halve an integer value, not below `min` (negative values, such as loop -1, stay).
fn halve_value(value: &mut Node, min: i128) {
    if let Some(v) = value.as_integer() {
        if v > min {
            value.kind = number((v / 2).max(min) as u64);
        }
    }
}

fn halve_key(obj: &mut [Member], key: &str, min: i128) {
    for m in obj.iter_mut().filter(|m| m.key == key) {
        halve_value(&mut m.value, min);
    }
}

/// Every `cpus` mask and `queue_work` CPU of the tree, taken modulo `n`.
fn remap_cpus(root: &mut Node, n: u64) {
    fn walk(node: &mut Node, n: u64, parent_key: &str) {
        match &mut node.kind {
            Kind::Object(members) => {
                for m in members.iter_mut() {
                    if m.key == "cpus" && parent_key != "proxysched" {
                        if let Kind::Array(items) = &mut m.value.kind {
                            let mut cpus: Vec<u64> = items
                                .iter()
                                .filter_map(|c| c.as_integer())
                                .map(|c| (c.max(0) as u64) % n)
                                .collect();
                            cpus.sort_unstable();
                            cpus.dedup();
                            *items = cpus
                                .into_iter()
                                .map(|c| Node {
                                    kind: number(c),
                                    pos: Default::default(),
                                })
                                .collect();
                        }
                    } else if m.key == "cpu" && parent_key.starts_with("queue_work") {
                        if let Some(c) = m.value.as_integer() {
                            m.value.kind = number((c.max(0) as u64) % n);
                        }
                    } else {
                        let key = m.key.clone();
                        walk(&mut m.value, n, &key);
                    }
                }
            }
            Kind::Array(items) => {
                for item in items.iter_mut() {
                    walk(item, n, parent_key);
                }
            }
            _ => {}
        }
    }
    walk(root, n, "");
}
