//! Tickless idle (`CONFIG_NO_HZ_IDLE`) and the nohz idle load balancer (ILB).
//!
//! An idle CPU stops its periodic tick (`tick_nohz_idle_stop_tick()`) unless another timer of
//! its own is due before the next jiffy, and joins `nohz.idle_cpus_mask`. It then no longer
//! balances for itself: a busy CPU's tick (`nohz_balancer_kick()`) picks the first idle CPU of
//! the mask as the idle load balancer and sends it a kick; that CPU's SCHED_SOFTIRQ runs the
//! periodic balance pass on behalf of every tickless idle CPU whose pass is due, itself last
//! (`_nohz_idle_balance()`). A CPU leaving idle restarts its tick at the next jiffy boundary
//! (`tick_nohz_idle_exit()`) and leaves the mask at its first busy tick.
//!
//! Switch: `nohz_idle`, on by default in every model (`CONFIG_NO_HZ_IDLE=y` in the common
//! distribution configs); off gives back periodic ticks on idle CPUs, each balancing for itself.
//!
//! Linux: kernel/time/tick-sched.c (tick_nohz_idle_stop_tick, tick_nohz_next_event,
//! tick_nohz_idle_exit, tick_nohz_restart_sched_tick), kernel/sched/fair.c (nohz_balancer_kick,
//! kick_ilb, find_new_ilb, nohz_balance_enter_idle, nohz_balance_exit_idle, nohz_csd_func,
//! nohz_idle_balance, _nohz_idle_balance, sched_balance_softirq), as of Linux 6.12–6.18.
//!
//! Deviation: CPU 0 keeps the timekeeping duty (`tick_do_timer_cpu`) and never stops its tick,
//! so the model's stall watchdog, which runs from CPU 0's tick, keeps running; Linux lets the
//! last timekeeper stop too, bounded by the clocksource's max deferment.
//!
//! Deviation: the model keeps no PELT averages (blocked load), so there is no
//! `NOHZ_STATS_KICK`/`NOHZ_NEWILB_KICK` and no `nohz.has_blocked` bookkeeping; `nohz.next_balance`
//! is kept by the ILB pass alone (no `NOHZ_NEXT_KICK`). `nohz_balancer_kick()` kicks for the two
//! load conditions the model has (two tasks on the busy CPU; two busy CPUs in its LLC), not for
//! capacity pressure, misfit or asymmetric packing, which the model lacks. No `tick_stop`
//! tracepoint is emitted.

use sim::{CpuId, CpuMask};

use crate::sched::core::{ipi, send_ipi, update_rq_clock, Kernel};
use crate::sched::fair::idle_cpu;
use crate::sched::SchedState;
use crate::time::TimerFn;
use crate::tracepoints::IpiReason;

/// `NOHZ_BALANCE_KICK`: run the periodic balance pass for the tickless idle CPUs.
pub const NOHZ_BALANCE_KICK: u32 = 1 << 1;
/// `NOHZ_KICK_MASK` as far as the model has kicks.
pub const NOHZ_KICK_MASK: u32 = NOHZ_BALANCE_KICK;

/// The global `nohz` state of kernel/sched/fair.c and the LLCs' busy counts.
#[derive(Clone, Debug, Default)]
pub struct Nohz {
    /// `nohz.idle_cpus_mask`: CPUs idle with their tick stopped.
    pub idle_cpus_mask: CpuMask,
    /// `nohz.nr_cpus`.
    pub nr_cpus: u32,
    /// `nohz.next_balance`: the earliest jiffy a tickless CPU's balance pass is due.
    pub next_balance: u64,
    /// `sd_llc_shared->nr_busy_cpus`, by LLC id.
    pub nr_busy_cpus: Vec<u32>,
    /// `sd_llc->nohz_idle` of each CPU: its LLC count already has it as idle.
    pub sd_nohz_idle: Vec<bool>,
}

impl Nohz {
    /// The state at boot: every CPU busy in its LLC (`nr_busy_cpus = sd_weight`).
    pub fn new(llc_id: &[u32]) -> Nohz {
        let nllc = llc_id.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
        let mut nr_busy_cpus = vec![0; nllc];
        for &l in llc_id {
            nr_busy_cpus[l as usize] += 1;
        }
        Nohz {
            nr_busy_cpus,
            sd_nohz_idle: vec![false; llc_id.len()],
            ..Nohz::default()
        }
    }
}

