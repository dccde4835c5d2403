//! SCHED_DEADLINE scenarios (spec §6): CBS budgets and throttling, EDF and global EDF,
//! admission control, yield, class order. Each test runs a `scenarios/dl_*.json` file with
//! every invariant checked after every step (the `dl_rq_consistent` and `dl_bw_admitted`
//! invariants among them) and asserts what a wrong model would get wrong.

mod common;

use common::*;
use kernel::tracepoints::{EventKind, Pid, PrevState};

const MS: u64 = 1_000_000;
const US: u64 = 1_000;

fn misses(s: &Scenario, pid: Pid) -> u64 {
    s.result.metrics.task(pid).unwrap().deadline_misses
}

fn throttles(s: &Scenario, pid: Pid) -> u64 {
    s.result.metrics.task(pid).unwrap().dl_throttles
}

/// Times `pid` switched out asleep (`prev_state=S`): the end of each rt-app job here.
fn sleeps(s: &Scenario, pid: Pid) -> Vec<u64> {
    s.events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::SchedSwitch { prev, prev_state, .. }
                if prev.pid == pid && prev_state == PrevState::Sleeping =>
            {
                Some(e.time_ns)
            }
            _ => None,
        })
        .collect()
}

/// When `pid` became SCHED_DEADLINE.
fn became_dl(s: &Scenario, pid: Pid) -> u64 {
    s.events
        .iter()
        .find_map(|e| match e.kind {
            EventKind::SchedSetattr { pid: p, policy, .. }
                if p == pid && policy == uapi::Policy::Deadline =>
            {
                Some(e.time_ns)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("pid {pid} never became SCHED_DEADLINE"))
}

/// (time, deadline) of each `DlDeadlineMiss` of `pid`.
fn miss_events(s: &Scenario, pid: Pid) -> Vec<(u64, u64)> {
    s.events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::DlDeadlineMiss { pid: p, deadline_ns } if p == pid => Some((e.time_ns, deadline_ns)),
            _ => None,
        })
        .collect()
}

/// (a) Total utilisation 0.9 on one CPU (admitted exactly at the limit) with a fair hog:
/// every job of every task ends within its period's deadline, nothing is throttled, and the
/// hog gets what is left. Run as SCHED_OTHER (the removed deviation), the tasks would share
/// the CPU with the hog by weight and jobs would end late.
#[test]
fn dl_util90_one_cpu_meets_every_deadline_for_10s() {
    let s = run("dl_util90_one_cpu.json");
    assert_eq!(s.result.outcome.end_reason.as_str(), "duration");
    // (name, first release, runtime of the job, period).
    let tasks = [
        ("dl_a-0", MS, 2800 * US, 10 * MS),
        ("dl_b-1", 4 * MS, 9500 * US, 50 * MS),
        ("dl_c-2", 20 * MS, 38 * MS, 100 * MS),
    ];
    let mut dl_runtime = 0;
    for (name, first, run_ns, period) in tasks {
        let pid = s.pid(name);
        // Each became SCHED_DEADLINE at its first release (the CPU was idle), so its CBS
        // instances line up with its rt-app periods.
        let at = became_dl(&s, pid);
        assert!(at >= first && at < first + 50 * US, "{name} became DL at {at}");
        assert_eq!(misses(&s, pid), 0, "{name} missed");
        assert_eq!(throttles(&s, pid), 0, "{name} was throttled");
        let ends: Vec<u64> = sleeps(&s, pid).into_iter().filter(|&t| t > first).collect();
        let jobs = (10_000 * MS - first).div_ceil(period);
        assert_eq!(ends.len() as u64, jobs, "{name}: one job per period");
        for (i, &end) in ends.iter().enumerate() {
            let release = first + i as u64 * period;
            assert!(
                end >= release + run_ns && end <= release + period,
                "{name} job {i} released at {release} ended at {end}"
            );
        }
        let rt = s.runtime_ns(pid);
        assert!(
            rt >= jobs * run_ns && rt <= jobs * run_ns + jobs * 100 * US,
            "{name} ran {rt} for {jobs} jobs of {run_ns}"
        );
        dl_runtime += rt;
    }
    // The hog gets the rest of the 10 s after it starts at 30 ms (minus overheads).
    let hog = s.runtime_ns(s.pid("hog-3"));
    assert!(hog + dl_runtime <= 10_000 * MS);
    assert!(hog > 10_000 * MS - dl_runtime - 200 * MS, "hog ran {hog}");
}

