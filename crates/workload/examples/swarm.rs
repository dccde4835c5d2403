//! Prints the swarm workload of a seed: `cargo run --release -p workload --example swarm --
//! SEED [MODEL] [--cycles] > w.json`, then `proxysched run w.json --check`.

use workload::generate::{swarm_with, Options};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cycles = args.iter().any(|a| a == "--cycles");
    let rest: Vec<&String> = args.iter().filter(|a| *a != "--cycles").collect();
    let Some(seed) = rest.first().and_then(|s| s.parse::<u64>().ok()) else {
        eprintln!("usage: swarm SEED [MODEL] [--cycles]");
        std::process::exit(2);
    };
    let model = rest.get(1).map_or("v29", |m| m.as_str());
    print!("{}", swarm_with(seed, model, &Options { cycles }));
}
