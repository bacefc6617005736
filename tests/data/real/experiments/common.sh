# Helpers sourced by make_real.sh (POSIX sh). See README.md.
CGROOT=/sys/fs/cgroup/memory
BIN=/tmp/memtrace-real/bin
STATE=/tmp/memtrace-real/state
MEMTRACE=/work/baseline/.venv/bin/memtrace
PY=${PY:-python3}
MIB=1048576
# Every event of the brief that exists on this kernel (6.18): no
# writeback:writeback_dirty_page (folio only) and no sched:sched_process_rename
# (task:task_rename instead).
EVENTS='syscalls:sys_enter_mmap,syscalls:sys_exit_mmap,syscalls:sys_enter_munmap,syscalls:sys_exit_munmap,syscalls:sys_enter_brk,syscalls:sys_exit_brk,syscalls:sys_enter_mremap,syscalls:sys_exit_mremap,syscalls:sys_enter_mprotect,syscalls:sys_exit_mprotect,syscalls:sys_enter_madvise,syscalls:sys_exit_madvise,syscalls:sys_enter_clone,syscalls:sys_exit_clone,syscalls:sys_enter_clone3,syscalls:sys_exit_clone3,syscalls:sys_enter_execve,syscalls:sys_exit_execve,syscalls:sys_enter_exit_group,syscalls:sys_exit_exit_group,exceptions:page_fault_user,kmem:rss_stat,filemap:mm_filemap_add_to_page_cache,filemap:mm_filemap_delete_from_page_cache,writeback:writeback_dirty_folio,writeback:balance_dirty_pages,vmscan:*,oom:*,sched:sched_process_fork,sched:sched_process_exec,sched:sched_process_exit,task:task_rename'

die() { echo "make_real: $*" >&2; exit 1; }
log() { echo "make_real: $*" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# cg_make NAME LIMIT_MIB: a fresh memory cgroup v1 with memory.limit_in_bytes and
# memory.memsw.limit_in_bytes both set to LIMIT_MIB (limit first, then memsw).
cg_make() {
	[ "$2" -le 1024 ] || die "limit $2 MiB > 1 GiB refused"
	cg=$CGROOT/$1
	[ -d "$cg" ] && cg_remove "$1"
	mkdir "$cg"
	echo "$1" >> "$STATE_CGS"
	echo $(($2 * MIB)) > "$cg/memory.limit_in_bytes"
	echo $(($2 * MIB)) > "$cg/memory.memsw.limit_in_bytes"
	[ "$(cat "$cg/memory.limit_in_bytes")" = $(($2 * MIB)) ] || die "limit not set on $cg"
	[ "$(cat "$cg/memory.memsw.limit_in_bytes")" = $(($2 * MIB)) ] || die "memsw limit not set on $cg"
}

# cg_remove NAME: SIGKILL what is left in it (only our workload can be there),
# wait for it to empty, remove it.
cg_remove() {
	cg=$CGROOT/$1
	[ -d "$cg" ] || return 0
	for pid in $(cat "$cg/cgroup.procs"); do kill -KILL "$pid" 2>/dev/null || true; done
	i=0
	while [ -n "$(cat "$cg/cgroup.procs")" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	rmdir "$cg" 2>/dev/null || { sleep 0.5; rmdir "$cg"; } || log "could not remove $cg"
}

cleanup_all() {
	if [ -f "$STATE_PIDS" ]; then
		# only if still ours (pids may have been reused since)
		for pid in $(cat "$STATE_PIDS"); do
			if grep -qaE 'sampler\.py|make_real\.sh' "/proc/$pid/cmdline" 2>/dev/null; then
				kill "$pid" 2>/dev/null || true
			fi
		done
	fi
	if [ -f "$STATE_CGS" ]; then
		for name in $(sort -u "$STATE_CGS"); do cg_remove "$name"; done
	fi
	rm -f /var/tmp/memtrace-real/writer.dat
}

cg_counters() { # cg_counters NAME -> JSON fragment
	cg=$CGROOT/$1
	printf '"max_usage_in_bytes": %s, "failcnt": %s, "memsw_max_usage_in_bytes": %s, "memsw_failcnt": %s, "oom_kill": %s' \
		"$(cat "$cg/memory.max_usage_in_bytes")" "$(cat "$cg/memory.failcnt")" \
		"$(cat "$cg/memory.memsw.max_usage_in_bytes")" "$(cat "$cg/memory.memsw.failcnt")" \
		"$(awk '$1 == "oom_kill" {print $2}' "$cg/memory.oom_control")"
}

fresh_state() {
	rm -rf "$STATE"
	mkdir -p "$STATE"
}

wait_file() { # wait_file PATH TENTHS_OF_SECONDS
	i=0
	while [ ! -e "$1" ] && [ $i -lt $(($2 * 2)) ]; do sleep 0.05; i=$((i + 1)); done
	[ -e "$1" ]
}

# snap_waiter OUT: in the background, outside the cgroup and outside perf's
# process tree: waits for run.sh's snapshot request, takes a memtrace snapshot.
snap_waiter() {
	mkfifo "$STATE/snap.fifo"
	(
		if wait_file "$STATE/snap.req" 600; then
			"$MEMTRACE" snapshot -o "$1" --top 40 > "$STATE/snapshot.txt" 2>&1 || true
		fi
		echo done > "$STATE/snap.fifo"
	) &
	echo $! >> "$STATE_PIDS"
}

# perf_record OUTBASE ROOTFILE -- COMMAND...: records EVENTS machine-wide while
# COMMAND runs, then keeps the lines of the workload's tasks (the pids in
# ROOTFILE and every task they fork) and of kswapd*/oom_reaper.
perf_record() {
	out=$1 roots=$2
	shift 3
	perf record -m 2048 -o "$STATE/perf.data" -e "$EVENTS" -a -- "$@" 2> "$out.perf-record.log" || true
	perf script -i "$STATE/perf.data" 2> "$STATE/perf-script.err" > "$STATE/perf-all.txt"
	perf report -i "$STATE/perf.data" --stats 2>/dev/null | grep -iE 'lost|LOST' >> "$out.perf-record.log" || true
	$PY "$HERE/filter_perf.py" "$STATE/perf-all.txt" "$out.perf-script.txt" $(cat "$roots") >> "$out.perf-record.log"
	rm -f "$STATE/perf-all.txt" "$STATE/perf.data" "$STATE/perf.data.old"
	gzip -9 -f "$out.perf-script.txt"
}

dmesg_since() { # dmesg_since MARKER OUT
	dmesg | sed -n "/$1/,\$p" > "$2"
	gzip -9 -f "$2"
}