/// Per-CPU nohz state: `tick_sched` and the rq fields of fair.c.
#[derive(Clone, Debug, Default)]
pub struct RqNohz {
    /// `ts->flags & TS_FLAG_STOPPED`: the idle tick is stopped.
    pub tick_stopped: bool,
    /// `rq->nohz_tick_stopped`: this CPU is in `nohz.idle_cpus_mask`.
    pub nohz_tick_stopped: bool,
    /// `rq->idle_balance`: the CPU was idle when its tick or its kick last looked.
    pub idle_balance: bool,
    /// `nohz_flags(cpu)`: kicks sent to this CPU and not yet taken by `nohz_csd_func()`.
    pub flags: u32,
    /// `rq->nohz_idle_balance`: the kicks its SCHED_SOFTIRQ is to run.
    pub nohz_idle_balance: u32,
    /// `rq->nohz_csd` is queued on this CPU and has not run yet.
    pub csd_pending: bool,
}

/// Whether `cpu` may stop its tick when idle (the switch, and the timekeeping CPU).
fn may_stop_tick(s: &SchedState, cpu: CpuId) -> bool {
    s.feat.nohz_idle && cpu != CpuId(0) && s.nr_cpus() > 1
}

/// `tick_nohz_idle_stop_tick()` on entry to the idle wait: stop the tick unless another timer
/// of this CPU expires by the next jiffy boundary (`tick_nohz_next_event()`), and join the
/// tickless CPUs (`nohz_balance_enter_idle()`).
///
/// Linux: kernel/time/tick-sched.c tick_nohz_idle_stop_tick(), tick_nohz_next_event(),
/// tick_nohz_stop_tick().
pub fn tick_nohz_idle_stop_tick(s: &mut SchedState, cpu: CpuId) {
    if !may_stop_tick(s, cpu) || s.rqs[cpu.idx()].nohz.tick_stopped {
        return;
    }
    let tick = s.tun.tick_ns();
    let next_jiffy = (s.m.now() / tick + 1) * tick;
    let next_other = s.hrtimers[cpu.idx()]
        .iter()
        .find(|t| t.func != TimerFn::Tick)
        .map(|t| t.hard_ns);
    if next_other.is_some_and(|at| at <= next_jiffy) {
        return;
    }
    crate::time::hrtimer_cancel_on(s, cpu, TimerFn::Tick);
    s.rqs[cpu.idx()].nohz.tick_stopped = true;
    nohz_balance_enter_idle(s, cpu);
}

/// `tick_nohz_idle_exit()`: leaving idle with the tick stopped restarts it at the next jiffy
/// boundary (`tick_nohz_restart_sched_tick()`, `hrtimer_forward()` from the last tick). The CPU
/// stays in the nohz mask until its first busy tick.
///
/// Linux: kernel/time/tick-sched.c tick_nohz_idle_exit(), tick_nohz_restart_sched_tick().
pub fn tick_nohz_idle_exit(s: &mut SchedState, cpu: CpuId) {
    if !std::mem::take(&mut s.rqs[cpu.idx()].nohz.tick_stopped) {
        return;
    }
    let tick = s.tun.tick_ns();
    let next = (s.m.now() / tick + 1) * tick;
    crate::time::hrtimer_start(s, cpu, next, 0, TimerFn::Tick);
}

/// `nohz_balance_enter_idle()`: `cpu` joins `nohz.idle_cpus_mask` and stops counting as busy
/// in its LLC (`set_cpu_sd_state_idle()`).
///
/// Linux: kernel/sched/fair.c nohz_balance_enter_idle(), set_cpu_sd_state_idle().
pub fn nohz_balance_enter_idle(s: &mut SchedState, cpu: CpuId) {
    if s.rqs[cpu.idx()].nohz.nohz_tick_stopped {
        return;
    }
    s.rqs[cpu.idx()].nohz.nohz_tick_stopped = true;
    s.nohz.idle_cpus_mask.set(cpu);
    s.nohz.nr_cpus += 1;
    if !std::mem::replace(&mut s.nohz.sd_nohz_idle[cpu.idx()], true) {
        let llc = s.topo.llc_id[cpu.idx()] as usize;
        s.nohz.nr_busy_cpus[llc] -= 1;
    }
}

