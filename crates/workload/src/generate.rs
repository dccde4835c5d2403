//! The swarm generator: one random rt-app workload per seed, for exploration.
//!
//! Swarm testing (Groce et al., ISSTA 2012; FoundationDB's simulation workloads): instead of
//! one workload that turns every feature on a little, each seed first draws its own *knobs*
//! ([`Knobs`]: how many CPUs, which scheduling classes, how deep the lock nesting, whether
//! owners sleep, whether workqueues are used, ...), and only then the workload those knobs
//! allow. A feature that is off in a seed cannot crowd out the others, so rare interactions
//! (a three-deep chain across CPUs whose last owner sleeps while a DL donor waits) come up in
//! some seeds at full strength instead of never.
//!
//! [`swarm`] returns rt-app JSON text that [`crate::load`] accepts without warnings and that
//! rt-app itself runs: our settings only under `"proxysched"` (`cpus`, `llc_size`,
//! `workqueues`), unique event keys (`run0`, `lock1`, ...) because json-c keeps only the last of
//! a repeated key. The text begins with a comment naming the seed, the model and the knobs.
//!
//! What every generated workload guarantees, whatever the seed:
//! - **No lock cycle** (unless [`Options::cycles`] asks for one): mutexes `M0`, `M1`, ... have
//!   one global order, every thread and work item takes them in increasing order and releases
//!   them before its phase ends, and a thread flushes a work item only while every mutex it
//!   holds comes before every mutex that item takes. Every wait (for a mutex, or for a work
//!   item) then points to a later mutex, so waits cannot close a circle. Work items never wait
//!   for a worker either: there are at most three, a pool has at least one more worker than
//!   that, and the kernel never runs one item on two workers at once.
//! - **SCHED_DEADLINE admission passes**: DL threads reserve at most 0.45 of each CPU in
//!   total (the kernel admits 0.95 minus the fair servers' 0.05), each `dl-runtime` is at
//!   least 50 µs and each period at least 1 ms, and a DL thread has no `cpus` (Linux refuses
//!   affinity masks smaller than the root domain for DL tasks).
//! - **It ends by itself after tens of milliseconds**: every thread has a finite loop count,
//!   chosen so that its nominal length (runs, sleeps and timer periods, without contention)
//!   is the seed's `duration_ms`. `global.duration` is 1 s, a cap for overloaded seeds:
//!   rt-app reads it as an integer number of seconds, so a fraction would be a warning.
//! - **Features are left to the caller**: no `features`, `protocol`, `costs` or `inject`
//!   key. The model (`--model`) only biases knobs toward what that model has (sleeping owners
//!   under `next`) and is recorded in the header comment.
//!
//! - **Signals** (knob `signals`, three seeds in ten): some mutexes are declared
//!   `"interruptible": true`, and a SCHED_FIFO sender thread sends bursts of signals
//!   (`{"signal": {"thread": T}}`) to another task. Where DL admission leaves room (and there
//!   are at least three CPUs), the seed also gets the B-v29-1 setting: a SCHED_DEADLINE donor
//!   (`sdon`, a quarter of each period) that keeps taking the interruptible mutex `S0` from a
//!   fair owner pinned to the last CPU (`sown`), which holds it for hundreds of µs so that the
//!   donor's budget runs out while the owner runs on it, and DL hogs (`shog`) that keep the
//!   root domain DL-overloaded so the throttled donor's CPU pulls with its rq lock dropped;
//!   the sender then signals the donor. `S0` is never nested, so no lock cycle is added.
//!
//! Deterministic: the same seed, model and options give the same text. Every draw comes from
//! one ChaCha8 stream seeded with the seed ([`sim::oracle::Stream::Workload`]); the signal
//! extension draws from its own stream ([`sim::oracle::Stream::WorkloadSignals`]) and only
//! appends, so a seed whose `signals` knob is off has the workload it had before the
//! extension existed. Nothing iterates a hash map.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::json::{self, Kind, Member, Node, Pos};

/// The `--model` names the generator knows; any other name is generated as `v29`.
pub const MODELS: [&str; 4] = ["6.17", "7.1", "v29", "next"];

/// Most CPUs a swarm workload has.
pub const MAX_CPUS: u32 = 16;
/// Longest blocked-on chain a ladder builds (links from the first waiter to the last owner).
pub const MAX_CHAIN_DEPTH: u32 = 8;
/// Most mutexes one critical section holds at once.
pub const MAX_NESTING: u32 = 4;
/// Most work items (a pool has at least one worker more than this).
pub const MAX_WORK_ITEMS: u32 = 3;
/// Most threads, ladder included (the cycle's two threads come on top).
pub const MAX_THREADS: u32 = 24;
/// Total DL bandwidth per CPU the generator reserves (the kernel admits 0.90).
pub const DL_UTIL_PER_CPU: f64 = 0.45;
/// Most loops a thread runs (bounds the events of one schedule).
const MAX_LOOPS: u64 = 25;

/// Switches the caller chooses; everything else is drawn from the seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Allow lock cycles: half of the seeds then add two threads that take two extra mutexes
    /// (`X0`, `X1`) in opposite orders, a deadlock by construction. Off by default.
    pub cycles: bool,
}

/// How busy threads are between their pauses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Load {
    /// Each thread busy 5 to 20% of its loop.
    Light,
    /// 20 to 50%.
    Medium,
    /// 50 to 100% (some threads never pause).
    Heavy,
}

