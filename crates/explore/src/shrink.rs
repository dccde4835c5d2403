//! Shrinking a failing [`Case`]: first the workload (smaller variants from
//! `workload::shrink::candidates`), then the choice sequence, keeping each step only while
//! the same invariant still fails.
//!
//! The choice sequence shrinks as a prefix and as zeros: past its end [`sim::Replay`] sends
//! every tie to the first CPU and adds no delay, so a shorter or sparser sequence is a
//! schedule closer to the plain one. Sizes are (length without trailing zeros, non-zero
//! choices).

use harness::Failure;

use crate::replay::run_choices;
use crate::{run_text, Case, Verdict};

/// Sizes of a case: the workload's (tasks, events, CPUs, lengths), its bytes, choices
/// (without trailing zeros), non-zero choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub workload: workload::shrink::Size,
    pub workload_bytes: usize,
    pub choices: usize,
    pub nonzero: usize,
}

impl Sizes {
    pub fn of(case: &Case) -> Sizes {
        let c = trimmed(&case.choices);
        Sizes {
            workload: workload::shrink::size(&case.workload),
            workload_bytes: case.workload.len(),
            choices: c.len(),
            nonzero: c.iter().filter(|&&v| v != 0).count(),
        }
    }
}

impl std::fmt::Display for Sizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "workload {} ({} bytes), {} choices ({} non-zero)",
            self.workload, self.workload_bytes, self.choices, self.nonzero
        )
    }
}

fn trimmed(c: &[u64]) -> &[u64] {
    let end = c.iter().rposition(|&v| v != 0).map_or(0, |i| i + 1);
    &c[..end]
}

/// Smaller variants of a workload text (fewer tasks, events, CPUs, shorter lengths).
fn workload_candidates(text: &str) -> Vec<String> {
    workload::shrink::candidates(text)
}

/// Whether `choices` on `case` still fails the same way; the recorded choices if so.
fn still_fails(case: &Case, choices: &[u64]) -> Result<Option<Vec<u64>>, Failure> {
    let r = run_choices(case, choices, None)?;
    Ok((r.verdict == case.verdict && r.invariant == case.invariant)
        .then(|| trimmed(&r.choices.choices).to_vec()))
}

/// Shrink `case`; at most `budget` runs. Returns the smaller case (its message and time are
/// those of the shrunk run). Three passes: the workload, the shortest failing prefix of the
/// choices, then zeroed chunks of the choices.
pub fn shrink(case: &Case, budget: usize) -> Result<Case, Failure> {
    assert_ne!(case.verdict, Verdict::Pass, "only a failing case shrinks");
    let mut cur = case.clone();
    cur.choices = trimmed(&cur.choices).to_vec();
    let mut runs = 0;
    shrink_workload(&mut cur, budget, &mut runs);
    shortest_failing_prefix(&mut cur, budget, &mut runs)?;
    zero_chunks(&mut cur, budget, &mut runs)?;
    // The final case's own run: its message and time.
    let r = run_choices(&cur, &cur.choices, None)?;
    cur.message = r.message;
    cur.time_ns = r.time_ns;
    Ok(cur)
}

/// Pass 1: the workload, under the original strategy and seed (a new workload asks other
/// questions, so its old choices mean little). Takes the first smaller candidate that fails
/// the same way, again and again until none does or `runs` reaches `budget`.
fn shrink_workload(cur: &mut Case, budget: usize, runs: &mut usize) {
    let mut progress = true;
    while progress && *runs < budget {
        progress = false;
        for cand in workload_candidates(&cur.workload) {
            if *runs >= budget {
                break;
            }
            *runs += 1;
            let flags = cur.run_flags();
            let (strategy, seed, bounds) = (cur.strategy, cur.seed, cur.bounds.into());
            let Ok(r) = run_text(
                &cur.workload_name,
                &cand,
                &flags,
                &|n| strategy.source(seed, n, bounds),
                &cur.replay,
                None,
            ) else {
                continue;
            };
            // The generator's candidates are each smaller than their input (Size::smaller_than).
            if r.verdict == cur.verdict && r.invariant == cur.invariant {
                cur.workload = cand;
                cur.choices = trimmed(&r.choices.choices).to_vec();
                progress = true;
                break;
            }
        }
    }
}

/// Pass 2: the shortest prefix of the choices that still fails (binary search).
fn shortest_failing_prefix(cur: &mut Case, budget: usize, runs: &mut usize) -> Result<(), Failure> {
    let (mut lo, mut hi) = (0usize, cur.choices.len());
    while lo < hi && *runs < budget {
        let mid = (lo + hi) / 2;
        *runs += 1;
        match still_fails(cur, &cur.choices[..mid])? {
            Some(_) => hi = mid,
            None => lo = mid + 1,
        }
    }
    cur.choices.truncate(hi);
    Ok(())
}

/// Pass 3: chunks of the choices set to zero (the plain schedule's answer), in halving
/// sizes down to one choice, each kept if the case still fails with no more choices than
/// before.
fn zero_chunks(cur: &mut Case, budget: usize, runs: &mut usize) -> Result<(), Failure> {
    let mut chunk = cur.choices.len().div_ceil(2).max(1);
    while chunk >= 1 && *runs < budget {
        let mut at = 0;
        while at < cur.choices.len() && *runs < budget {
            let end = (at + chunk).min(cur.choices.len());
            if cur.choices[at..end].iter().any(|&v| v != 0) {
                let mut cand = cur.choices.clone();
                cand[at..end].iter_mut().for_each(|v| *v = 0);
                *runs += 1;
                if let Some(rec) = still_fails(cur, &cand)? {
                    if rec.len() <= cur.choices.len() {
                        cur.choices = cand;
                        cur.choices.truncate(trimmed(&cur.choices).len());
                    }
                }
            }
            at = end;
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    Ok(())
}
