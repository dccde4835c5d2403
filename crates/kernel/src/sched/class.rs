//! The ops table: one method of [`Class`] per `struct sched_class` member the model
//! implements, with every class's arm of a hook in one place.
//!
//! Linux: kernel/sched/sched.h struct sched_class, DEFINE_SCHED_CLASS().
//!
//! Why methods on the enum and not a trait with one impl per class: the set of classes is
//! closed and ordered (stop, deadline, RT, fair, idle; T-8), and the core iterates it in that
//! order (`for_each_class`). A `match` per hook keeps that order and the whole table for a
//! hook on one screen, needs no trait objects or generic plumbing, and lets two hooks be
//! `async` (the ones Linux lets drop the rq lock: `balance` and the push of `task_woken`)
//! without boxing futures. A trait would scatter each hook over five files, which is what a
//! reader of `core.c` does not have to do either: there the table is one struct literal per
//! class and the dispatch one indirect call.
//!
//! Every hook that takes a `cpu` runs with that CPU's rq lock held (`rq->__lock`), as Linux
//! requires, and asserts it on entry ([`lockdep_assert_rq_held`]: a failure ends the run as a
//! model assertion, exit 4 with a replay line). None may drop the lock except `balance` and
//! `task_woken`, which are the only `async` ones (S-4). `select_task_rq` runs under the
//! task's `pi_lock` instead (asserted by the core's `select_task_rq()`).
//!
//! Why no guard or token type proving the lock: the state is one arena borrowed between
//! awaits (`&mut SchedState`), and a lock is taken in one atomic stretch and dropped in
//! another, often in a different function (`__schedule()` takes it, `finish_task_switch()`
//! of the next task drops it). A token would have to outlive the borrow it proves things
//! about and travel through every await; the run-time assertion against the machine's
//! spinlock table checks the same thing at every hook without that plumbing. Each
//! method's doc names its Linux callers; the model's caller is the function of the same name
//! in [`core`](crate::sched::core) unless the doc says otherwise. A class without a Linux
//! method for a hook takes the arm Linux takes for a NULL pointer (the hook is skipped), and
//! a hook Linux fills with `BUG()` (idle and stop cannot be enqueued, changed into, ...)
//! panics: a model assertion, reported with a replay line.

use sim::CpuId;

use crate::sched::core::{lockdep_assert_rq_held, update_curr_common, Kernel};
use crate::sched::{
    deadline, fair, idle, rt, stop_task, Class, DequeueFlags, EnqueueFlags, SchedState, WakeFlags,
};
use crate::task::TaskId;

impl Class {
    /// `enqueue_task`: put `p` on this class's queue of `cpu` and count it in `nr_running`.
    /// Callers: `enqueue_task()` (from `activate_task()`, `ttwu_do_activate()`,
    /// `wake_up_new_task()`, `__sched_setscheduler()`, `rt_mutex_setprio()`). Rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::enqueue_task.
    pub fn enqueue_task(self, s: &mut SchedState, cpu: CpuId, p: TaskId, flags: EnqueueFlags) {
        lockdep_assert_rq_held(s, cpu);
        match self {
            Class::Stop => stop_task::enqueue_task_stop(s, cpu, p, flags),
            Class::Deadline => deadline::enqueue_task_dl(s, cpu, p, flags),
            Class::Rt => rt::enqueue_task_rt(s, cpu, p, flags),
            Class::Fair => fair::enqueue_task_fair(s, cpu, p, flags),
            // dequeue_task_idle() is a BUG(); there is no enqueue at all.
            Class::Idle => panic!("enqueue of a task in class {self:?}"),
        }
    }