/// The per-seed choices, drawn before the workload. [`knobs`] returns them; the header
/// comment of the generated text lists them.
#[derive(Clone, Debug, PartialEq)]
pub struct Knobs {
    pub seed: u64,
    /// The model name as given.
    pub model: String,
    /// CPUs, 2 to [`MAX_CPUS`] (three seeds in five have at most four).
    pub cpus: u32,
    /// `llc_size` when the CPUs are split into two last-level caches.
    pub llc_size: Option<u32>,
    /// Nominal length of every thread, ms.
    pub duration_ms: u32,
    /// Scheduling classes of the free threads (at least one is on).
    pub fair: bool,
    pub rt: bool,
    pub dl: bool,
    /// Free (non-ladder) tasks, each with 1 to 3 instances.
    pub tasks: u32,
    /// Mutexes the free threads and work items take, besides the ladder's.
    pub mutexes: u32,
    /// Most mutexes a free critical section nests (1 = no nesting).
    pub max_nesting: u32,
    /// A ladder of this many links: thread `i` holds `M(b+i)` and waits for `M(b+i+1)`, the
    /// last mutex's owner holds it for a long time, preempted by a thread on its CPU. 0 = no
    /// ladder.
    pub chain_depth: u32,
    /// The ladder's threads are pinned to different CPUs.
    pub chain_across_cpus: bool,
    /// Some threads and phases get `cpus` masks.
    pub affinity: bool,
    /// Some critical sections sleep with the mutexes held.
    pub sleeping_owner: bool,
    /// Work items (0 = no workqueues).
    pub work_items: u32,
    /// `workers_per_pool` when given (otherwise the kernel's 4).
    pub workers_per_pool: Option<u32>,
    /// Periodic threads wait on rt-app timers instead of sleeping.
    pub timers: bool,
    /// Some tasks have several phases that change policy, priority or affinity.
    pub phases: bool,
    /// Some threads `yield`.
    pub yields: bool,
    pub load: Load,
    /// A lock cycle is added (only with [`Options::cycles`]).
    pub cycle: bool,
    /// Interruptible mutexes and signal senders (drawn from the signal stream).
    pub signals: bool,
}

/// The swarm workload of `seed` for `model` (one of [`MODELS`]), without lock cycles.
pub fn swarm(seed: u64, model: &str) -> String {
    swarm_with(seed, model, &Options::default())
}

/// The swarm workload of `seed` for `model` with the caller's [`Options`].
pub fn swarm_with(seed: u64, model: &str, options: &Options) -> String {
    swarm_tree(seed, model, options).0
}

/// [`swarm_with`]'s text and the tree [`json::parse`] reads from it, positions included (so
/// that a caller can load it with [`crate::loader::load_tree`] without parsing the text).
pub fn swarm_tree(seed: u64, model: &str, options: &Options) -> (String, Node) {
    let mut rng = rng_for(seed);
    let k = draw_knobs(&mut rng, seed, model, options);
    Gen::new(rng, &k).workload()
}

/// The knobs [`swarm_with`] draws for `seed` (the same draws, without the workload).
pub fn knobs(seed: u64, model: &str, options: &Options) -> Knobs {
    draw_knobs(&mut rng_for(seed), seed, model, options)
}

fn rng_for(seed: u64) -> ChaCha8Rng {
    sim::oracle::Stream::Workload.rng(seed)
}

fn draw_knobs(rng: &mut ChaCha8Rng, seed: u64, model: &str, options: &Options) -> Knobs {
    let cpus = match rng.gen_range(0..20) {
        0..=11 => rng.gen_range(2..=4),
        12..=16 => rng.gen_range(5..=8),
        _ => rng.gen_range(9..=MAX_CPUS),
    };
    let llc_size = (cpus >= 4 && cpus % 2 == 0 && rng.gen_bool(0.25)).then_some(cpus / 2);
    let duration_ms = *[10, 15, 20, 20, 20, 25, 30, 40].choose(rng).expect("non-empty");
    let (mut fair, rt, dl) = (rng.gen_bool(0.8), rng.gen_bool(0.6), rng.gen_bool(0.35));
    if !(fair || rt || dl) {
        fair = true;
    }
    let tasks = rng.gen_range(1..=6);
    let mutexes = if rng.gen_bool(0.8) {
        rng.gen_range(1..=6)
    } else {
        0
    };
    let max_nesting = if mutexes >= 2 {
        rng.gen_range(1..=MAX_NESTING.min(mutexes))
    } else {
        1
    };
    let chain_depth = if rng.gen_bool(0.4) {
        rng.gen_range(2..=MAX_CHAIN_DEPTH)
    } else {
        0
    };
    let chain_across_cpus = chain_depth > 0 && rng.gen_bool(0.7);
    let affinity = rng.gen_bool(0.5);
    let sleeping_owner = rng.gen_bool(if model == "next" { 0.5 } else { 0.35 });
    let work_items = if rng.gen_bool(0.35) {
        rng.gen_range(1..=MAX_WORK_ITEMS)
    } else {
        0
    };
    let workers_per_pool = (work_items > 0 && rng.gen_bool(0.5)).then(|| rng.gen_range(work_items + 1..=4));
    let timers = rng.gen_bool(0.5);
    let phases = rng.gen_bool(0.3);
    let yields = rng.gen_bool(0.15);
    let load = *[Load::Light, Load::Medium, Load::Medium, Load::Heavy]
        .choose(rng)
        .expect("non-empty");
    let cycle = options.cycles && rng.gen_bool(0.5);
    let signals = signal_rng(seed).gen_bool(SIGNALS_P);
    Knobs {
        seed,
        model: model.to_string(),
        cpus,
        llc_size,
        duration_ms,
        fair,
        rt,
        dl,
        tasks,
        mutexes,
        max_nesting,
        chain_depth,
        chain_across_cpus,
        affinity,
        sleeping_owner,
        work_items,
        workers_per_pool,
        timers,
        phases,
        yields,
        load,
        cycle,
        signals,
    }
}

