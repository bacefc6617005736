#!/bin/sh
# Re-makes the real-kernel data of this folder. Run as root, from this folder:
#
#   sh make_real.sh            # all three experiments, then outcomes.json
#   sh make_real.sh A C        # only some (A leak, B writer, C madvise,
#                              # F failcnt check); the outcomes of the others
#                              # are kept
#
# Needs cc, perf, python3, tracefs (mounted here if missing), a cgroup v1 memory
# hierarchy at /sys/fs/cgroup/memory, and /work/baseline/.venv/bin/memtrace for
# the snapshots. Every workload process runs inside a memory cgroup
# memtrace_real_{a,b,c} with memory.limit_in_bytes and memory.memsw.limit_in_bytes
# both set (<= 1 GiB), under timeout; the cgroups are removed at the end (trap).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
. ./common.sh
[ "$(id -u)" = 0 ] || die "run as root"
[ -d "$CGROOT" ] || die "no cgroup v1 memory hierarchy at $CGROOT"
T=/sys/kernel/tracing
[ -e "$T/events" ] || mount -t tracefs nodev "$T"

mkdir -p /tmp/memtrace-real
STATE_CGS=/tmp/memtrace-real/cgroups
STATE_PIDS=/tmp/memtrace-real/pids
: > "$STATE_CGS"
: > "$STATE_PIDS"
trap 'cleanup_all' EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$BIN"
cc -O2 -Wall -o "$BIN/hold" leak/hold.c
cc -O2 -Wall -o "$BIN/leaker" leak/leaker.c
cc -O2 -Wall -o "$BIN/writer" writer/writer.c
cc -O2 -Wall -o "$BIN/freer" madvise/freer.c
for name in db web bystander; do cp "$BIN/hold" "$BIN/$name"; done

REPS=${REPS:-3}

# ---------------------------------------------------------------- A: leak
A_LIMITS=${A_LIMITS:-"96 128 160 192 208 224 240 256 288"}
# the perf recordings: at 128 (the leaker killed) and at 288 (no kill: the
# whole workload is in the trace)
A_RECORD=${A_RECORD:-"128 288"}
INPUT=/var/tmp/memtrace-real/leaker-input.dat

exp_a_run() { # exp_a_run LIMIT REP PERF
	limit=$1 rep=$2 perf=$3
	tag="A-L$limit-$rep"
	name=memtrace_real_a
	fresh_state
	cg_make $name "$limit"
	CG=$CGROOT/$name
	begin="memtrace-real: $tag begin $(date +%s%N)"
	echo "$begin" > /dev/kmsg
	# web predates the trace: started here, in the cgroup, before perf record
	mkfifo "$STATE/web.ready"
	sh -c "echo \$\$ > $CG/cgroup.procs; exec timeout 40 $BIN/web 24 200 $STATE/web.ready web-worker" &
	web=$(timeout 20 sh -c 'read -r pid < "$1"; echo "$pid"' sh "$STATE/web.ready") || die "web did not start"
	t0=$(now_ms)
	if [ "$perf" = 1 ]; then
		out=leak/leak-L$limit
		snap_waiter "$PWD/$out.snapshot.json.gz"
		# the roots of the trace: web and its timeout (in the cgroup before the
		# trace), and run.sh with its timeout (written by run.sh)
		perf_record "$out" "$STATE/roots.all" -- env CG="$CG" BIN="$BIN" STATE="$STATE" \
			TAG="$tag" INPUT="$INPUT" WEB_PID="$web" SNAP=1 timeout 60 sh leak/run.sh &
		prec=$!
		wait_file "$STATE/roots" 100 || true
		echo "$(cat "$CG/cgroup.procs" | tr '\n' ' ') $(cat "$STATE/roots")" > "$STATE/roots.all"
		wait $prec
	else
		env CG="$CG" BIN="$BIN" STATE="$STATE" TAG="$tag" INPUT="$INPUT" WEB_PID="$web" SNAP=0 \
			timeout 60 sh leak/run.sh || true
	fi
	t1=$(now_ms)
	mkdir -p leak/runs
	dmesg_since "$begin" "leak/runs/$tag.dmesg.txt"
	[ "$perf" = 1 ] && cp "leak/runs/$tag.dmesg.txt.gz" "leak/leak-L$limit.dmesg.txt.gz"
	cat > "leak/runs/$tag.json" <<EOJ
{"experiment": "A", "tag": "$tag", "limit_mib": $limit, "rep": "$rep", "perf": $perf, "wall_ms": $((t1 - t0)),
 "exit": "$(cat "$STATE/leaker.rc" 2>/dev/null || echo none)", $(cg_counters $name),
 "dmesg": "runs/$tag.dmesg.txt.gz"}
EOJ
	cg_remove $name
	sleep 1
}