    /// `dequeue_task`: take `p` off this class's queue of `cpu`. Returns `false` when the
    /// class keeps it queued (fair delayed dequeue, F-20). Callers: `dequeue_task()` (from
    /// `deactivate_task()`, `block_task()`, the setscheduler and PI paths). Rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::dequeue_task.
    pub fn dequeue_task(self, s: &mut SchedState, cpu: CpuId, p: TaskId, flags: DequeueFlags) -> bool {
        lockdep_assert_rq_held(s, cpu);
        match self {
            Class::Stop => stop_task::dequeue_task_stop(s, cpu, p, flags),
            Class::Deadline => deadline::dequeue_task_dl(s, cpu, p, flags),
            Class::Rt => rt::dequeue_task_rt(s, cpu, p, flags),
            Class::Fair => fair::dequeue_task_fair(s, cpu, p, flags),
            // dequeue_task_idle(): "bad: scheduling from the idle thread!".
            Class::Idle => panic!("dequeue of a task in class {self:?}"),
        }
    }

    /// `yield_task`: the donor of `cpu` gives up the rest of its turn. Caller:
    /// `do_sched_yield()`. Rq lock held. Stop and idle have no yield.
    ///
    /// Linux: kernel/sched/sched.h sched_class::yield_task.
    pub fn yield_task(self, s: &mut SchedState, cpu: CpuId) {
        lockdep_assert_rq_held(s, cpu);
        match self {
            Class::Deadline => deadline::yield_task_dl(s, cpu),
            Class::Rt => rt::yield_task_rt(s, cpu),
            Class::Fair => fair::yield_task_fair(s, cpu),
            Class::Stop | Class::Idle => {}
        }
    }

    /// `wakeup_preempt`: `p`, of the same class as the donor of `cpu`, became runnable there;
    /// decide whether the donor is preempted. Caller: `wakeup_preempt()`, which handles a
    /// class difference itself. Rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::wakeup_preempt.
    ///
    /// Deviation: Linux's stop and idle `wakeup_preempt` are never reached through a same-
    /// class wakeup (one stopper per CPU; idle is never woken); the model skips them.
    pub fn wakeup_preempt(self, s: &mut SchedState, cpu: CpuId, p: TaskId, wake_flags: WakeFlags) {
        lockdep_assert_rq_held(s, cpu);
        match self {
            Class::Deadline => deadline::wakeup_preempt_dl(s, cpu, p, wake_flags),
            Class::Rt => rt::wakeup_preempt_rt(s, cpu, p, wake_flags),
            Class::Fair => fair::wakeup_preempt_fair(s, cpu, p, wake_flags),
            Class::Stop | Class::Idle => {}
        }
    }

    /// `balance`: before the pick, let this class pull work to `cpu`; `true` when this class
    /// or a higher one now has a runnable task, which ends the pass. May drop and retake the
    /// rq lock (RT/DL pull, fair newidle balance), so `prev` is read by the caller at the
    /// moment of the call (v29 1/9). Caller: `prev_balance()` in `__pick_next_task()`. Rq lock
    /// held on entry and on return.
    ///
    /// Linux: kernel/sched/sched.h sched_class::balance.
    pub async fn balance(self, k: &Kernel, cpu: CpuId, prev: TaskId) -> bool {
        lockdep_assert_rq_held(&k.st(), cpu);
        match self {
            Class::Stop => stop_task::sched_stop_runnable(&k.st(), cpu),
            Class::Deadline => deadline::balance_dl(k, cpu, prev).await,
            Class::Rt => rt::balance_rt(k, cpu, prev).await,
            Class::Fair => fair::balance_fair(k, cpu).await,
            // balance_idle(): the idle task is always there.
            Class::Idle => true,
        }
    }

    /// `pick_task`: the task this class would run next on `cpu`, if any (not yet set as
    /// current). Caller: `__pick_next_task()`, highest class first. Rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::pick_task.
    pub fn pick_task(self, s: &mut SchedState, cpu: CpuId) -> Option<TaskId> {
        lockdep_assert_rq_held(s, cpu);
        match self {
            Class::Stop => stop_task::pick_task_stop(s, cpu),
            Class::Deadline => deadline::pick_task_dl(s, cpu),
            Class::Rt => rt::pick_task_rt(s, cpu),
            Class::Fair => fair::pick_task_fair(s, cpu),
            // pick_task_idle().
            Class::Idle => Some(s.rqs[cpu.idx()].idle),
        }
    }