/// (b) CBS throttling: a task that wants the CPU all the time with Q = 2 ms, P = 10 ms runs
/// exactly 2 ms of every period (zero costs, overrun caught at the 1 ms tick with no slack):
/// 100 periods from 1 ms to 1 s, one throttle each, and each instance unfinished at its
/// deadline. The fair hog gets exactly the rest.
#[test]
fn dl_cbs_overrun_throttles_once_per_period_and_shares_q_over_p() {
    let s = run("dl_cbs_overrun.json");
    let (over, hog) = (s.pid("over-0"), s.pid("hog-1"));
    assert_eq!(became_dl(&s, over), MS);
    assert_eq!(throttles(&s, over), 100);
    assert_eq!(s.runtime_ns(over), 200 * MS, "Q/P of 999 ms, in whole periods");
    assert_eq!(s.runtime_ns(hog), 800 * MS);
    // Switched in at every period start (preempting the hog) and out 2 ms later.
    let ins: Vec<u64> = s
        .switch_ins(over)
        .into_iter()
        .map(|(t, _)| t)
        .filter(|&t| t > MS)
        .collect();
    let want: Vec<u64> = (1..100).map(|k| MS + k * 10 * MS).collect();
    assert_eq!(ins, want);
    let outs: Vec<u64> = s
        .switch_outs(over)
        .into_iter()
        .map(|(t, _, _)| t)
        .filter(|&t| t > MS)
        .collect();
    let want: Vec<u64> = (0..100).map(|k| 3 * MS + k * 10 * MS).collect();
    assert_eq!(outs, want);
    // The miss of each instance is counted at its replenishment (its deadline): 99 of them.
    let m = miss_events(&s, over);
    assert_eq!(m.len(), 99);
    assert_eq!(misses(&s, over), 99);
    for (k, &(t, d)) in m.iter().enumerate() {
        assert_eq!(d, 11 * MS + k as u64 * 10 * MS);
        assert_eq!(
            t, d,
            "counted when the replenishment timer finds it still runnable"
        );
    }
}

/// (c) Dhall's effect on 2 CPUs: at 10.5 ms the two light tasks' earlier deadlines take both
/// CPUs from the heavy task, which resumes 1.9 ms later and cannot finish its 9.5 ms job by
/// its deadline, although the reserved utilisation (about 1.31) is far below 2.
#[test]
fn dl_dhall_effect_heavy_task_misses_under_global_edf() {
    let s = run("dl_dhall_2cpus.json");
    let (l1, l2, heavy) = (s.pid("light1-0"), s.pid("light2-1"), s.pid("heavy-2"));
    assert_eq!(became_dl(&s, l1), 500 * US);
    assert_eq!(became_dl(&s, l2), 500 * US);
    assert_eq!(became_dl(&s, heavy), 10 * MS);
    assert_eq!(misses(&s, l1), 0);
    assert_eq!(misses(&s, l2), 0);
    // The lights take both CPUs at 10.5 ms; the heavy task is back when the first finishes.
    assert!(
        s.switch_outs(heavy).iter().any(|&(t, _, _)| t == 10_500 * US),
        "{:?}",
        s.switch_outs(heavy)
    );
    let h_in = s
        .switch_ins(heavy)
        .into_iter()
        .map(|(t, _)| t)
        .find(|&t| t > 10_500 * US)
        .unwrap();
    assert_eq!(h_in, 12_400 * US);
    // Its first job needs the CPU until 21.4 ms, past its deadline (21 ms): the first miss
    // is that instance, counted at the first charge after 21 ms (the 22 ms tick). It ends
    // late for its next release (21 ms), so rt-app goes on without sleeping.
    let m = miss_events(&s, heavy);
    assert!(!m.is_empty(), "the heavy task never missed");
    assert_eq!(m[0].1, 21 * MS, "first miss: the first instance");
    assert!(m[0].0 > 21 * MS && m[0].0 <= 22 * MS, "counted at {}", m[0].0);
    assert!(!sleeps(&s, heavy).iter().any(|&t| t > 10 * MS && t < 22 * MS));
    assert!(misses(&s, heavy) >= 5, "heavy missed {} times", misses(&s, heavy));
}

