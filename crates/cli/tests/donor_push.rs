//! `findings/next-1285-donor-pushed.json`, found by a `--model next` sweep of seeds 0..1500
//! (`proxysched explore --model next --seeds 1500 --duration 0.02 --feature nohz_idle=off`):
//! a SCHED_DEADLINE donor is pushed to another CPU while it is still its CPU's donor.
//!
//! The window: CPU 0 runs t3-7 on the budget of the DL donor t1-4 (9.949 ms). t3-7's unlock
//! of M0 wakes t1-4 at home (9.986 ms); with `return_when_needed` it stays queued and stays
//! the donor, its `blocked_on` clear. The donor's budget runs out, it is throttled, and at
//! 10.723 ms its replenishment timer queues it again (`enqueue_task_dl(ENQUEUE_REPLENISH)`)
//! and pushes. With the 6.17 test (`!task_current()`), the donor is not `rq->curr`, so it
//! enters the pushable tree, and nothing else keeps it out of the push: its `blocked_on` is
//! clear and its deadline is not earlier than the donor's own. The series' tree returns from
//! `enqueue_task_dl()` before making the entity set as next (`dl_rq->curr`, v29 3/9)
//! pushable (johnstultz-work/linux-dev `kernel/sched/deadline.c` at 2df88f65d0ea), and its
//! RT class asserts the same rule (`BUG_ON(task_current_donor(rq, p))` in
//! `pick_next_pushable_task()`): the model lacked the test, so this was a model bug. With
//! the test the replay is clean; with `dl_rq_curr=off` (the 6.17 enqueue) the same choices
//! still push the donor. v29 does not reach the window on its own: its unlock sends a donor
//! woken at home through a full wakeup, which resets the donor.

mod common;

use common::bin::{run, stderr, tmp};

/// The replay file, relative to this crate.
fn finding() -> String {
    format!(
        "{}/../../findings/next-1285-donor-pushed.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The finding with `extra` added to its features, written to the scratch directory.
fn finding_with(extra: &str, name: &str) -> String {
    let text = std::fs::read_to_string(finding()).unwrap();
    let mut case: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        case["flags"]["model"], "next",
        "the finding is a --model next case"
    );
    case["flags"]["features"]
        .as_array_mut()
        .expect("the finding's features")
        .push(extra.into());
    let path = tmp(name);
    std::fs::write(&path, serde_json::to_string_pretty(&case).unwrap()).unwrap();
    path.display().to_string()
}

/// The lines of an ftrace text trace that mention `needle`.
fn lines_with<'a>(trace: &'a str, needle: &str) -> Vec<&'a str> {
    trace.lines().filter(|l| l.contains(needle)).collect()
}

/// The timestamp (seconds, as printed) of an ftrace line.
fn stamp(line: &str) -> f64 {
    let before = line.split(": ").next().unwrap();
    before.split_whitespace().last().unwrap().parse().unwrap()
}

/// `--model next` as the tree has it: the replenished donor stays off the pushable tree, the
/// replay is clean, and t1-4 is not migrated between its proxy at 9.949 ms and the next time
/// it runs, on CPU 0 again (the failing run moved it to CPU 1 at 10.723 ms).
#[test]
fn the_replenished_donor_stays_home_under_next() {
    let trace_path = tmp("next.txt");
    let out = run(&["replay", &finding(), "--trace", trace_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no failure"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let trace = std::fs::read_to_string(&trace_path).unwrap();
    let proxy = lines_with(&trace, "B|1007|proxy for t1-4-1004");
    assert!(!proxy.is_empty(), "t3-7 never runs for t1-4");
    let proxied_at = stamp(proxy[0]);
    assert_eq!(proxied_at, 0.009949, "{}", proxy[0]);
    let back = lines_with(&trace, "next_comm=t1-4 next_pid=1004")
        .into_iter()
        .find(|l| stamp(l) > proxied_at)
        .expect("t1-4 runs again");
    assert!(back.contains("[000]"), "t1-4 runs again on CPU 0: {back}");
    let moved: Vec<&str> = lines_with(&trace, "sched_migrate_task: comm=t1-4 pid=1004")
        .into_iter()
        .filter(|l| stamp(l) > proxied_at && stamp(l) < stamp(back))
        .collect();
    assert!(moved.is_empty(), "t1-4 moved while CPU 0's donor: {moved:?}");
}

/// Without the `dl_rq->curr` test (`dl_rq_curr=off`, the 6.17 enqueue) the same choices
/// replay the failure the sweep found: the push from CPU 0's timer moves the donor at
/// 10.723031 ms, invariant I11 (`donor_is_curr_unless_proxying`), exit code 4.
#[test]
fn without_the_dl_rq_curr_test_the_donor_is_pushed() {
    let case = finding_with("dl_rq_curr=off", "off.json");
    let out = run(&["replay", &case]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("donor_is_curr_unless_proxying at 10723031 ns: cpu0 donor t1-4-1004"),
        "{err}"
    );
}
