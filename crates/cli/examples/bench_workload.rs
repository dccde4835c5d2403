//! The bench workloads as rt-app files, for measuring `proxysched run`'s whole path (the
//! rt-app interpreter and the metrics collector) on them: `cargo run --release -p cli
//! --example bench_workload -- mix|edf CPUS TASKS SECONDS > FILE.json`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench_workload mix|edf CPUS TASKS SECONDS";
    let [kind, cpus, tasks, secs] = &args[..] else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let (Ok(cpus), Ok(tasks), Ok(secs)) = (cpus.parse(), tasks.parse(), secs.parse::<f64>()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let json = match kind.as_str() {
        "mix" => cli::bench::mix_workload(cpus, tasks, secs),
        "edf" => cli::bench::edf_workload(cpus, tasks, secs),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    print!("{json}");
}