/// The CPU `pid` runs on after every event up to and including time `t`, if any.
fn running_at(s: &Scenario, pid: Pid, t: u64) -> Option<u32> {
    let mut on = None;
    for e in s.events.iter().take_while(|e| e.time_ns <= t) {
        if let EventKind::SchedSwitch { prev, next, .. } = e.kind {
            if next.pid == pid {
                on = Some(e.cpu.0);
            } else if prev.pid == pid {
                on = None;
            }
        }
    }
    on
}

/// Global EDF (D-12): when C wakes with an earlier deadline than both running tasks, the two
/// earliest deadlines (C, B) run and A, the latest, waits. C wakes on B's CPU with its stale
/// deadline (select_task_rq_dl sees the old one, as in Linux) and preempts B there; the push
/// after that pick moves B to A's CPU, where it preempts A at the same instant.
#[test]
fn dl_global_edf_runs_the_two_earliest_deadlines() {
    let s = run_with("dl_global_edf_2cpus.json", |a| a.duration = Some(0.05));
    let (c, a, b) = (s.pid("c-0"), s.pid("a-1"), s.pid("b-2"));
    for p in [a, b, c] {
        assert_eq!(became_dl(&s, p), 0);
    }
    let (a_cpu, b_cpu) = (
        running_at(&s, a, 5 * MS - 1).unwrap(),
        running_at(&s, b, 5 * MS - 1).unwrap(),
    );
    assert_ne!(a_cpu, b_cpu, "A and B on different CPUs before C wakes");
    assert_eq!(running_at(&s, c, 5 * MS), Some(b_cpu), "C wakes where it slept");
    assert_eq!(running_at(&s, b, 5 * MS), Some(a_cpu), "B pushed to A's CPU");
    assert_eq!(running_at(&s, a, 5 * MS), None, "A, the latest deadline, waits");
    assert!(s
        .switch_outs(a)
        .iter()
        .any(|&(t, cpu, next)| t == 5 * MS && cpu == a_cpu && next == b));
    // C runs its 1.5 ms and sleeps; A gets a CPU back at once.
    assert!(sleeps(&s, c).contains(&(6_500 * US)), "{:?}", sleeps(&s, c));
    assert!(running_at(&s, a, 6_500 * US).is_some());
    assert!(running_at(&s, b, 6_500 * US).is_some());
}

/// (d) Admission control: on one CPU the third reservation would make 0.95 > 0.90, so its
/// sched_setattr fails with EBUSY and rt-app exits at that moment; without the fair server
/// (limit 0.95) or on two CPUs (limit 1.80) all three are admitted and the run goes on.
#[test]
fn dl_admission_rejects_the_task_that_overflows() {
    let s = run("dl_admission.json");
    let (a, b, c) = (s.pid("a-0"), s.pid("b-1"), s.pid("c-2"));
    assert_eq!(became_dl(&s, a), MS);
    assert_eq!(became_dl(&s, b), 2 * MS);
    assert!(
        !s.events.iter().any(|e| matches!(e.kind, EventKind::SchedSetattr { pid, policy: uapi::Policy::Deadline, .. } if pid == c)),
        "c must not become SCHED_DEADLINE"
    );
    let o = &s.result.outcome;
    assert_eq!(o.end_reason.as_str(), "workload_failed");
    assert_eq!(o.sim_time_ns, 3 * MS, "rt-app exits at the failing call");
    assert!(
        o.report.contains("c-2") && o.report.contains("-16"),
        "{}",
        o.report
    );
    assert_eq!(s.result.metrics.task(c).unwrap().policy, "SCHED_OTHER");

    // Without the fair server its 0.05 is free: 0.95 fits on one CPU.
    let s1 = run_with("dl_admission.json", |a| {
        a.features.push("dl_server=off".to_string())
    });
    assert_eq!(s1.result.outcome.end_reason.as_str(), "duration");
    assert_eq!(became_dl(&s1, s1.pid("c-2")), 3 * MS);

    let s2 = run_with("dl_admission.json", |a| a.cpus = Some(2));
    assert_eq!(s2.result.outcome.end_reason.as_str(), "duration");
    assert_eq!(became_dl(&s2, s2.pid("c-2")), 3 * MS);
    for name in ["a-0", "b-1", "c-2"] {
        assert_eq!(misses(&s2, s2.pid(name)), 0, "{name}");
    }
}