    /// `put_prev_task`: `prev` stops being the donor of `cpu`: charge its time and return it
    /// to its queue. Callers: `put_prev_set_next_task()`, `__sched_setscheduler()`,
    /// `rt_mutex_setprio()`, the proxy missed-balance fix. Rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::put_prev_task.
    ///
    /// Deviation: `put_prev_task_stop()` is Linux's `update_curr_common()`, done inline here.
    pub fn put_prev_task(self, s: &mut SchedState, cpu: CpuId, prev: TaskId) {
        lockdep_assert_rq_held(s, cpu);
        match self {
            Class::Stop => {
                update_curr_common(s, cpu);
            }
            Class::Deadline => deadline::put_prev_task_dl(s, cpu, prev),
            Class::Rt => rt::put_prev_task_rt(s, cpu, prev),
            Class::Fair => fair::put_prev_task_fair(s, cpu, prev),
            // put_prev_task_idle() → dl_server_update_idle_time().
            Class::Idle => deadline::dl_server_update_idle_time(s, cpu, prev),
        }
    }

    /// `set_next_task`: `next` becomes the donor of `cpu` (`first`: a new pick rather than a
    /// re-set after a class or priority change). Callers: as `put_prev_task`. Rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::set_next_task.
    pub fn set_next_task(self, s: &mut SchedState, cpu: CpuId, next: TaskId, first: bool) {
        lockdep_assert_rq_held(s, cpu);
        match self {
            // set_next_task_stop(): start the runtime interval.
            Class::Stop => s.tasks[next.idx()].se.exec_start = s.rqs[cpu.idx()].clock_task,
            Class::Deadline => deadline::set_next_task_dl(s, cpu, next, first),
            Class::Rt => rt::set_next_task_rt(s, cpu, next, first),
            Class::Fair => fair::set_next_task_fair(s, cpu, next, first),
            Class::Idle => idle::set_next_task_idle(s, cpu, next),
        }
    }

    /// `select_task_rq`: the CPU `p` (allowed on more than one) should wake or fork on,
    /// starting from `cpu`. Caller: `select_task_rq()`, with `p->pi_lock` held (no rq lock).
    ///
    /// Linux: kernel/sched/sched.h sched_class::select_task_rq.
    pub fn select_task_rq(self, s: &mut SchedState, p: TaskId, cpu: CpuId, wake_flags: WakeFlags) -> CpuId {
        match self {
            Class::Deadline => deadline::select_task_rq_dl(s, p, cpu, wake_flags),
            Class::Rt => rt::select_task_rq_rt(s, p, cpu, wake_flags),
            Class::Fair => fair::select_task_rq_fair(s, p, cpu, wake_flags),
            // select_task_rq_stop()/_idle(): never migrated by a wakeup.
            Class::Stop | Class::Idle => cpu,
        }
    }

    /// `migrate_task_rq`: `p` is about to move to `new_cpu` (`task_cpu` not yet changed).
    /// Caller: `set_task_cpu()`, with `p->pi_lock` or the source rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::migrate_task_rq.
    ///
    /// Deviation: the deadline class's `migrate_task_rq_dl()` moves a sleeper's bandwidth
    /// between root domains; the model has one root domain, so only fair has work here.
    pub fn migrate_task_rq(self, s: &mut SchedState, p: TaskId, new_cpu: CpuId) {
        match self {
            Class::Fair => fair::migrate_task_rq_fair(s, p, new_cpu),
            Class::Stop | Class::Deadline | Class::Rt | Class::Idle => {}
        }
    }

    /// `task_woken`: after `p` was woken onto `cpu` and did not preempt, push it away if the
    /// rq is overloaded. Callers: `ttwu_do_activate()`, `wake_up_new_task()`. Rq lock held;
    /// the push may drop and retake it.
    ///
    /// Linux: kernel/sched/sched.h sched_class::task_woken.
    pub async fn task_woken(self, k: &Kernel, cpu: CpuId, p: TaskId) {
        lockdep_assert_rq_held(&k.st(), cpu);
        match self {
            Class::Deadline => deadline::task_woken_dl(k, cpu, p).await,
            Class::Rt => rt::task_woken_rt(k, cpu, p).await,
            Class::Stop | Class::Fair | Class::Idle => {}
        }
    }

