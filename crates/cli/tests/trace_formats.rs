//! The binary trace formats against the ftrace text trace of the same run, read back by the
//! real tools: trace-cmd's `trace.dat` through `trace-cmd report`, Perfetto's protobuf
//! through Perfetto's official schema (`perfetto_trace_pb2` from the `perfetto` PyPI
//! package, driven by `perfetto_decode.py`).
//!
//! When a tool is missing the test says so on stderr and passes, unless
//! `PROXYSCHED_REQUIRE_TRACE_TOOLS=1` (set by `.ci/run`), which turns absence into a failure.
//! `PROXYSCHED_PYTHON` names the interpreter that has the `perfetto` package (default
//! `python3`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cli::run::{build_config, default_protocol, simulate};
use kernel::tracepoints::EventSink;
use report::sink::{Fanout, SharedSink};
use report::{FtraceWriter, PerfettoWriter, TraceDatWriter};

/// The three traces of one run, written by one event stream.
struct Traces {
    text: String,
    pftrace: Vec<u8>,
    dat: Vec<u8>,
}

/// `name` is a scenario file, or `demo` for the built-in demo.
fn traces(name: &str, protocol: &str) -> Traces {
    let mut a = common::args(name);
    if name == "demo" {
        a.workload = None;
    }
    a.protocol = Some(protocol.to_string());
    a.check = false;
    let w = cli::run::load_workload(&a).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let (cfg, costs) = build_config(&w, &a).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let text = SharedSink::new(FtraceWriter::new(Vec::new()));
    let pf = SharedSink::new(PerfettoWriter::new(Vec::new(), cfg.nr_cpus));
    let dat = SharedSink::new(TraceDatWriter::new(Vec::new(), cfg.nr_cpus));
    let sinks: Vec<Box<dyn EventSink>> = vec![
        Box::new(text.clone()),
        Box::new(pf.clone()),
        Box::new(dat.clone()),
    ];
    simulate(
        &w,
        &cfg,
        &costs,
        default_protocol(&w, &a).expect("protocol"),
        None,
        Some(Box::new(Fanout(sinks))),
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let text = text.try_unwrap().ok().expect("text writer released");
    let pf = pf.try_unwrap().ok().expect("perfetto writer released");
    let dat = dat.try_unwrap().ok().expect("trace.dat writer released");
    Traces {
        text: String::from_utf8(text.finish().expect("io")).expect("utf8"),
        pftrace: pf.finish().expect("io"),
        dat: dat.finish().expect("io"),
    }
}

/// A trace record in canonical form.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Rec {
    cpu: u32,
    /// `sec.usec` as the text trace prints it.
    ts: String,
    comm: String,
    pid: u32,
    flags: String,
    /// `event: payload`, single-spaced.
    body: String,
}

/// Nanoseconds to the text trace's `sec.usec` (rounded half up like the kernel's ns2usecs()).
fn usec_ts(ns: u64) -> String {
    let us = (ns + 500) / 1000;
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits `comm-pid` at the last `-`.
fn owner(s: &str) -> (String, u32) {
    let (c, p) = s
        .trim()
        .rsplit_once('-')
        .unwrap_or_else(|| panic!("no pid in {s:?}"));
    (
        c.to_string(),
        p.parse().unwrap_or_else(|_| panic!("pid in {s:?}")),
    )
}

/// One line of the ftrace text trace.
fn parse_line(line: &str) -> Rec {
    let open = line.find(" [").expect("[cpu]");
    let (comm, pid) = owner(&line[..open]);
    let rest = &line[open + 2..];
    let cpu: u32 = rest[..3].parse().expect("cpu");
    let rest = &rest[5..];
    let flags = rest[..5].to_string();
    let (ts, body) = rest[5..].trim_start().split_once(": ").expect("timestamp");
    Rec {
        cpu,
        ts: ts.to_string(),
        comm,
        pid,
        flags,
        body: squeeze(body),
    }
}

/// The records of the ftrace text trace in file order.
fn text_records(text: &str) -> impl Iterator<Item = Rec> + '_ {
    text.lines().filter(|l| !l.starts_with('#')).map(parse_line)
}