/// How often the `signals` knob is on.
const SIGNALS_P: f64 = 0.3;

/// The signal extension's stream for `seed` (its first draw is the knob).
fn signal_rng(seed: u64) -> ChaCha8Rng {
    sim::oracle::Stream::WorkloadSignals.rng(seed)
}

// ---- JSON building ---------------------------------------------------------------------------

fn node(kind: Kind) -> Node {
    Node {
        kind,
        pos: Pos::default(),
    }
}

fn num(v: impl std::fmt::Display) -> Node {
    node(Kind::Number(v.to_string()))
}

fn text(s: &str) -> Node {
    node(Kind::String(s.to_string()))
}

fn object(members: Vec<Member>) -> Node {
    node(Kind::Object(members))
}

fn member(key: &str, value: Node) -> Member {
    Member {
        key: key.to_string(),
        key_pos: Pos::default(),
        value,
    }
}

fn cpu_list(cpus: &[u32]) -> Node {
    node(Kind::Array(cpus.iter().map(|&c| num(c)).collect()))
}

/// One phase's events under unique keys (`run0`, `run1`, `lock0`, ...), with the nominal time
/// one iteration takes and the mutexes held at the end of the list so far.
#[derive(Default)]
struct Body {
    events: Vec<Member>,
    /// Next suffix per event prefix.
    counters: Vec<(&'static str, u32)>,
    /// Nominal µs of one iteration: runs, sleeps, and the timer period when it is longer.
    busy_us: u64,
    pause_us: u64,
    timer_period_us: Option<u64>,
    /// Ranks of the mutexes held now, innermost last.
    held: Vec<u32>,
    /// Work items queued in this phase and not yet flushed.
    queued: Vec<u32>,
}

impl Body {
    fn push(&mut self, prefix: &'static str, value: Node) {
        let n = match self.counters.iter_mut().find(|(p, _)| *p == prefix) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.counters.push((prefix, 0));
                0
            }
        };
        self.events.push(member(&format!("{prefix}{n}"), value));
    }

    fn run(&mut self, us: u64) {
        self.busy_us += us;
        self.push("run", num(us));
    }

    fn sleep(&mut self, us: u64) {
        self.pause_us += us;
        self.push("sleep", num(us));
    }

    fn lock(&mut self, rank: u32) {
        assert!(
            self.held.last().is_none_or(|&h| h < rank),
            "lock order: {rank} after {:?}",
            self.held
        );
        self.held.push(rank);
        self.push("lock", text(&mutex_name(rank)));
    }

    fn unlock(&mut self) {
        let rank = self.held.pop().expect("unlock with nothing held");
        self.push("unlock", text(&mutex_name(rank)));
    }

    /// Nominal µs of one iteration.
    fn iteration_us(&self) -> u64 {
        let own = self.busy_us + self.pause_us;
        self.timer_period_us.map_or(own, |p| p.max(own)).max(1)
    }
}

fn mutex_name(rank: u32) -> String {
    format!("M{rank}")
}

fn item_name(i: u32) -> String {
    format!("W{i}")
}

/// A scheduling class of a free task.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Fair,
    Rt,
    Dl,
}

/// The generator state for one workload.
struct Gen<'k> {
    rng: ChaCha8Rng,
    k: &'k Knobs,
    /// All mutex ranks: the free ones first, then the ladder's.
    nr_mutexes: u32,
    /// Per work item, the lowest rank it locks (`None`: it takes no mutex).
    item_min_rank: Vec<Option<u32>>,
    threads: u32,
    dl_util: f64,
}

impl<'k> Gen<'k> {
    fn new(rng: ChaCha8Rng, k: &'k Knobs) -> Self {
        let ladder_mutexes = if k.chain_depth > 0 { k.chain_depth + 1 } else { 0 };
        Gen {
            rng,
            k,
            nr_mutexes: k.mutexes + ladder_mutexes,
            item_min_rank: Vec::new(),
            threads: 0,
            dl_util: 0.0,
        }
    }