/// `nohz_balance_exit_idle()`: at the first busy tick after idle, `cpu` leaves the mask and
/// counts as busy again (`set_cpu_sd_state_busy()`).
///
/// Linux: kernel/sched/fair.c nohz_balance_exit_idle(), set_cpu_sd_state_busy().
fn nohz_balance_exit_idle(s: &mut SchedState, cpu: CpuId) {
    if !s.rqs[cpu.idx()].nohz.nohz_tick_stopped {
        return;
    }
    s.rqs[cpu.idx()].nohz.nohz_tick_stopped = false;
    s.nohz.idle_cpus_mask.clear(cpu);
    s.nohz.nr_cpus -= 1;
    if std::mem::replace(&mut s.nohz.sd_nohz_idle[cpu.idx()], false) {
        let llc = s.topo.llc_id[cpu.idx()] as usize;
        s.nohz.nr_busy_cpus[llc] += 1;
    }
}

/// `nohz_balancer_kick()` from the tick of a busy CPU: leave the tickless set if still in it,
/// then, when some CPU is tickless and the nohz balance is due, kick an idle load balancer if
/// this CPU has two tasks or its LLC has two busy CPUs.
///
/// Linux: kernel/sched/fair.c nohz_balancer_kick() (called from sched_balance_trigger()).
pub fn nohz_balancer_kick(s: &mut SchedState, cpu: CpuId) {
    if !s.feat.nohz_idle {
        return;
    }
    let idle = idle_cpu(s, cpu);
    s.rqs[cpu.idx()].nohz.idle_balance = idle;
    if idle {
        return;
    }
    nohz_balance_exit_idle(s, cpu);
    if s.nohz.nr_cpus == 0 || s.jiffies < s.nohz.next_balance {
        return;
    }
    let llc = s.topo.llc_id[cpu.idx()] as usize;
    if s.rqs[cpu.idx()].nr_running >= 2 || s.nohz.nr_busy_cpus[llc] > 1 {
        kick_ilb(s, NOHZ_BALANCE_KICK);
    }
}

/// `find_new_ilb()`: the first CPU of the nohz mask, other than this one, that is idle.
///
/// Linux: kernel/sched/fair.c find_new_ilb().
fn find_new_ilb(s: &SchedState) -> Option<CpuId> {
    let this = s.m.this_cpu();
    s.nohz
        .idle_cpus_mask
        .iter()
        .find(|&c| c != this && idle_cpu(s, c))
}

/// `kick_ilb()`: pick the idle load balancer and send it the kick (`nohz_csd` by IPI; a
/// polling idle CPU is only flagged, as `send_call_function_single_ipi()` does through
/// `set_nr_if_polling()`). A CPU already kicked is not kicked again.
///
/// Linux: kernel/sched/fair.c kick_ilb(); kernel/smp.c send_call_function_single_ipi().
fn kick_ilb(s: &mut SchedState, flags: u32) {
    if flags & NOHZ_BALANCE_KICK != 0 {
        s.nohz.next_balance = s.jiffies + 1;
    }
    let Some(ilb) = find_new_ilb(s) else {
        return;
    };
    let rq = &mut s.rqs[ilb.idx()];
    let old = rq.nohz.flags;
    rq.nohz.flags |= flags;
    if old & NOHZ_KICK_MASK != 0 {
        return;
    }
    rq.nohz.csd_pending = true;
    let idle_task = rq.idle;
    if rq.polling {
        s.tasks[idle_task.idx()].need_resched = true;
        let at = s.m.now() + s.costs.poll_wake_ns;
        s.m.send_ipi(ilb, ipi::POLL_KICK, at);
    } else {
        send_ipi(s, ilb, IpiReason::NohzKick);
    }
}

/// `nohz_csd_func()` on the kicked CPU: take the kick flags and, if still idle, raise
/// SCHED_SOFTIRQ to run them.
///
/// Linux: kernel/sched/fair.c nohz_csd_func().
pub fn nohz_csd_func(s: &mut SchedState, cpu: CpuId) {
    let idle = idle_cpu(s, cpu);
    let rq = &mut s.rqs[cpu.idx()];
    rq.nohz.csd_pending = false;
    let flags = std::mem::take(&mut rq.nohz.flags);
    rq.nohz.idle_balance = idle;
    if idle {
        rq.nohz.nohz_idle_balance = flags;
        rq.balance_softirq_pending = true;
    }
}

/// SCHED_SOFTIRQ: the nohz pass if this CPU was kicked as the idle load balancer, else its own
/// periodic pass.
///
/// Linux: kernel/sched/fair.c sched_balance_softirq(), nohz_idle_balance().
pub async fn sched_balance_softirq(k: &Kernel, cpu: CpuId) {
    let flags = std::mem::take(&mut k.st().rqs[cpu.idx()].nohz.nohz_idle_balance);
    if flags != 0 && k.st().rqs[cpu.idx()].nohz.idle_balance {
        nohz_idle_balance_all(k, cpu, flags).await;
        return;
    }
    crate::sched::fair::sched_balance_periodic(k, cpu).await;
}