    /// `task_tick`: the tick found `curr` as the donor of `cpu`: charge it and decide about
    /// preemption. Caller: `sched_tick()`. Rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::task_tick.
    ///
    /// Deviation: Linux's `task_tick_stop()` does nothing; the model charges a running
    /// stopper at the tick (`update_curr_common`), so its runtime shows before it is put.
    pub fn task_tick(self, s: &mut SchedState, cpu: CpuId, curr: TaskId) {
        lockdep_assert_rq_held(s, cpu);
        match self {
            Class::Stop => {
                update_curr_common(s, cpu);
            }
            Class::Deadline => deadline::task_tick_dl(s, cpu, curr),
            Class::Rt => rt::task_tick_rt(s, cpu, curr),
            Class::Fair => fair::task_tick_fair(s, cpu, curr),
            Class::Idle => {}
        }
    }

    /// `switched_from`: `p` left this class (already requeued in the new one). Caller:    /// `check_class_changed()`. Rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::switched_from.
    pub fn switched_from(self, s: &mut SchedState, cpu: CpuId, p: TaskId) {
        lockdep_assert_rq_held(s, cpu);
        match self {
            Class::Deadline => deadline::switched_from_dl(s, cpu, p),
            Class::Rt => rt::switched_from_rt(s, cpu, p),
            Class::Fair => fair::switched_from_fair(s, cpu, p),
            // No task leaves the stop or idle class (their tasks are fixed at boot).
            Class::Stop | Class::Idle => panic!("a task left class {self:?}"),
        }
    }

    /// `switched_to`: `p` joined this class (already requeued in it). Caller:
    /// `check_class_changed()`. Rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::switched_to.
    pub fn switched_to(self, s: &mut SchedState, cpu: CpuId, p: TaskId) {
        lockdep_assert_rq_held(s, cpu);
        match self {
            Class::Deadline => deadline::switched_to_dl(s, cpu, p),
            Class::Rt => rt::switched_to_rt(s, cpu, p),
            Class::Fair => fair::switched_to_fair(s, cpu, p),
            // switched_to_idle() and switching_to_stop() are BUG().
            Class::Stop | Class::Idle => panic!("a task joined class {self:?}"),
        }
    }

    /// `prio_changed`: `p`'s priority (or DL parameters) changed within this class, from
    /// `oldprio`. Caller: `check_class_changed()`. Rq lock held.
    ///
    /// Linux: kernel/sched/sched.h sched_class::prio_changed.
    pub fn prio_changed(self, s: &mut SchedState, cpu: CpuId, p: TaskId, oldprio: i32) {
        lockdep_assert_rq_held(s, cpu);
        match self {
            Class::Deadline => deadline::prio_changed_dl(s, cpu, p),
            Class::Rt => rt::prio_changed_rt(s, cpu, p, oldprio),
            Class::Fair => fair::prio_changed_fair(s, cpu, p, oldprio),
            // prio_changed_stop()/_idle() are BUG() for a real change.
            Class::Stop | Class::Idle => panic!("priority change of a task in class {self:?}"),
        }
    }

    /// Fresh per-class state for `p`, a new task or one that just changed class. Caller:
    /// `__sched_setscheduler()` and task creation in `system`. Not a `struct sched_class`
    /// member: Linux initialises every class's entity in `__sched_fork()` and keeps them
    /// all; the model resets the one class the task now uses.
    ///
    /// Linux: kernel/sched/core.c __sched_fork().
    pub fn init_entity(self, s: &mut SchedState, p: TaskId) {
        match self {
            Class::Fair => fair::init_entity_fair(s, p),
            Class::Rt => rt::init_entity_rt(s, p),
            Class::Deadline => deadline::init_entity_dl(s, p),
            Class::Stop | Class::Idle => {}
        }
    }
}