    fn coin(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    /// A run length in µs: mostly short, sometimes up to `max`.
    fn run_us(&mut self, max: u64) -> u64 {
        let max = max.max(10);
        if self.coin(0.7) {
            self.rng.gen_range(5..=max / 4 + 5)
        } else {
            self.rng.gen_range(5..=max)
        }
    }

    /// The pause that gives a thread busy for `busy_us` the seed's load.
    fn pause_for(&mut self, busy_us: u64) -> Option<u64> {
        let duty = match self.k.load {
            Load::Light => self.rng.gen_range(0.05..0.2),
            Load::Medium => self.rng.gen_range(0.2..0.5),
            Load::Heavy => {
                if self.coin(0.2) {
                    return None;
                }
                self.rng.gen_range(0.5..1.0)
            }
        };
        let pause = (busy_us.max(20) as f64 * (1.0 / duty - 1.0)) as u64;
        Some(pause.clamp(20, 20_000))
    }

    /// A mask of 1 to all-but-one CPUs.
    fn cpu_mask(&mut self) -> Vec<u32> {
        let n = self.k.cpus;
        let size = if self.coin(0.5) {
            1
        } else {
            self.rng.gen_range(1..n)
        };
        let mut all: Vec<u32> = (0..n).collect();
        all.shuffle(&mut self.rng);
        let mut mask: Vec<u32> = all[..size as usize].to_vec();
        mask.sort_unstable();
        mask
    }

    fn workload(mut self) -> (String, Node) {
        let mut tasks: Vec<Member> = Vec::new();
        let items = self.work_items();
        if self.k.chain_depth > 0 {
            self.ladder(&mut tasks);
        }
        for t in 0..self.k.tasks {
            if self.threads >= MAX_THREADS.min(4 + 2 * self.k.cpus) && t > 0 {
                break;
            }
            let task = self.free_task(t);
            tasks.push(task);
        }
        if self.k.cycle {
            self.cycle(&mut tasks);
        }
        let resources = if self.k.signals {
            Signals::new(self.k, self.dl_util).extend(&mut tasks)
        } else {
            Vec::new()
        };

        let mut proxysched = vec![member("cpus", num(self.k.cpus))];
        if let Some(llc) = self.k.llc_size {
            proxysched.push(member("llc_size", num(llc)));
        }
        if !items.is_empty() {
            let mut wq = Vec::new();
            if let Some(w) = self.k.workers_per_pool {
                wq.push(member("workers_per_pool", num(w)));
            }
            wq.push(member("items", object(items)));
            proxysched.push(member("workqueues", object(wq)));
        }
        let mut top = vec![
            member("global", object(vec![member("duration", num(1))])),
            member("proxysched", object(proxysched)),
        ];
        if !resources.is_empty() {
            top.push(member("resources", object(resources)));
        }
        top.push(member("tasks", object(tasks)));
        let mut root = object(top);
        let text = json::to_text_placed(&self.header(), &mut root);
        (text, root)
    }

    fn header(&self) -> String {
        let k = self.k;
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            "/* proxysched swarm workload: seed {}, model {}.\n * knobs: cpus {}{}, duration {} ms, \
             load {:?}, classes fair {} rt {} dl {}, tasks {}, mutexes {}, nesting {}, chain depth {}{}, \
             affinity {}, sleeping owners {}, work items {}, timers {}, phases {}, yields {}, cycle {} */\n",
            k.seed,
            k.model,
            k.cpus,
            k.llc_size.map_or(String::new(), |l| format!(" (llc {l})")),
            k.duration_ms,
            k.load,
            on(k.fair),
            on(k.rt),
            on(k.dl),
            k.tasks,
            k.mutexes,
            k.max_nesting,
            k.chain_depth,
            if k.chain_across_cpus { " across CPUs" } else { "" },
            on(k.affinity),
            on(k.sleeping_owner),
            k.work_items,
            on(k.timers),
            on(k.phases),
            on(k.yields),
            on(k.cycle),
        )
        .replace(" */\n", if k.signals { ", signals on */\n" } else { " */\n" })
    }

    /// Work items `W0..`: short runs, maybe a critical section (at most two mutexes), maybe
    /// a sleep, maybe queueing a later item.
    fn work_items(&mut self) -> Vec<Member> {
        let mut items = Vec::new();
        for i in 0..self.k.work_items {
            let mut steps = Vec::new();
            let step = |key: &str, value: Node| object(vec![member(key, value)]);
            let r = self.run_us(300);
            steps.push(step("run", num(r)));
            let mut min_rank = None;
            if self.k.mutexes > 0 && self.coin(0.6) {
                let depth = self.rng.gen_range(1..=2.min(self.k.mutexes));
                let ranks = self.ranks(depth, 0, self.k.mutexes);
                min_rank = ranks.first().copied();
                for &m in &ranks {
                    steps.push(step("lock", text(&mutex_name(m))));
                }
                let r = self.run_us(50);
                steps.push(step("run", num(r)));
                for &m in ranks.iter().rev() {
                    steps.push(step("unlock", text(&mutex_name(m))));
                }
            }
            if self.coin(0.3) {
                let s = self.rng.gen_range(20..=500);
                steps.push(step("sleep", num(s)));
            }
            if i + 1 < self.k.work_items && self.coin(0.3) {
                let later = self.rng.gen_range(i + 1..self.k.work_items);
                steps.push(step("queue_work", text(&item_name(later))));
            }
            self.item_min_rank.push(min_rank);
            items.push(member(&item_name(i), node(Kind::Array(steps))));
        }
        items
    }

    /// `depth` distinct ranks from `from..to`, increasing.
    fn ranks(&mut self, depth: u32, from: u32, to: u32) -> Vec<u32> {
        let all: Vec<u32> = (from..to).collect();
        let mut picked: Vec<u32> = all
            .choose_multiple(&mut self.rng, depth as usize)
            .copied()
            .collect();
        picked.sort_unstable();
        picked
    }

