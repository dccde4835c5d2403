#!/usr/bin/env python3
"""Decode a proxysched .pftrace with Perfetto's official schema and print it canonically.

Used by crates/cli/tests/trace_formats.rs, which compares the output with the ftrace text
trace of the same run. The schema is `perfetto_trace_pb2` from the `perfetto` package on
PyPI (the compiled protos/perfetto/trace/perfetto_trace.proto), so a field number that
differs from upstream decodes as an unknown field and the comparison fails.

Output lines:
  F <cpu> <ts_ns> <common_pid> <event>: <payload as the kernel's trace file prints it>
  S <ts_ns> <pid> B <slice name>      (slice begin on the pid's thread or proxy track)
  S <ts_ns> <pid> E                   (slice end)
  C <ts_ns> <counter track name> <value>
  N <pid> <thread name>               (thread descriptors)
Checks that fail the run (exit 1, message on stderr): a packet without
trusted_packet_sequence_id; a proxy slice whose flow does not start at a `donates to`
instant on the donor's thread while the donor waits for a lock; a track event on an
undescribed track.
"""
import sys

try:
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
except ImportError as e:  # the caller skips the test on this exit code
    print(f"perfetto_trace_pb2 unavailable: {e}", file=sys.stderr)
    sys.exit(77)

PREV_STATE = {0: "R", 0x100: "R+", 0x1: "S", 0x2: "D", 0x4: "T", 0x8: "t",
              0x10: "X", 0x20: "Z", 0x40: "P", 0x80: "I"}


def fail(msg):
    print(f"perfetto_decode: {msg}", file=sys.stderr)
    sys.exit(1)


def render(ev):
    kind = ev.WhichOneof("event")
    if kind == "sched_switch":
        s = ev.sched_switch
        if s.prev_state not in PREV_STATE:
            fail(f"unexpected prev_state {s.prev_state}")
        return (f"sched_switch: prev_comm={s.prev_comm} prev_pid={s.prev_pid} "
                f"prev_prio={s.prev_prio} prev_state={PREV_STATE[s.prev_state]} ==> "
                f"next_comm={s.next_comm} next_pid={s.next_pid} next_prio={s.next_prio}")
    if kind in ("sched_waking", "sched_wakeup", "sched_wakeup_new"):
        s = getattr(ev, kind)
        return f"{kind}: comm={s.comm} pid={s.pid} prio={s.prio} target_cpu={s.target_cpu:03d}"
    if kind == "sched_migrate_task":
        s = ev.sched_migrate_task
        return (f"sched_migrate_task: comm={s.comm} pid={s.pid} prio={s.prio} "
                f"orig_cpu={s.orig_cpu} dest_cpu={s.dest_cpu}")
    if kind == "sched_process_exit":
        s = ev.sched_process_exit
        if s.tgid != s.pid:
            fail(f"sched_process_exit tgid {s.tgid} != pid {s.pid}")
        return f"sched_process_exit: comm={s.comm} pid={s.pid} prio={s.prio}"
    if kind == "sched_pi_setprio":
        s = ev.sched_pi_setprio
        return f"sched_pi_setprio: comm={s.comm} pid={s.pid} oldprio={s.oldprio} newprio={s.newprio}"
    if kind == "task_newtask":
        s = ev.task_newtask
        return (f"task_newtask: pid={s.pid} comm={s.comm} clone_flags={s.clone_flags:x} "
                f"oom_score_adj={s.oom_score_adj}")
    fail(f"unexpected ftrace event {kind}")


def main(path):
    trace = pb.Trace()
    with open(path, "rb") as f:
        trace.ParseFromString(f.read())
    if not trace.packet:
        fail("no packets")
    tracks = {}  # uuid -> (kind, pid or name)
    thread_of = {}  # uuid -> pid
    open_waits = {}  # pid -> depth of open lock_wait slices
    flows = {}  # flow id -> donor pid
    out = []
    release = None
    for i, p in enumerate(trace.packet):
        if not p.HasField("trusted_packet_sequence_id"):
            fail(f"packet {i} has no trusted_packet_sequence_id")
        data = p.WhichOneof("data")
        if data == "system_info":
            release = p.system_info.utsname.release
        elif data == "ftrace_events":
            b = p.ftrace_events
            for ev in b.event:
                out.append(f"F {b.cpu} {ev.timestamp} {ev.pid} {render(ev)}")
        elif data == "track_descriptor":
            d = p.track_descriptor
            if d.HasField("thread"):
                thread_of[d.uuid] = d.thread.tid
                out.append(f"N {d.thread.tid} {d.thread.thread_name}")
            elif d.HasField("process"):
                pass
            elif d.HasField("counter"):
                tracks[d.uuid] = d.name
            elif d.parent_uuid in thread_of:
                thread_of[d.uuid] = thread_of[d.parent_uuid]
                tracks[d.uuid] = d.name
            else:
                fail(f"unexpected track descriptor {d}")
        elif data == "track_event":
            te = p.track_event
            ts = p.timestamp
            if te.type == pb.TrackEvent.TYPE_COUNTER:
                if te.track_uuid not in tracks:
                    fail(f"counter on undescribed track {te.track_uuid}")
                out.append(f"C {ts} {tracks[te.track_uuid]} {te.counter_value}")
                continue
            if te.track_uuid not in thread_of:
                fail(f"track event on undescribed track {te.track_uuid}")
            pid = thread_of[te.track_uuid]
            proxy = te.track_uuid in tracks
            if te.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
                out.append(f"S {ts} {pid} B {te.name}")
                if te.name.startswith("lock_wait "):
                    open_waits[pid] = open_waits.get(pid, 0) + 1
                elif proxy and te.name.startswith("proxy for "):
                    donor = int(te.name.rsplit("-", 1)[1])
                    ids = list(te.terminating_flow_ids)
                    if len(ids) != 1 or flows.pop(ids[0], None) != donor:
                        fail(f"proxy slice at {ts} on {pid} has no flow from donor {donor}")
                else:
                    fail(f"unexpected slice {te.name}")
            elif te.type == pb.TrackEvent.TYPE_SLICE_END:
                out.append(f"S {ts} {pid} E")
                if not proxy:
                    open_waits[pid] = open_waits.get(pid, 0) - 1
            elif te.type == pb.TrackEvent.TYPE_INSTANT:
                if not te.name.startswith("donates to ") or len(te.flow_ids) != 1:
                    fail(f"unexpected instant {te}")
                if open_waits.get(pid, 0) <= 0:
                    fail(f"donor {pid} donates at {ts} outside a lock wait")
                flows[te.flow_ids[0]] = pid
            else:
                fail(f"unexpected track event type {te.type}")
    if flows:
        fail(f"flows that never reach a proxy slice: {sorted(flows)}")
    if release is None or int(release.split(".")[0]) < 5:
        fail(f"system_info release {release!r} does not select the 4.14+ prev_state layout")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