/// A SCHED_DEADLINE task cannot be confined to part of its root domain: rt-app's
/// pthread_setaffinity_np() after the switch fails with EBUSY and rt-app exits (D-2's
/// admission is per root domain, so Linux refuses such affinities).
#[test]
fn dl_affinity_change_is_refused() {
    let s = run("dl_affinity_refused.json");
    let p = s.pid("pinned-0");
    assert_eq!(became_dl(&s, p), MS);
    let o = &s.result.outcome;
    assert_eq!(o.end_reason.as_str(), "workload_failed");
    assert_eq!(o.sim_time_ns, MS);
    assert!(
        o.report.contains("pthread_setaffinity_np") && o.report.contains("-16"),
        "{}",
        o.report
    );
}

/// (e) sched_yield() gives up the remaining budget: 1 ms of work then a yield, forever, with
/// Q = 5 ms: the task runs exactly 1 ms per 10 ms period (not 5), throttled once per
/// period by the yield, and a yield is not a miss.
#[test]
fn dl_yield_gives_up_the_rest_of_the_budget() {
    let s = run("dl_yield.json");
    let (y, hog) = (s.pid("yielder-0"), s.pid("hog-1"));
    assert_eq!(became_dl(&s, y), MS);
    assert_eq!(s.runtime_ns(y), 100 * MS);
    assert_eq!(s.runtime_ns(hog), 900 * MS);
    assert_eq!(throttles(&s, y), 100);
    assert_eq!(misses(&s, y), 0);
    let ins: Vec<u64> = s
        .switch_ins(y)
        .into_iter()
        .map(|(t, _)| t)
        .filter(|&t| t > MS)
        .collect();
    let want: Vec<u64> = (1..100).map(|k| MS + k * 10 * MS).collect();
    assert_eq!(ins, want, "back at each period start");
}