    /// The ladder: `c0 .. c(d-1)` where `ci` holds `M(b+i)` and then takes `M(b+i+1)`, an end
    /// owner `cend` that holds `M(b+d)` for a long time, and `chog`, which shares `cend`'s CPU
    /// and preempts it soon after it took the mutex. All start together, so each link blocks
    /// on the next: a blocked-on chain of `d` links whose owner is runnable but not running,
    /// which Proxy Execution runs on the chain's scheduling context (on `cend`'s CPU: donor or
    /// chain migration when the links are pinned elsewhere).
    ///
    /// Why the preemption: a mutex waiter spins while its owner runs (`mutex_spin_on_owner`),
    /// so behind a running owner every link would spin and the chain would unwind before any
    /// became a donor; behind a sleeping owner, v29 deactivates the links (no proxying).
    fn ladder(&mut self, tasks: &mut Vec<Member>) {
        let d = self.k.chain_depth;
        let rt = self.k.rt && self.coin(0.5);
        let mut cpu = self.rng.gen_range(0..self.k.cpus);
        let mut end_cpu = cpu;
        for i in 0..=d {
            let mut b = self.ladder_link_body(i);
            let pause = self.rng.gen_range(500..=3000);
            b.sleep(pause);
            let mut obj = Vec::new();
            if rt && i < d {
                // Priorities fall along the chain: the first waiter is the most urgent.
                obj.push(member("policy", text("SCHED_FIFO")));
                obj.push(member("priority", num(90 - 5 * i)));
            }
            if self.k.chain_across_cpus || i == d {
                // The end owner is always pinned, next to its preempter.
                obj.push(member("cpus", cpu_list(&[cpu])));
                end_cpu = cpu;
                cpu = (cpu + 1) % self.k.cpus;
            }
            let loops = self.loops_for(b.iteration_us());
            obj.push(member("loop", num(loops)));
            obj.extend(b.events);
            self.threads += 1;
            let name = if i < d {
                format!("c{i}")
            } else {
                "cend".to_string()
            };
            tasks.push(member(&name, object(obj)));
        }
        let hog = self.ladder_hog(rt, end_cpu);
        tasks.push(hog);
    }

    /// The job of ladder task `i`: link `i < d` holds `M(b+i)`, takes `M(b+i+1)` and
    /// releases both; the end owner (`i == d`) holds `M(b+d)` a long time (sleeping in it
    /// with a sleeping owner).
    fn ladder_link_body(&mut self, i: u32) -> Body {
        let d = self.k.chain_depth;
        let base = self.k.mutexes;
        let mut b = Body::default();
        if i < d {
            b.lock(base + i);
            let r = self.rng.gen_range(10..=80);
            b.run(r);
            b.lock(base + i + 1);
            let r = self.run_us(30);
            b.run(r);
            b.unlock();
            let r = self.run_us(30);
            b.run(r);
            b.unlock();
        } else {
            b.lock(base + d);
            let r = self.rng.gen_range(100..=500);
            b.run(r);
            if self.k.sleeping_owner {
                let s = self.rng.gen_range(200..=1500);
                b.sleep(s);
                let r = self.rng.gen_range(20..=200);
                b.run(r);
            }
            b.unlock();
        }
        b
    }

    /// `chog`, the end owner's preempter on `end_cpu`: above the end owner (FIFO 30, below
    /// every link; or nice -10 against the owner's nice 0), a short sleep so the owner takes
    /// its mutex first, then a burst.
    fn ladder_hog(&mut self, rt: bool, end_cpu: u32) -> Member {
        let mut b = Body::default();
        let s = self.rng.gen_range(20..=100);
        b.sleep(s);
        let r = self.rng.gen_range(300..=1500);
        b.run(r);
        let pause = self.rng.gen_range(500..=3000);
        b.sleep(pause);
        let mut obj = if rt {
            vec![member("policy", text("SCHED_FIFO")), member("priority", num(30))]
        } else {
            vec![
                member("policy", text("SCHED_OTHER")),
                member("priority", num(-10)),
            ]
        };
        obj.push(member("cpus", cpu_list(&[end_cpu])));
        obj.push(member("loop", num(self.loops_for(b.iteration_us()))));
        obj.extend(b.events);
        self.threads += 1;
        member("chog", object(obj))
    }

    /// Loops that make a thread's nominal length the seed's duration.
    fn loops_for(&self, iteration_us: u64) -> u64 {
        (u64::from(self.k.duration_ms) * 1000 / iteration_us).clamp(1, MAX_LOOPS)
    }

    fn class(&mut self) -> Class {
        let mut classes = Vec::new();
        if self.k.fair {
            classes.push(Class::Fair);
        }
        if self.k.rt {
            classes.push(Class::Rt);
        }
        if self.k.dl {
            classes.push(Class::Dl);
        }
        *classes.choose(&mut self.rng).expect("at least one class is on")
    }

    fn rt_priority(&mut self) -> u32 {
        if self.coin(0.5) {
            *[10, 20, 50, 90].choose(&mut self.rng).expect("non-empty")
        } else {
            self.rng.gen_range(1..=99)
        }
    }

    /// Policy and priority keys of a fair or RT thread or phase.
    fn sched_keys(&mut self, class: Class) -> Vec<Member> {
        match class {
            Class::Rt => {
                let policy = if self.coin(0.7) { "SCHED_FIFO" } else { "SCHED_RR" };
                let prio = self.rt_priority();
                vec![member("policy", text(policy)), member("priority", num(prio))]
            }
            _ => {
                let roll = self.rng.gen_range(0..20);
                if roll == 0 {
                    vec![member("policy", text("SCHED_IDLE"))]
                } else {
                    let nice = *[-10, -5, 0, 0, 0, 0, 5, 10, 19]
                        .choose(&mut self.rng)
                        .expect("non-empty");
                    let policy = if roll <= 2 { "SCHED_BATCH" } else { "SCHED_OTHER" };
                    vec![member("policy", text(policy)), member("priority", num(nice))]
                }
            }
        }
    }