/// The records of the ftrace text trace, by CPU in file order.
fn parse_text(text: &str) -> BTreeMap<u32, Vec<Rec>> {
    let mut by_cpu: BTreeMap<u32, Vec<Rec>> = BTreeMap::new();
    for r in text_records(text) {
        by_cpu.entry(r.cpu).or_default().push(r);
    }
    by_cpu
}

fn require_tools() -> bool {
    std::env::var("PROXYSCHED_REQUIRE_TRACE_TOOLS").is_ok_and(|v| v == "1")
}

fn skip(what: &str) {
    assert!(
        !require_tools(),
        "{what}, and PROXYSCHED_REQUIRE_TRACE_TOOLS=1 requires it"
    );
    eprintln!("SKIPPED: {what} (set PROXYSCHED_REQUIRE_TRACE_TOOLS=1 to make this a failure)");
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trace_formats");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

fn run_tool(cmd: &mut Command) -> Option<String> {
    match cmd.output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{cmd:?}: {e}"),
        Ok(o) => {
            assert!(
                o.status.success(),
                "{cmd:?} failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
            Some(String::from_utf8(o.stdout).expect("utf8"))
        }
    }
}

/// `trace-cmd report` of the trace.dat: every record of the text trace, with the same CPU,
/// owner, flags, timestamp, event and payload, in the same per-CPU order.
fn check_trace_cmd(name: &str, protocol: &str) {
    let t = traces(name, protocol);
    let path = scratch(&format!("{}.{protocol}.dat", name.trim_end_matches(".json")));
    std::fs::write(&path, &t.dat).expect("write .dat");
    let p = path.to_str().expect("utf8 path");
    // -N: no plugins, so every record prints through its format's `print fmt`; -t: ns.
    let Some(plain) = run_tool(Command::new("trace-cmd").args(["report", "-N", "-t", p])) else {
        return skip("trace-cmd is not installed");
    };
    let latency = run_tool(Command::new("trace-cmd").args(["report", "-N", "-t", "-l", p]))
        .expect("trace-cmd ran once");
    let want = parse_text(&t.text);
    let mut got: BTreeMap<u32, Vec<Rec>> = BTreeMap::new();
    let lat: Vec<&str> = latency.lines().filter(|l| !l.starts_with("cpus=")).collect();
    let plain: Vec<&str> = plain.lines().filter(|l| !l.starts_with("cpus=")).collect();
    assert_eq!(plain.len(), lat.len(), "{name}: report line counts");
    for (line, lline) in plain.iter().zip(&lat) {
        let open = line.find(" [").unwrap_or_else(|| panic!("no [cpu] in {line:?}"));
        let (comm, pid) = owner(line[..open].trim_start());
        let close = line.find("] ").expect("]");
        let cpu: u32 = line[open + 2..close].parse().expect("cpu");
        let (ts, body) = line[close + 2..].trim_start().split_once(": ").expect("ts");
        let (sec, ns) = ts.split_once('.').expect("sec.nsec");
        let ns = sec.parse::<u64>().expect("sec") * 1_000_000_000 + ns.parse::<u64>().expect("ns");
        // Latency format: `comm-pid CPUflags ts: ...`; the flags follow the CPU digits.
        let cpu_flags = lline.split_whitespace().nth(1).expect("cpu+flags");
        let flags = cpu_flags.trim_start_matches(|c: char| c.is_ascii_digit());
        assert_eq!(&cpu_flags[..cpu_flags.len() - flags.len()], cpu.to_string());
        // Documented deviation: `%pS` prints `sym+0x0` where the text trace prints `sym`.
        // trace-cmd names the ftrace `print` event before its text, which the kernel's
        // trace file shows as `tracing_mark_write: ...`.
        let body = squeeze(body).replace("+0x0", "");
        let body = body.strip_prefix("print: ").map_or(body.clone(), str::to_string);
        got.entry(cpu).or_default().push(Rec {
            cpu,
            ts: usec_ts(ns),
            comm,
            pid,
            flags: flags.to_string(),
            body,
        });
    }
    assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
    let mut switches = 0;
    for (cpu, w) in &want {
        let g = &got[cpu];
        for (i, (a, b)) in w.iter().zip(g).enumerate() {
            assert_eq!(a, b, "{name} {protocol}: CPU {cpu} record {i}");
        }
        assert_eq!(w.len(), g.len(), "{name} {protocol}: CPU {cpu} record count");
        switches += w.iter().filter(|r| r.body.starts_with("sched_switch:")).count();
    }
    assert!(switches > 0, "{name}: the run has sched_switch records");
}

/// Perfetto's schema decodes the .pftrace into the same scheduler records as the text
/// trace, the same lock-wait and proxy slices, and a name for every thread.
fn check_perfetto(name: &str, protocol: &str) {
    let t = traces(name, protocol);
    let path = scratch(&format!("{}.{protocol}.pftrace", name.trim_end_matches(".json")));
    std::fs::write(&path, &t.pftrace).expect("write .pftrace");
    let python = std::env::var("PROXYSCHED_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/perfetto_decode.py");
    let out = match Command::new(&python).arg(&script).arg(&path).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return skip(&format!("{python} is not installed"))
        }
        Err(e) => panic!("{python}: {e}"),
        Ok(o) if o.status.code() == Some(77) => {
            return skip(&format!(
                "{python} has no `perfetto` package: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Ok(o) => {
            assert!(
                o.status.success(),
                "perfetto_decode.py failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8(o.stdout).expect("utf8")
        }
    };
    const SCHED: [&str; 8] = [
        "sched_switch:",
        "sched_waking:",
        "sched_wakeup:",
        "sched_wakeup_new:",
        "sched_migrate_task:",
        "sched_process_exit:",
        "sched_pi_setprio:",
        "task_newtask:",
    ];
    // The text trace's scheduler records, per CPU: `ts pid body` (Perfetto's exit event has
    // no group_dead field, so the text's suffix is dropped).
    let mut want: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut want_slices = Vec::new();
    let mut comms: BTreeMap<u32, String> = BTreeMap::new();
    {
        for r in text_records(&t.text) {
            if SCHED.iter().any(|s| r.body.starts_with(s)) {
                let body = r.body.replace(" group_dead=true", "");
                want.entry(r.cpu)
                    .or_default()
                    .push(format!("{} {} {body}", r.ts, r.pid));
            }
            if let Some(mark) = r.body.strip_prefix("tracing_mark_write: ") {
                let mut f = mark.splitn(3, '|');
                match (f.next(), f.next(), f.next()) {
                    (Some("B"), Some(pid), Some(slice)) => {
                        want_slices.push(format!("{} {pid} B {slice}", r.ts))
                    }
                    (Some("E"), Some(pid), None) => want_slices.push(format!("{} {pid} E", r.ts)),
                    _ => {}
                }
            }
            if let Some(rest) = r.body.strip_prefix("task_newtask: pid=") {
                let (pid, rest) = rest.split_once(" comm=").expect("comm");
                let comm = rest.split_whitespace().next().expect("comm");
                comms.insert(pid.parse().expect("pid"), comm.to_string());
            }
        }
    }
    let mut got: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut got_slices = Vec::new();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    for line in out.lines() {
        let mut f = line.splitn(2, ' ');
        let (kind, rest) = (f.next().expect("kind"), f.next().unwrap_or(""));
        match kind {
            "F" => {
                let v: Vec<&str> = rest.splitn(4, ' ').collect();
                let ts = usec_ts(v[1].parse().expect("ts"));
                got.entry(v[0].parse().expect("cpu")).or_default().push(format!(
                    "{ts} {} {}",
                    v[2],
                    squeeze(v[3])
                ));
            }
            "S" => {
                let (ts, rest) = rest.split_once(' ').expect("ts");
                got_slices.push(format!("{} {rest}", usec_ts(ts.parse().expect("ts"))));
            }
            "N" => {
                let (pid, n) = rest.split_once(' ').expect("name");
                names.insert(pid.parse().expect("pid"), n.to_string());
            }
            "C" => {}
            _ => panic!("unexpected line {line:?}"),
        }
    }
    assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
    for (cpu, w) in &want {
        let g = &got[cpu];
        for (i, (a, b)) in w.iter().zip(g).enumerate() {
            assert_eq!(a, b, "{name} {protocol}: CPU {cpu} record {i}");
        }
        assert_eq!(w.len(), g.len(), "{name} {protocol}: CPU {cpu} record count");
    }
    for (i, (a, b)) in want_slices.iter().zip(&got_slices).enumerate() {
        assert_eq!(a, b, "{name} {protocol}: slice record {i}");
    }
    assert_eq!(
        want_slices.len(),
        got_slices.len(),
        "{name} {protocol}: slice records"
    );
    assert_eq!(comms, names, "{name} {protocol}: every thread is named");
    if protocol == "proxy" {
        assert!(
            got_slices.iter().any(|s| s.contains(" B proxy for ")),
            "{name}: the proxy run has proxy slices"
        );
    }
}

#[test]
fn trace_cmd_reports_the_demo_as_the_text_trace() {
    for p in ["none", "pi", "proxy"] {
        check_trace_cmd("demo", p);
    }
}

#[test]
fn trace_cmd_reports_multi_cpu_proxy_runs_as_the_text_trace() {
    check_trace_cmd("proxy_swarm_4cpus.json", "proxy");
    check_trace_cmd("chain_migration.json", "proxy");
    check_trace_cmd("inversion_one_cpu.json", "pi");
    check_trace_cmd("workqueue_stall_without_sleeping_hook.json", "none");
}

#[test]
fn perfetto_schema_decodes_the_same_records_slices_and_flows() {
    check_perfetto("proxy_swarm_4cpus.json", "proxy");
    check_perfetto("proxy_waking_chain_link.json", "proxy");
    check_perfetto("chain_migration.json", "proxy");
    check_perfetto("inversion_one_cpu.json", "pi");
    check_perfetto("demo", "proxy");
}

/// Same workload, flags and seed: byte-identical binary traces.
#[test]
fn binary_traces_are_deterministic() {
    let a = traces("proxy_swarm_4cpus.json", "proxy");
    let b = traces("proxy_swarm_4cpus.json", "proxy");
    assert!(a.pftrace.len() > 10_000 && a.dat.len() > 10_000);
    assert!(
        a.pftrace == b.pftrace,
        "the .pftrace differs between two identical runs"
    );
    assert!(a.dat == b.dat, "the .dat differs between two identical runs");
}

/// The CLI picks the format from the extension, for `run` and for each of `compare`'s runs.
#[test]
fn cli_trace_format_follows_the_extension() {
    let bin = env!("CARGO_BIN_EXE_proxysched");
    let dir = scratch("cli");
    std::fs::create_dir_all(&dir).expect("dir");
    let scen = common::scenario_path("chain_migration.json");
    for (file, magic) in [
        ("t.pftrace", &b"\x0a"[..]),
        ("t.dat", &b"\x17\x08\x44tracing6\0"[..]),
        ("t.txt", &b"# tracer: nop\n"[..]),
    ] {
        let out = Command::new(bin)
            .arg("compare")
            .arg(&scen)
            .arg("--trace")
            .arg(dir.join(file))
            .output()
            .expect("run proxysched");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (stem, ext) = file.split_once('.').expect("ext");
        for p in ["none", "pi", "proxy"] {
            let bytes = std::fs::read(dir.join(format!("{stem}.{p}.{ext}"))).expect("trace file");
            assert!(bytes.starts_with(magic), "{file} under {p}");
        }
    }
    // `run` with the built-in demo: one file in the format of its extension.
    let out = Command::new(bin)
        .args(["run", "--trace"])
        .arg(dir.join("demo.dat"))
        .output()
        .expect("run proxysched");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dat = std::fs::read(dir.join("demo.dat")).expect("demo.dat");
    assert!(dat.starts_with(b"\x17\x08\x44tracing6\0"));
    assert_eq!(
        dat,
        traces("demo", "proxy").dat,
        "the CLI writes what the writer writes"
    );
    let pf = std::fs::read(dir.join("t.proxy.pftrace")).expect("pftrace");
    let trace = report::perfetto::decode(&pf).expect("decodes");
    assert!(trace
        .packet
        .iter()
        .all(|p| p.trusted_packet_sequence_id.is_some()));
}