/// `_nohz_idle_balance()`: for every tickless idle CPU, starting after this one so that this
/// one comes last, run its periodic balance pass if due; stop early if this CPU got work.
/// Then `nohz.next_balance` becomes the earliest next pass among them.
///
/// Linux: kernel/sched/fair.c _nohz_idle_balance().
async fn nohz_idle_balance_all(k: &Kernel, this_cpu: CpuId, flags: u32) {
    let (cpus, mut next_balance) = {
        let s = k.st();
        let n = s.nr_cpus();
        let start = CpuId(((this_cpu.idx() + 1) % n) as u32);
        let cpus: Vec<CpuId> = s.nohz.idle_cpus_mask.iter_wrap(start).collect();
        (cpus, s.jiffies + 60 * s.tun.hz)
    };
    let mut update_next_balance = false;
    for balance_cpu in cpus {
        let (skip, this_busy) = {
            let s = k.st();
            let skip = !s.nohz.idle_cpus_mask.test(balance_cpu) || !idle_cpu(&s, balance_cpu);
            (skip, !idle_cpu(&s, this_cpu))
        };
        if skip {
            continue;
        }
        // This CPU got work: leave the others to the next balancer.
        if this_busy && k.need_resched() {
            return;
        }
        let due = {
            let s = k.st();
            s.jiffies >= s.rqs[balance_cpu.idx()].next_balance
        };
        if due {
            k.rq_lock(balance_cpu).await;
            update_rq_clock(&mut k.st(), balance_cpu);
            k.rq_unlock(balance_cpu).await;
            if flags & NOHZ_BALANCE_KICK != 0 {
                crate::sched::fair::sched_balance_periodic(k, balance_cpu).await;
            }
        }
        let nb = k.st().rqs[balance_cpu.idx()].next_balance;
        if next_balance > nb {
            next_balance = nb;
            update_next_balance = true;
        }
    }
    if update_next_balance {
        k.st().nohz.next_balance = next_balance;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use sim::{CpuId, CpuMask};
    use uapi::{SchedAttr, UserCtx, UserOp, UserProgram};

    use crate::sched::SchedState;
    use crate::system::{Config, System, TaskSpec};
    use crate::time::TimerFn;
    use crate::tracepoints::{Event, EventKind, EventSink, IpiReason};

    /// A thread that makes the requests of its list in order, then exits.
    struct Script(std::vec::IntoIter<UserOp>);

    impl UserProgram for Script {
        fn next_op(&mut self, _ctx: &UserCtx) -> UserOp {
            self.0.next().unwrap_or(UserOp::Exit)
        }
    }

    /// A sink the test can read after the run.
    struct Shared(Rc<RefCell<Vec<Event>>>);

    impl EventSink for Shared {
        fn event(&mut self, e: &Event) {
            self.0.borrow_mut().push(*e);
        }
    }

    fn system(nohz: bool, cpus: usize, ms: u64) -> (System, Rc<RefCell<Vec<Event>>>) {
        let mut cfg = Config::new(cpus);
        cfg.feat.nohz_idle = nohz;
        // Kicks travel as IPIs (visible in the trace), not as poll kicks.
        cfg.feat.idle_polling = false;
        cfg.limit_ns = ms * 1_000_000;
        let events = Rc::new(RefCell::new(Vec::new()));
        (System::new(cfg, Box::new(Shared(events.clone()))), events)
    }

    fn task(sys: &mut System, name: &str, cpus: &[u32], ops: Vec<UserOp>) {
        let mut mask = CpuMask::empty();
        for &c in cpus {
            mask.set(CpuId(c));
        }
        let thread = sys.k.st().tasks.len() as u32;
        sys.add_task(TaskSpec {
            name: name.to_string(),
            attr: SchedAttr::normal(0),
            cpus: Some(mask),
            thread,
            program: Box::new(Script(ops.into_iter())),
        });
    }

    /// The nohz mask and counts agree with the per-CPU state.
    fn check_nohz(s: &SchedState) -> Result<(), String> {
        let mut mask = CpuMask::default();
        for rq in &s.rqs {
            if rq.nohz.nohz_tick_stopped {
                mask.set(rq.cpu);
            }
            if rq.nohz.tick_stopped && !rq.nohz.nohz_tick_stopped {
                return Err(format!(
                    "cpu{}: tick stopped but not in nohz.idle_cpus_mask",
                    rq.cpu
                ));
            }
        }
        if mask != s.nohz.idle_cpus_mask || mask.weight() != s.nohz.nr_cpus {
            return Err(format!(
                "nohz.idle_cpus_mask {:?} (nr_cpus {}) != CPUs with nohz_tick_stopped {:?}",
                s.nohz.idle_cpus_mask, s.nohz.nr_cpus, mask
            ));
        }
        Ok(())
    }

    /// A task that runs on CPU 0 for the whole test.
    fn busy_on_cpu0(sys: &mut System) {
        task(
            sys,
            "busy",
            &[0],
            vec![UserOp::Run {
                work_ns: 1_000_000_000,
            }],
        );
    }

    /// Three CPUs, a task busy on CPU 0 only: CPUs 1 and 2 stop their tick and join the nohz
    /// mask (CPU 0 keeps the timekeeping tick); with the switch off every CPU keeps its tick.
    #[test]
    fn idle_cpus_stop_their_tick_only_with_nohz_idle() {
        for nohz in [true, false] {
            let (mut sys, _) = system(nohz, 3, 20);
            busy_on_cpu0(&mut sys);
            sys.run(&mut |_| {});
            let s = sys.k.st();
            let ticking: Vec<bool> = (0..3)
                .map(|c| s.hrtimers[c].iter().any(|t| t.func == TimerFn::Tick))
                .collect();
            if nohz {
                assert_eq!(ticking, [true, false, false]);
                assert!(s.rqs[1].nohz.tick_stopped && s.rqs[2].nohz.tick_stopped);
                let mut idle = CpuMask::empty();
                idle.set(CpuId(1));
                idle.set(CpuId(2));
                assert_eq!(s.nohz.idle_cpus_mask, idle);
                assert_eq!(s.nohz.nr_cpus, 2);
                // One LLC: only CPU 0 counts as busy.
                assert_eq!(s.nohz.nr_busy_cpus, [1]);
            } else {
                assert_eq!(ticking, [true, true, true]);
                assert!(s.nohz.idle_cpus_mask.is_empty());
            }
            check_nohz(&s).unwrap();
        }
    }

    /// Two hogs start on CPU 1 (then may run anywhere), CPU 0 is busy, CPU 2 idles tickless.
    /// CPU 1's tick sees two tasks and kicks CPU 2, the only tickless idle CPU; CPU 2's
    /// nohz pass balances for itself and pulls one hog, after which CPU 2 ticks again and
    /// leaves the nohz mask at its first busy tick.
    #[test]
    fn a_busy_cpu_kicks_the_idle_load_balancer_which_pulls() {
        let (mut sys, events) = system(true, 3, 30);
        busy_on_cpu0(&mut sys);
        for name in ["h1", "h2"] {
            task(
                &mut sys,
                name,
                &[1],
                vec![
                    UserOp::Run { work_ns: 3_000_000 },
                    UserOp::SetAffinity {
                        cpus: CpuMask::first_n(3),
                    },
                    UserOp::Run {
                        work_ns: 1_000_000_000,
                    },
                ],
            );
        }
        sys.run(&mut |_| {});
        let ev = events.borrow();
        let kick = ev
            .iter()
            .position(|e| {
                matches!(
                    e.kind,
                    EventKind::IpiSendCpu {
                        target_cpu: CpuId(2),
                        reason: IpiReason::NohzKick
                    }
                )
            })
            .expect("a kick_ilb IPI to CPU 2");
        assert_eq!(ev[kick].cpu, CpuId(1), "the overloaded CPU kicks");
        let pull = ev
            .iter()
            .position(|e| {
                matches!(
                    e.kind,
                    EventKind::SchedMigrateTask {
                        dest_cpu: CpuId(2),
                        ..
                    }
                )
            })
            .expect("a hog pulled to CPU 2");
        assert!(pull > kick, "the pull follows the kick");
        assert_eq!(ev[pull].cpu, CpuId(2), "CPU 2 pulls in its nohz softirq");
        // No periodic pass of CPU 2's own before the kick: it had no tick to run one.
        assert!(!ev[..kick].iter().any(|e| matches!(
            e.kind,
            EventKind::SchedMigrateTask {
                dest_cpu: CpuId(2),
                ..
            }
        )));
        let s = sys.k.st();
        assert!(
            s.hrtimers[2].iter().any(|t| t.func == TimerFn::Tick),
            "CPU 2 ticks again"
        );
        assert!(!s.nohz.idle_cpus_mask.test(CpuId(2)));
        assert_eq!(s.nohz.nr_busy_cpus, [3]);
        check_nohz(&s).unwrap();
    }
}