    fn free_task(&mut self, t: u32) -> Member {
        let mut class = self.class();
        let instances = *[1, 1, 1, 2, 2, 3].choose(&mut self.rng).expect("non-empty");
        let dl = if class == Class::Dl {
            self.dl_reservation(instances)
        } else {
            None
        };
        if class == Class::Dl && dl.is_none() {
            class = if self.k.rt { Class::Rt } else { Class::Fair };
        }
        self.threads += instances;
        let name = format!("t{t}");
        let mut obj = Vec::new();
        if instances > 1 {
            obj.push(member("instance", num(instances)));
        }
        if self.coin(0.3) {
            let delay = self.rng.gen_range(0..=2000);
            obj.push(member("delay", num(delay)));
        }
        if let Some((period_us, util)) = dl {
            self.dl_task(&mut obj, period_us, util, instances);
            return member(&name, object(obj));
        }
        obj.extend(self.sched_keys(class));
        if self.k.affinity && self.coin(0.5) {
            let mask = self.cpu_mask();
            obj.push(member("cpus", cpu_list(&mask)));
        }
        if self.k.phases && self.coin(0.5) {
            let (phases, total_us) = self.phases(class);
            obj.push(member("loop", num(self.loops_for(total_us))));
            obj.push(member("phases", object(phases)));
        } else {
            let body = self.body(class, 0);
            obj.push(member("loop", num(self.loops_for(body.iteration_us()))));
            obj.extend(body.events);
        }
        member(&name, object(obj))
    }

    /// A DL reservation (period, utilisation) for a task of `instances` threads, if its
    /// bandwidth fits in what DL admission has left.
    fn dl_reservation(&mut self, instances: u32) -> Option<(u64, f64)> {
        let period_us = *[1000u64, 2000, 4000, 5000, 10_000]
            .choose(&mut self.rng)
            .expect("non-empty");
        let util = self.rng.gen_range(0.05..0.3);
        let room = DL_UTIL_PER_CPU * f64::from(self.k.cpus) - self.dl_util;
        if util * f64::from(instances) <= room {
            Some((period_us, util))
        } else {
            None
        }
    }

    /// A SCHED_DEADLINE task's keys and events (into `obj`), its bandwidth now taken.
    fn dl_task(&mut self, obj: &mut Vec<Member>, period_us: u64, util: f64, instances: u32) {
        self.dl_util += util * f64::from(instances);
        let runtime_us = ((period_us as f64 * util) as u64).max(50);
        let deadline_us = if self.coin(0.3) {
            self.rng.gen_range(runtime_us..=period_us)
        } else {
            period_us
        };
        obj.push(member("policy", text("SCHED_DEADLINE")));
        obj.push(member("dl-runtime", num(runtime_us)));
        if deadline_us != period_us {
            obj.push(member("dl-deadline", num(deadline_us)));
        }
        obj.push(member("dl-period", num(period_us)));
        let body = self.dl_body(runtime_us, period_us);
        obj.push(member("loop", num(self.loops_for(body.iteration_us()))));
        obj.extend(body.events);
    }

    /// Two or three phases of a `class` task, each looping 1 to 3 times, later ones maybe
    /// switching policy, maybe with their own affinity; and the nominal length of one pass
    /// through them.
    fn phases(&mut self, class: Class) -> (Vec<Member>, u64) {
        let nr = self.rng.gen_range(2..=3);
        let mut phases = Vec::new();
        let mut total_us = 0;
        for p in 0..nr {
            let mut ph = Vec::new();
            let phase_loops = self.rng.gen_range(1..=3u64);
            ph.push(member("loop", num(phase_loops)));
            if p > 0 && self.coin(0.6) {
                let c = if self.k.rt && self.coin(0.5) {
                    Class::Rt
                } else {
                    Class::Fair
                };
                ph.extend(self.sched_keys(c));
            }
            if self.k.affinity && self.coin(0.4) {
                let mask = self.cpu_mask();
                ph.push(member("cpus", cpu_list(&mask)));
            }
            let body = self.body(class, p);
            total_us += body.iteration_us() * phase_loops;
            ph.extend(body.events);
            phases.push(member(&format!("p{p}"), object(ph)));
        }
        (phases, total_us)
    }

    /// A DL thread's job: work that mostly fits its runtime (sometimes overruns it), maybe a
    /// short critical section, then the wait for the next period on an absolute timer.
    fn dl_body(&mut self, runtime_us: u64, period_us: u64) -> Body {
        let mut b = Body::default();
        let work = (runtime_us as f64 * self.rng.gen_range(0.3..1.2)) as u64;
        if self.k.mutexes > 0 && self.coin(0.5) {
            let first = work / 2;
            b.run(first.max(5));
            let m = self.rng.gen_range(0..self.k.mutexes);
            b.lock(m);
            let r = self.rng.gen_range(5..=40);
            b.run(r);
            b.unlock();
            b.run((work - first).max(5));
        } else {
            b.run(work.max(5));
        }
        b.timer_period_us = Some(period_us);
        b.push(
            "timer",
            object(vec![
                member("ref", text("unique")),
                member("period", num(period_us)),
                member("mode", text("absolute")),
            ]),
        );
        b
    }