exp_a() {
	mkdir -p /var/tmp/memtrace-real leak/runs
	rm -f leak/runs/*
	head -c $((8 * MIB)) /dev/urandom > "$INPUT"
	sync
	if [ "${SKIP_RECORD:-0}" != 1 ]; then
		for limit in $A_RECORD; do exp_a_run "$limit" rec 1; done
	fi
	for limit in $A_LIMITS; do
		for rep in $(seq 1 "$REPS"); do exp_a_run "$limit" "r$rep" 0; done
	done
	rm -f "$INPUT"
}

# ---------------------------------------------------------------- B: writer
B_LIMITS=${B_LIMITS:-"64 128 256 384 512 768"}
B_RECORD=256
OUTDIR=/var/tmp/memtrace-real

exp_b_run() { # exp_b_run LIMIT REP PERF
	limit=$1 rep=$2 perf=$3
	tag="B-L$limit-$rep"
	name=memtrace_real_b
	fresh_state
	mkdir -p "$OUTDIR" writer/runs
	fstype=$(findmnt -n -o FSTYPE -T "$OUTDIR")
	[ "$fstype" != tmpfs ] || die "$OUTDIR is on tmpfs"
	rm -f "$OUTDIR/writer.dat"
	sync
	echo 1 > /proc/sys/vm/drop_caches
	cg_make $name "$limit"
	CG=$CGROOT/$name
	begin="memtrace-real: $tag begin $(date +%s%N)"
	echo "$begin" > /dev/kmsg
	$PY sampler.py "$CG" "$STATE/samples.csv" "$STATE/sampler.stop" 10 &
	sampler=$!
	echo $sampler >> "$STATE_PIDS"
	wait_file "$STATE/samples.csv" 50
	sleep 0.05
	t0=$(now_ms)
	if [ "$perf" = 1 ]; then
		out=writer/writer-L$limit
		snap_waiter "$PWD/$out.snapshot.json.gz"
		perf_record "$out" "$STATE/roots.all" -- env CG="$CG" BIN="$BIN" STATE="$STATE" \
			TAG="$tag" OUT="$OUTDIR/writer.dat" SNAP=1 timeout 600 sh writer/run.sh &
		prec=$!
		wait_file "$STATE/roots" 100 || true
		cp "$STATE/roots" "$STATE/roots.all"
		# the sampler goes on while perf script runs: stop it when the run ends
		( while [ ! -e "$STATE/writer.rc" ] || [ -n "$(cat "$CG/cgroup.procs")" ]; do sleep 0.05; done
		  sleep 0.5; touch "$STATE/sampler.stop" ) &
		wait $prec
	else
		env CG="$CG" BIN="$BIN" STATE="$STATE" TAG="$tag" OUT="$OUTDIR/writer.dat" SNAP=0 \
			timeout 600 sh writer/run.sh || true
		sleep 0.5
	fi
	t1=$(now_ms)
	touch "$STATE/sampler.stop"
	wait $sampler || true
	gzip -9 -c "$STATE/samples.csv" > "writer/runs/$tag.samples.csv.gz"
	dmesg_since "$begin" "writer/runs/$tag.dmesg.txt"
	if [ "$perf" = 1 ]; then
		cp "writer/runs/$tag.dmesg.txt.gz" "writer/writer-L$limit.dmesg.txt.gz"
		cp "writer/runs/$tag.samples.csv.gz" "writer/writer-L$limit.samples.csv.gz"
	fi
	cat > "writer/runs/$tag.json" <<EOJ
{"experiment": "B", "tag": "$tag", "limit_mib": $limit, "rep": "$rep", "perf": $perf, "wall_ms": $((t1 - t0)),
 "exit": "$(cat "$STATE/writer.rc" 2>/dev/null || echo none)", "writer": $(cat "$STATE/writer.out" 2>/dev/null | grep . || echo null),
 "fstype": "$fstype", $(cg_counters $name),
 "samples": "runs/$tag.samples.csv.gz", "dmesg": "runs/$tag.dmesg.txt.gz"}
EOJ
	cg_remove $name
	rm -f "$OUTDIR/writer.dat"
	sync
	echo 1 > /proc/sys/vm/drop_caches
	sleep 1
}

exp_b() {
	mkdir -p writer/runs
	rm -f writer/runs/*
	[ "${SKIP_RECORD:-0}" = 1 ] || exp_b_run $B_RECORD rec 1
	for limit in $B_LIMITS; do
		for rep in $(seq 1 "${B_REPS:-3}"); do exp_b_run "$limit" "r$rep" 0; done
	done
}

# ---------------------------------------------------------------- C: madvise
C_LIMITS=${C_LIMITS:-"64 96 128 160 192 256"}
C_MODES=${C_MODES:-"dontneed free munmap"}
C_STEPS=${C_STEPS:-24}
# the recordings (perf + dmesg + snapshot): MODE:LIMIT; killed at 64-96, not at 256
C_RECORD=${C_RECORD:-"dontneed:96 free:96 munmap:96 dontneed:64 dontneed:256 free:256 munmap:256"}

exp_c_run() { # exp_c_run LIMIT MODE REP PERF
	limit=$1 mode=$2 rep=$3 perf=$4
	tag="C-$mode-L$limit-$rep"
	name=memtrace_real_c
	fresh_state
	cg_make $name "$limit"
	CG=$CGROOT/$name
	begin="memtrace-real: $tag begin $(date +%s%N)"
	echo "$begin" > /dev/kmsg
	t0=$(now_ms)
	if [ "$perf" = 1 ]; then
		out=madvise/madvise-$mode-L$limit
		snap_waiter "$PWD/$out.snapshot.json.gz"
		perf_record "$out" "$STATE/roots.all" -- env CG="$CG" BIN="$BIN" STATE="$STATE" \
			TAG="$tag" MODE="$mode" STEPS=$C_STEPS SNAP=1 timeout 60 sh madvise/run.sh &
		prec=$!
		wait_file "$STATE/roots" 100 || true
		cp "$STATE/roots" "$STATE/roots.all"
		wait $prec
	else
		env CG="$CG" BIN="$BIN" STATE="$STATE" TAG="$tag" MODE="$mode" STEPS=$C_STEPS SNAP=0 \
			timeout 60 sh madvise/run.sh || true
	fi
	t1=$(now_ms)
	mkdir -p madvise/runs
	dmesg_since "$begin" "madvise/runs/$tag.dmesg.txt"
	[ "$perf" = 1 ] && cp "madvise/runs/$tag.dmesg.txt.gz" "madvise/madvise-$mode-L$limit.dmesg.txt.gz"
	cat > "madvise/runs/$tag.json" <<EOJ
{"experiment": "C", "tag": "$tag", "limit_mib": $limit, "mode": "$mode", "steps": $C_STEPS, "rep": "$rep", "perf": $perf,
 "wall_ms": $((t1 - t0)), "exit": "$(cat "$STATE/freer.rc" 2>/dev/null || echo none)",
 "finished": $(grep -q done "$STATE/freer.out" 2>/dev/null && echo true || echo false), $(cg_counters $name),
 "dmesg": "runs/$tag.dmesg.txt.gz"}
EOJ
	cg_remove $name
	sleep 1
}

exp_c() {
	mkdir -p madvise/runs
	rm -f madvise/runs/*
	if [ "${SKIP_RECORD:-0}" != 1 ]; then
		for ml in $C_RECORD; do exp_c_run "${ml#*:}" "${ml%:*}" rec 1; done
	fi
	for limit in $C_LIMITS; do
		for mode in $C_MODES; do
			for rep in $(seq 1 "$REPS"); do exp_c_run "$limit" "$mode" "r$rep" 0; done
		done
	done
}

# ---------------------------------------------------------------- F: failcnt
# Why memory.failcnt stays 0 in A-C: with memsw limit == memory limit the
# memory+swap counter is charged first and fails first, and on 6.18 only the
# memory counter counts failures (memsw.failcnt is not tracked). Here the freer
# (dontneed, 24 steps, alone) runs once with memsw == limit = 64 MiB and once
# with limit 64 MiB, memsw 128 MiB (no swap, so memsw > limit changes nothing
# else).
exp_f_run() { # exp_f_run LIMIT MEMSW REP
	limit=$1 memsw=$2 rep=$3
	tag="F-L$limit-M$memsw-$rep"
	name=memtrace_real_f
	fresh_state
	cg_make $name "$limit"
	CG=$CGROOT/$name
	echo $((memsw * MIB)) > "$CG/memory.memsw.limit_in_bytes"
	[ "$(cat "$CG/memory.memsw.limit_in_bytes")" = $((memsw * MIB)) ] || die "memsw limit not set on $CG"
	begin="memtrace-real: $tag begin $(date +%s%N)"
	echo "$begin" > /dev/kmsg
	t0=$(now_ms)
	sh -c "echo \$\$ > $CG/cgroup.procs; echo 'memtrace-real: $tag start' > /dev/kmsg; exec timeout 15 $BIN/freer dontneed 24 30000" \
		> "$STATE/freer.out" 2>&1 || true
	t1=$(now_ms)
	mkdir -p failcnt/runs
	dmesg_since "$begin" "failcnt/runs/$tag.dmesg.txt"
	cat > "failcnt/runs/$tag.json" <<EOJ
{"experiment": "F", "tag": "$tag", "limit_mib": $limit, "memsw_limit_mib": $memsw, "rep": "$rep", "perf": 0, "wall_ms": $((t1 - t0)),
 "finished": $(grep -q done "$STATE/freer.out" 2>/dev/null && echo true || echo false), $(cg_counters $name),
 "dmesg": "runs/$tag.dmesg.txt.gz"}
EOJ
	cg_remove $name
	sleep 1
}

exp_f() {
	mkdir -p failcnt/runs
	rm -f failcnt/runs/*
	exp_f_run 64 64 r1
	exp_f_run 64 128 r1
}

[ $# -gt 0 ] || set -- A B C F
for e in "$@"; do
	case $e in
	A) exp_a ;;
	B) exp_b ;;
	C) exp_c ;;
	F) exp_f ;;
	*) die "unknown experiment $e" ;;
	esac
done
[ "${SKIP_COLLECT:-0}" = 1 ] || $PY collect.py
chmod 644 ./*/*.gz ./*/runs/* 2>/dev/null || true
ls -l leak writer madvise failcnt
