#!/usr/bin/env python3
"""Where a JVM's CPU goes, kernel included: classes `perf script` samples of one or two JVMs.

Used for docs/BENCHMARKS.md, "Where a blocking call's client CPU goes". JFR samples Java code
only; on a VM where wake-ups are expensive most of a blocking call's CPU is in the kernel.

    # JVMs started with -XX:+UnlockDiagnosticVMOptions -XX:+DumpPerfMapAtExit (JIT frame names)
    perf record -e cpu-clock -F 999 -g -p CLIENT_PID,SERVER_PID -o perf.data -- sleep 6
    # after both JVMs exited (they write /tmp/perf-PID.map then)
    perf script -i perf.data -F pid,comm,tid,ip,sym > samples.txt
    python3 docs/tools/perf_breakdown.py samples.txt CLIENT_PID [SERVER_PID]

Each sample is classed by its kernel path (the futex wait of a park, the futex wake of an
unpark, sched_yield, epoll, other) or, in user space, by the first frame on its stack (leaf
first) of the benchmark, grpc-shm, grpc-java, Netty or protobuf; threads are grouped by name with
digits folded.
"""
import collections
import re
import sys

PARK_WAIT = ('__futex_abstimed_wait_common', 'pthread_cond_wait', 'pthread_cond_timedwait')
UNPARK_WAKE = ('pthread_cond_signal', '__GI___lll_lock_wake')
KERNEL_LEAF = ('pvm_', '_raw', 'futex', '__futex', 'try_to_wake', '__x64_sys', 'do_syscall',
               'entry_SYSCALL', 'asm_', '__schedule', 'finish_task', 'schedule')


def samples(path):
    cur = None
    for line in open(path, errors='replace'):
        if not line.strip():
            if cur:
                yield cur
            cur = None
        elif not line[0].isspace():
            head = line.split()
            cur = (head[0], head[1].split('/')[0], [])
        elif cur is not None:
            parts = line.strip().split(None, 1)
            cur[2].append(parts[1] if len(parts) > 1 else '?')
    if cur:
        yield cur


def kind(frames):
    if frames[0].startswith(KERNEL_LEAF):
        for f in frames:
            if f.startswith(PARK_WAIT):
                return 'kernel: park (futex wait)'
            if f.startswith(UNPARK_WAKE):
                return 'kernel: unpark (futex wake)'
            if f == '__sched_yield':
                return 'kernel: sched_yield'
            if f.startswith('epoll_wait'):
                return 'kernel: epoll_wait'
        return 'kernel: other'
    for f in frames:
        method = f.split('(')[0].split(' ')[-1]
        for prefix, name in (('io.grpcshm.examples', 'the benchmark'), ('io.grpcshm', 'grpc-shm'), ('io.grpc', 'grpc-java'),
                             ('io.netty', 'netty'), ('com.google', 'protobuf')):
            if method.startswith(prefix):
                return 'user: ' + name
    if any(f.startswith('Interpreter') for f in frames):
        return 'user: interpreter'
    return 'user: JVM, JDK, native'


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    names = {sys.argv[2]: 'client'}
    if len(sys.argv) > 3:
        names[sys.argv[3]] = 'server'
    counts = collections.Counter()
    totals = collections.Counter()
    for comm, pid, frames in samples(sys.argv[1]):
        if frames and pid in names:
            group = re.sub(r'\d+', '#', comm)
            counts[(names[pid], group, kind(frames))] += 1
            totals[names[pid]] += 1
    for side in names.values():
        print('== %s JVM: %d samples' % (side, totals[side]))
        for (s, group, k), n in counts.most_common():
            if s == side and n >= 0.005 * totals[side]:
                print('  %5.1f%%  %-18s %s' % (100.0 * n / totals[side], group, k))


if __name__ == '__main__':
    main()