    /// One phase of a fair or RT thread: 1 to 4 segments (work, a critical section, queueing
    /// or flushing work, a yield), then a pause (sleep or timer) unless the thread is a hog.
    fn body(&mut self, class: Class, phase: u32) -> Body {
        let mut b = Body::default();
        let segments = self.rng.gen_range(1..=4);
        for _ in 0..segments {
            match self.rng.gen_range(0..10) {
                0..=3 => {
                    let r = self.run_us(1500);
                    b.run(r);
                }
                4..=7 if self.nr_mutexes > 0 => self.critical_section(&mut b),
                8 if self.k.work_items > 0 => self.queue_work(&mut b),
                9 if self.k.yields => b.push("yield", num(0)),
                _ => {
                    let r = self.run_us(500);
                    b.run(r);
                }
            }
        }
        // Flush what is still queued, holding nothing.
        while let Some(item) = b.queued.pop() {
            b.push("flush_work", text(&item_name(item)));
        }
        let hog_ok = class == Class::Fair || self.coin(0.3);
        let pause = self.pause_for(b.busy_us);
        match pause {
            None if hog_ok => {}
            pause => {
                let pause = pause.unwrap_or(100);
                if self.k.timers && self.coin(0.6) {
                    let period = (b.busy_us + pause).max(200);
                    b.timer_period_us = Some(period);
                    let mode = if self.coin(0.5) { "absolute" } else { "relative" };
                    b.push(
                        "timer",
                        object(vec![
                            member("ref", text(&format!("unique_p{phase}"))),
                            member("period", num(period)),
                            member("mode", text(mode)),
                        ]),
                    );
                } else {
                    b.sleep(pause);
                }
            }
        }
        b
    }

    /// `lock` of 1 to `max_nesting` mutexes in rank order with work between, work (and maybe
    /// a sleep, a queue_work or a flush_work) inside, `unlock` in reverse.
    fn critical_section(&mut self, b: &mut Body) {
        // Now and then a free thread contends for the ladder's mutexes too.
        let lockable = if self.nr_mutexes > self.k.mutexes && (self.k.mutexes == 0 || self.coin(0.25)) {
            self.nr_mutexes
        } else {
            self.k.mutexes
        };
        let depth = self.rng.gen_range(1..=self.k.max_nesting.min(lockable));
        let ranks = self.ranks(depth, 0, lockable);
        for (i, &m) in ranks.iter().enumerate() {
            if i > 0 && self.coin(0.6) {
                let r = self.run_us(80);
                b.run(r);
            }
            b.lock(m);
        }
        let r = self.run_us(60);
        b.run(r);
        if self.k.sleeping_owner && self.coin(0.5) {
            let s = self.rng.gen_range(20..=1500);
            b.sleep(s);
        }
        if self.k.work_items > 0 && self.coin(0.3) {
            self.queue_work(b);
        }
        // Flush inside only an item whose mutexes all come after the ones held here.
        let innermost = *b.held.last().expect("a critical section holds a mutex");
        if let Some(pos) = b
            .queued
            .iter()
            .position(|&i| self.item_min_rank[i as usize].is_none_or(|r| r > innermost))
        {
            if self.coin(0.5) {
                let item = b.queued.remove(pos);
                b.push("flush_work", text(&item_name(item)));
            }
        }
        for _ in 0..depth {
            b.unlock();
            if self.coin(0.3) {
                let r = self.run_us(60);
                b.run(r);
            }
        }
    }

    /// `queue_work` of a random item, on this CPU or a named one; remembered for a flush.
    fn queue_work(&mut self, b: &mut Body) {
        let item = self.rng.gen_range(0..self.k.work_items);
        if self.coin(0.5) {
            b.push("queue_work", text(&item_name(item)));
        } else {
            let cpu = self.rng.gen_range(0..self.k.cpus);
            b.push(
                "queue_work",
                object(vec![
                    member("item", text(&item_name(item))),
                    member("cpu", num(cpu)),
                ]),
            );
        }
        if !b.queued.contains(&item) && self.coin(0.7) {
            b.queued.push(item);
        }
    }

    /// Two threads that take `X0` and `X1` in opposite orders (an ABBA deadlock), pinned to
    /// different CPUs so that both reach their second lock.
    fn cycle(&mut self, tasks: &mut Vec<Member>) {
        for (i, (first, second)) in [("X0", "X1"), ("X1", "X0")].into_iter().enumerate() {
            let hold = self.rng.gen_range(50..=300);
            let mut obj = vec![member("loop", num(5))];
            if self.k.cpus > 1 {
                obj.push(member("cpus", cpu_list(&[i as u32])));
            }
            obj.extend([
                member("lock0", text(first)),
                member("run0", num(hold)),
                member("lock1", text(second)),
                member("run1", num(20)),
                member("unlock0", text(second)),
                member("unlock1", text(first)),
                member("sleep0", num(200)),
            ]);
            self.threads += 1;
            tasks.push(member(&format!("cyc{i}"), object(obj)));
        }
    }
}

/// The signal extension (knob `signals`): appended after the main generator, from its own
/// stream, so it never changes what the main stream draws.
struct Signals<'k> {
    rng: ChaCha8Rng,
    k: &'k Knobs,
    /// DL bandwidth the main generator reserved.
    dl_util: f64,
}

