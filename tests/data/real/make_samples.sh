#!/bin/sh
# Makes the real samples of this folder (run as root, from this folder):
#
#   sh make_samples.sh
#
# Needs perf, tracefs and a cgroup v1 memory hierarchy at /sys/fs/cgroup/memory.
# Every workload process runs inside the memory cgroup memtrace_test, limited to
# 64 MiB (memory+swap too): the OOM kills it provokes are memcg OOMs, never a
# machine-wide one. The cgroup is removed at the end.
#
# Workload (leaky.c): "holder" maps and writes 16 MiB with oom_score_adj 1000 and
# sleeps; "leaker" maps and writes 1 MiB every 5 ms until killed. The holder's
# adj outweighs the leaker's larger RSS, so the first kill takes the holder, the
# second the leaker.
#
# Outputs (gzipped): memcg-v1-two-kills.perf-script.txt.gz (perf script of the
# events below, the lines of the workload's tasks and of the OOM machinery only),
# memcg-v1-two-kills.dmesg.txt.gz (dmesg since a marker), and the same run once
# more through tracefs: memcg-v1-ftrace.trace.txt.gz + memcg-v1-ftrace.dmesg.txt.gz.
set -eu
CG=/sys/fs/cgroup/memory/memtrace_test
BIN=/tmp/memtrace-leaky
EVENTS='syscalls:sys_enter_mmap,syscalls:sys_exit_mmap,syscalls:sys_enter_munmap,syscalls:sys_enter_brk,syscalls:sys_exit_brk,exceptions:page_fault_user,kmem:rss_stat,oom:mark_victim,oom:oom_score_adj_update,oom:wake_reaper,oom:start_task_reaping,oom:finish_task_reaping,vmscan:*'

cc -O2 -Wall -o "$BIN" leaky.c
cleanup() {
	[ -d "$CG" ] && rmdir "$CG" 2>/dev/null || true
	rm -f /tmp/memtrace-run.sh /tmp/memtrace.perf.data /tmp/memtrace.perf.data.old
}
trap cleanup EXIT

make_cgroup() {
	[ -d "$CG" ] || mkdir "$CG"
	echo 64M > "$CG/memory.limit_in_bytes"
	echo 64M > "$CG/memory.memsw.limit_in_bytes" 2>/dev/null || true
}

cat > /tmp/memtrace-run.sh <<EOS
echo \$\$ > $CG/cgroup.procs
timeout 20 $BIN 16 1000 0 0 &
sleep 0.3
timeout 20 $BIN 0 0 1024 5000 || true
wait || true
EOS

# 1. perf
make_cgroup
marker="memtrace-sample-perf-$(date +%s)"
echo "$marker" > /dev/kmsg
perf record -q -o /tmp/memtrace.perf.data -e "$EVENTS" -a -- sh /tmp/memtrace-run.sh
perf script -i /tmp/memtrace.perf.data > /tmp/memtrace-all.txt
# Keep the workload's tasks (sh, timeout, memtrace-leaky, perf-exec) and the OOM
# machinery (kswapd, oom_reaper); drop other tasks on this shared machine.
grep -E '^ *(sh|timeout|memtrace-leaky|perf-exec|kswapd[0-9]*|oom_reaper) ' /tmp/memtrace-all.txt \
	> memcg-v1-two-kills.perf-script.txt || true
rm -f /tmp/memtrace-all.txt
dmesg | sed -n "/$marker/,\$p" > memcg-v1-two-kills.dmesg.txt
rmdir "$CG"

# 2. ftrace (tracefs)
T=/sys/kernel/tracing
[ -e "$T/trace" ] || mount -t tracefs nodev "$T"
make_cgroup
marker="memtrace-sample-ftrace-$(date +%s)"
echo "$marker" > /dev/kmsg
size_kb=$(cat "$T/buffer_size_kb")
fork_opt=$(cat "$T/options/event-fork")
echo 0 > "$T/tracing_on"
echo > "$T/trace"
echo 16384 > "$T/buffer_size_kb"
echo 1 > "$T/options/event-fork"
echo "$EVENTS" | tr ',' '\n' > "$T/set_event"
# Only the workload's tasks: its shell starts stopped, goes into set_event_pid, and
# its children follow (event-fork).
sh -c 'kill -STOP $$; exec sh /tmp/memtrace-run.sh' &
run=$!
sleep 0.2
echo "$run" > "$T/set_event_pid"
echo 1 > "$T/tracing_on"
kill -CONT "$run"
wait "$run" || true
echo 0 > "$T/tracing_on"
cp "$T/trace" memcg-v1-ftrace.trace.txt
echo > "$T/set_event"
echo > "$T/set_event_pid"
echo "$fork_opt" > "$T/options/event-fork"
echo > "$T/trace"
echo "$size_kb" > "$T/buffer_size_kb"
dmesg | sed -n "/$marker/,\$p" > memcg-v1-ftrace.dmesg.txt
rmdir "$CG"

gzip -9 -f memcg-v1-two-kills.perf-script.txt memcg-v1-two-kills.dmesg.txt \
	memcg-v1-ftrace.trace.txt memcg-v1-ftrace.dmesg.txt
chmod 644 ./*.gz
ls -l ./*.gz