/// (f) A DL task preempts RT and fair tasks: every release after it became DL is a switch-in
/// at that instant (zero costs) from a still runnable task, and both the RT task and the fair hog are among the tasks it
/// preempted.
#[test]
fn dl_preempts_rt_and_fair_at_every_release() {
    let s = run("dl_preempts_rt_and_fair.json");
    let (rt, hog, dl) = (s.pid("rt-0"), s.pid("hog-1"), s.pid("dl-2"));
    let since = became_dl(&s, dl);
    let releases: Vec<u64> = (0..)
        .map(|k| 5 * MS + k * 7 * MS)
        .skip_while(|&t| t <= since)
        .take_while(|&t| t < 1000 * MS)
        .collect();
    assert!(releases.len() > 100);
    let mut preempted = std::collections::BTreeSet::new();
    for &t in &releases {
        let sw = s
            .events
            .iter()
            .find_map(|e| match e.kind {
                EventKind::SchedSwitch {
                    prev,
                    prev_state,
                    next,
                } if e.time_ns == t && next.pid == dl => Some((prev.pid, prev_state)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no switch to dl at its release {t}"));
        // Involuntarily: `R+` (kernel preemption) or `R` (at the return to user space,
        // which goes through schedule() as in Linux).
        assert!(
            matches!(sw.1, PrevState::Preempted | PrevState::Running),
            "release {t}: prev {} {:?}",
            sw.0,
            sw.1
        );
        preempted.insert(sw.0);
    }
    assert!(
        preempted.contains(&rt),
        "never preempted the RT task: {preempted:?}"
    );
    assert!(
        preempted.contains(&hog),
        "never preempted the fair hog: {preempted:?}"
    );
    assert_eq!(misses(&s, dl), 0);
}

/// Same workload and seed, same event stream, with DL timers, push and pull in play.
#[test]
fn dl_runs_are_deterministic() {
    let a = run("dl_dhall_2cpus.json");
    let b = run("dl_dhall_2cpus.json");
    assert_eq!(a.events, b.events);
    assert_eq!(a.result.metrics, b.result.metrics);
}

/// The fair server (D-20): under a 100% RT hog a fair task gets 50 ms of every second
/// through the deferred server, late in each period: first at the zero-laxity time of the
/// server's first period (950 ms), then once per period. Without the server (`dl_server=off`)
/// it gets nothing.
#[test]
fn dl_server_gives_a_starved_fair_task_50ms_per_second() {
    let s = run("dl_server_rt_hog.json");
    let (hog, fair) = (s.pid("rt_hog-0"), s.pid("fair-1"));
    let total = s.runtime_ns(fair);
    assert!(
        (145 * MS..=155 * MS).contains(&total),
        "fair ran {total} ns in 3 s"
    );
    // Three 50 ms runs (one per second), each starting late in its period.
    let ins: Vec<u64> = s.switch_ins(fair).into_iter().map(|(t, _)| t).collect();
    assert_eq!(ins.len(), 3, "switch-ins {ins:?}");
    for (k, &t) in ins.iter().enumerate() {
        let second = k as u64 * 1000 * MS;
        assert!(
            t >= second + 950 * MS && t <= second + 955 * MS,
            "run {k} starts at {t}"
        );
        let out = s
            .switch_outs(fair)
            .into_iter()
            .map(|(o, _, next)| (o, next))
            .find(|&(o, _)| o > t);
        if let Some((o, next)) = out {
            assert!((50 * MS..=51 * MS).contains(&(o - t)), "run {k}: {t}..{o}");
            assert_eq!(next, hog, "the RT hog resumes");
        }
    }
    assert!(s.runtime_ns(hog) >= 2_840 * MS);
    // The server is a DL entity: nothing is reported as a task's throttle or miss.
    assert_eq!(throttles(&s, fair), 0);

    let off = run_with("dl_server_rt_hog.json", |a| {
        a.features.push("dl_server=off".to_string())
    });
    let fair_off = off.pid("fair-1");
    assert!(
        off.runtime_ns(fair_off) < MS,
        "fair ran {} without the server",
        off.runtime_ns(fair_off)
    );
    assert!(off.runtime_ns(off.pid("rt_hog-0")) > 2_990 * MS);
}

/// The fair server is deferred (D-20): fair tasks that get the CPU anyway drain its budget in
/// the background, so it never preempts the RT task, which runs each job from its release to
/// its end without a switch-out.
#[test]
fn dl_server_stays_deferred_while_fair_tasks_run() {
    let s = run("dl_server_no_starvation.json");
    let (rt, hog) = (s.pid("rt-0"), s.pid("hog-1"));
    let outs = s.switch_outs(rt);
    assert!(outs.len() >= 299, "{} jobs", outs.len());
    for e in &s.events {
        if let EventKind::SchedSwitch { prev, prev_state, .. } = e.kind {
            if prev.pid == rt {
                assert_eq!(prev_state, PrevState::Sleeping, "rt preempted at {}", e.time_ns);
            }
        }
    }
    let h = s.runtime_ns(hog);
    assert!((1_495 * MS..=1_505 * MS).contains(&h), "hog ran {h}");
}

/// A DL task as a Proxy Execution donor: the fair owner runs on the blocked DL task's
/// scheduling context and its budget pays (update_curr_dl charges rq->donor): 5 ms per
/// period, then the donor is throttled (twice before the owner's 20 ms are done) and the
/// owner goes on as itself. Without proxying the DL task just sleeps on the lock (with PI
/// the owner runs boosted, alone on the CPU either way).
#[test]
fn dl_donor_budget_pays_for_the_proxied_owner() {
    for protocol in ["none", "pi", "proxy"] {
        let s = run_with("dl_proxy_donor.json", |a| a.protocol = Some(protocol.to_string()));
        let (o, d) = (s.pid("owner-0"), s.pid("dl-1"));
        assert_eq!(s.result.outcome.end_reason.as_str(), "exited", "{protocol}");
        assert_eq!(became_dl(&s, d), 2 * MS, "{protocol}");
        let t = s.result.metrics.task(d).unwrap();
        if protocol == "proxy" {
            assert_eq!(t.donated_ns, 10 * MS, "two budgets of 5 ms");
            assert_eq!(t.dl_throttles, 2);
            assert_eq!(s.work_done_ns(o), 20 * MS);
            // Replenished at 22 ms, the donor takes M and runs its 1 ms.
            assert_eq!(s.work_done_ns(d), 23 * MS);
        } else {
            assert_eq!(t.donated_ns, 0, "{protocol}");
            assert_eq!(t.dl_throttles, 0, "{protocol}");
            // The owner unlocks at 20 ms, the DL task runs at once.
            assert_eq!(s.work_done_ns(d), 21 * MS, "{protocol}");
        }
    }
}

/// Deadline inheritance (D-21): through an rt_mutex, a fair owner blocking a SCHED_DEADLINE
/// waiter runs as DL on the waiter's reservation (`sched_pi_setprio ... newprio=-1`), above
/// an RT hog at priority 99, and is not throttled although its 5 ms exceed the 1 ms budget.
/// With a plain mutex the hog starves the owner until it is done.
#[test]
fn dl_pi_boost_runs_the_owner_on_the_waiters_reservation() {
    let s = run_with("dl_pi_boost.json", |a| a.protocol = Some("pi".to_string()));
    let (d, hog, o) = (s.pid("dl-0"), s.pid("hog-1"), s.pid("owner-2"));
    let boosts: Vec<(u64, i32, i32)> = s
        .events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::SchedPiSetprio {
                task,
                oldprio,
                newprio,
            } if task.pid == o => Some((e.time_ns, oldprio, newprio)),
            _ => None,
        })
        .collect();
    assert_eq!(boosts, vec![(2 * MS, 120, -1), (7 * MS, -1, 120)]);
    assert!(s.switch_outs(hog).contains(&(2 * MS, 0, d)));
    assert!(
        s.switch_ins(o).contains(&(2 * MS, 0)),
        "the boosted owner runs above the RT hog"
    );
    assert_eq!(throttles(&s, o), 0);
    assert_eq!(misses(&s, o), 0);
    assert_eq!(throttles(&s, d), 0);
    // The DL task gets M at 7 ms, when the deboosted owner unlocks it.
    assert!(s.switch_ins(d).contains(&(7 * MS, 0)));

    let none = run_with("dl_pi_boost.json", |a| a.protocol = Some("none".to_string()));
    let o2 = none.pid("owner-2");
    assert!(
        none.switch_ins(o2)
            .iter()
            .all(|&(t, _)| !(MS..21 * MS).contains(&t)),
        "without PI the RT hog starves the owner: {:?}",
        none.switch_ins(o2)
    );
}

/// A mixed DL/RT/fair swarm with shared mutexes on 4 CPUs, under each protocol and a few
/// seeds, with every invariant (dl_rq_consistent, dl_bw_admitted, ...) checked after every
/// step: the run must end by its duration without a violation.
#[test]
fn dl_swarm_keeps_the_invariants() {
    for (protocol, seed) in [("none", 1), ("pi", 2), ("proxy", 3)] {
        let s = run_with("dl_swarm_4cpus.json", |a| {
            a.protocol = Some(protocol.to_string());
            a.seed = Some(seed);
            a.duration = Some(0.5);
        });
        assert_eq!(s.result.outcome.end_reason.as_str(), "duration", "{protocol}");
        let d4 = s.pid("d4-3");
        assert_eq!(misses(&s, d4), 0, "{protocol}: the yielding task never misses");
        assert!(throttles(&s, d4) > 100, "{protocol}: it yields every period");
    }
}