impl<'k> Signals<'k> {
    fn new(k: &'k Knobs, dl_util: f64) -> Self {
        let mut rng = signal_rng(k.seed);
        let on = rng.gen_bool(SIGNALS_P);
        assert!(on, "the signal extension runs only when its knob is on");
        Signals { rng, k, dl_util }
    }

    /// Add the extension's tasks to `tasks`; returns the `"resources"` members (the
    /// interruptible mutexes).
    fn extend(mut self, tasks: &mut Vec<Member>) -> Vec<Member> {
        let mut mutexes = std::collections::BTreeSet::new();
        for t in tasks.iter() {
            lock_names(&t.value, &mut mutexes);
        }
        let mut resources = Vec::new();
        for name in mutexes {
            if self.rng.gen_bool(0.5) {
                resources.push(member(&name, interruptible_mutex()));
            }
        }
        let names: Vec<String> = tasks.iter().map(|t| t.key.clone()).collect();
        let room = DL_UTIL_PER_CPU * f64::from(self.k.cpus) - self.dl_util;
        let target = if self.k.cpus >= 3 && room >= 0.5 {
            resources.push(member("S0", interruptible_mutex()));
            self.throttle_setting(tasks, room);
            "sdon".to_string()
        } else {
            names.choose(&mut self.rng).expect("at least one task").clone()
        };
        self.sender(tasks, &target);
        resources
    }

    /// `sdon` (SCHED_DEADLINE, a quarter of its period) keeps taking `S0` from `sown` (fair,
    /// pinned to the last CPU, holding it for hundreds of µs), and `shog` DL hogs take most of
    /// the DL room left.
    fn throttle_setting(&mut self, tasks: &mut Vec<Member>, room: f64) {
        let period_us: u64 = *[1000, 2000].choose(&mut self.rng).expect("non-empty");
        let duration_us = u64::from(self.k.duration_ms) * 1000;
        let hold_us = self.rng.gen_range(300..=2000);
        let last = self.k.cpus - 1;
        tasks.push(member(
            "sown",
            object(vec![
                member("cpus", cpu_list(&[last])),
                member("loop", num((duration_us / hold_us).clamp(1, MAX_LOOPS))),
                member("lock0", text("S0")),
                member("run0", num(hold_us)),
                member("unlock0", text("S0")),
            ]),
        ));
        tasks.push(member(
            "sdon",
            object(vec![
                member("policy", text("SCHED_DEADLINE")),
                member("dl-runtime", num(period_us / 4)),
                member("dl-period", num(period_us)),
                member("delay", num(self.rng.gen_range(0..=200))),
                member("loop", num(MAX_LOOPS)),
                member("lock0", text("S0")),
                member("run0", num(self.rng.gen_range(1..=20))),
                member("unlock0", text("S0")),
            ]),
        ));
        let left = room - 0.25;
        let hogs = self.rng.gen_range(2..=self.k.cpus.min(5));
        let util = (left / f64::from(hogs)).min(0.45);
        if util * period_us as f64 >= 50.0 {
            tasks.push(member(
                "shog",
                object(vec![
                    member("instance", num(hogs)),
                    member("policy", text("SCHED_DEADLINE")),
                    member("dl-runtime", num((period_us as f64 * util) as u64)),
                    member("dl-period", num(period_us)),
                    member("loop", num((duration_us / period_us).clamp(1, MAX_LOOPS))),
                    member("run0", num(period_us)),
                ]),
            ));
        }
    }

    /// `ssig` (SCHED_FIFO, any CPU): bursts of eight signals to `target`, 1 to 5 µs apart,
    /// then a pause.
    fn sender(&mut self, tasks: &mut Vec<Member>, target: &str) {
        let prio = self.rng.gen_range(1..=98);
        let gap_us = self.rng.gen_range(1..=5);
        let pause_us = self.rng.gen_range(0..=200);
        let mut obj = vec![
            member("policy", text("SCHED_FIFO")),
            member("priority", num(prio)),
        ];
        let burst = 8;
        let iteration_us = burst * gap_us + pause_us;
        let loops = (u64::from(self.k.duration_ms) * 1000 / iteration_us.max(1)).clamp(1, MAX_LOOPS);
        obj.push(member("loop", num(loops)));
        for i in 0..burst {
            obj.push(member(
                &format!("signal{i}"),
                object(vec![member("thread", text(target))]),
            ));
            obj.push(member(&format!("run{i}"), num(gap_us)));
        }
        if pause_us > 0 {
            obj.push(member("sleep0", num(pause_us)));
        }
        tasks.push(member("ssig", object(obj)));
    }
}

/// `{"type": "mutex", "interruptible": true}`.
fn interruptible_mutex() -> Node {
    object(vec![
        member("type", text("mutex")),
        member("interruptible", node(Kind::Bool(true))),
    ])
}

/// The mutex names a task's `lock` events take (phases included).
fn lock_names(value: &Node, out: &mut std::collections::BTreeSet<String>) {
    if let Kind::Object(members) = &value.kind {
        for m in members {
            match &m.value.kind {
                Kind::String(name) if m.key.starts_with("lock") => {
                    out.insert(name.clone());
                }
                Kind::Object(_) => lock_names(&m.value, out),
                _ => {}
            }
        }
    }
}