/// `check_class_changed()`: after `p`'s class or priority was changed and it was requeued,
/// run the class hooks: `switched_from` of the old class and `switched_to` of the new one, or
/// the new class's `prio_changed` when the class stayed but the priority moved (always for a
/// DL task, whose parameters may have changed at equal prio). Callers: `__sched_setscheduler()`
/// and `rt_mutex_setprio()`. Rq lock of `cpu` held; balance callbacks the hooks queue are the
/// caller's to run.
///
/// Linux: kernel/sched/syscalls.c check_class_changed().
pub fn check_class_changed(s: &mut SchedState, cpu: CpuId, p: TaskId, prev_class: Class, oldprio: i32) {
    let (class, prio) = (s.tasks[p.idx()].class, s.tasks[p.idx()].prio);
    if class != prev_class {
        prev_class.switched_from(s, cpu, p);
        class.switched_to(s, cpu, p);
    } else if oldprio != prio || class == Class::Deadline {
        class.prio_changed(s, cpu, p, oldprio);
    }
}

#[cfg(test)]
mod tests {
    //! The hooks' lock assertion: a hook run from a machine step must hold the rq lock of the
    //! CPU whose queue it touches; holding another CPU's is not enough.

    use std::future::Future;
    use std::rc::Rc;

    use sim::{CpuId, Executor};

    use crate::sched::core::{self, Kernel};
    use crate::sched::{Costs, EnqueueFlags, SchedState};
    use crate::task::{task_ctx, TaskId};
    use crate::tracepoints::NullSink;

    /// Two idle CPUs with zero costs.
    fn kernel() -> Rc<Kernel> {
        let mut cfg = crate::system::Config::new(2);
        cfg.seed = 1;
        cfg.costs = Costs::zero();
        Kernel::from_state(crate::system::new_sched_state(&cfg, Box::new(NullSink)))
    }

    /// Run `f` as a context booted on CPU 0 until it parks.
    fn run_on_cpu0<F: Future<Output = ()> + 'static>(k: &Rc<Kernel>, f: F) {
        let m = k.m.clone();
        let m2 = m.clone();
        m.spawn(task_ctx(TaskId(0)), async move {
            f.await;
            m2.halt().await;
        });
        m.boot_cpu(CpuId(0), task_ctx(TaskId(0)));
        Executor::new(m).run(1_000_000, &mut |_| true);
    }

    /// The stopper of `cpu` (queued by `enqueue_task_stop`, which only counts it).
    fn stopper(s: &SchedState, cpu: CpuId) -> TaskId {
        s.rqs[cpu.idx()].stop
    }

    /// Queue cpu1's stopper from a step of CPU 0 holding the rq lock `locked` (if any).
    fn enqueue_stopper_of_cpu1(locked: Option<CpuId>) -> Rc<Kernel> {
        let k = kernel();
        let k2 = k.clone();
        run_on_cpu0(&k, async move {
            if let Some(l) = locked {
                k2.rq_lock(l).await;
            }
            {
                let s = &mut *k2.st();
                let p = stopper(s, CpuId(1));
                core::enqueue_task(s, CpuId(1), p, EnqueueFlags::empty());
            }
            if let Some(l) = locked {
                k2.rq_unlock(l).await;
            }
        });
        k
    }

    #[test]
    fn a_hook_with_the_rq_lock_held_runs() {
        let k = enqueue_stopper_of_cpu1(Some(CpuId(1)));
        assert_eq!(k.st().rqs[1].nr_running, 1);
    }

    #[test]
    #[should_panic(expected = "lockdep: cpu0 touches cpu1's runqueue without its rq lock")]
    fn a_hook_without_the_rq_lock_fails_the_run() {
        enqueue_stopper_of_cpu1(None);
    }

    #[test]
    #[should_panic(expected = "lockdep: cpu0 touches cpu1's runqueue without its rq lock")]
    fn another_cpus_rq_lock_is_not_enough() {
        enqueue_stopper_of_cpu1(Some(CpuId(0)));
    }
}
