//! Cost per event against tasks per CPU: `cargo run --release -p cli --example scale --
//! [SECONDS] [CPUS] [TASKS...]` runs `bench::measure` (the bench mix) once per task count and
//! prints ns per event, so the scaling of the per-event paths can be compared between builds.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args.first().map_or(0.2, |a| a.parse().expect("SECONDS"));
    let cpus: usize = args.get(1).map_or(4, |a| a.parse().expect("CPUS"));
    let tasks: Vec<usize> = if args.len() > 2 {
        args[2..].iter().map(|a| a.parse().expect("TASKS")).collect()
    } else {
        vec![32, 1_024, 16_384, 100_000]
    };
    println!("cpus   tasks  sim_s      events     wall_s  ns/event");
    for n in tasks {
        let (events, _steps, wall) = cli::bench::measure(cpus, n, secs);
        println!(
            "{cpus:>4} {n:>7} {secs:>6.2} {events:>11} {wall:>10.3} {:>9.0}",
            wall * 1e9 / events.max(1) as f64
        );
    }
}
