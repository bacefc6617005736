# One run of experiment A ("leak with bystanders"), started by make_real.sh as
# `timeout 60 sh leak/run.sh` (under perf record for the recording) with the
# environment CG (memory cgroup dir), BIN, STATE, TAG, INPUT (8 MiB file),
# WEB_PID ("web", already running in CG since before this script), SNAP (1: ask
# make_real.sh for a memtrace snapshot once db is up, before the leak starts).
# Waits are blocking reads of FIFOs (no polling processes in the trace).
echo $$ > "$CG/cgroup.procs"
echo "$PPID $$" > "$STATE/roots"
echo "memtrace-real: $TAG start" > /dev/kmsg
mkfifo "$STATE/db.ready"
timeout 20 "$BIN/db" 40 0 "$STATE/db.ready" &
db=$!
read -r dbpid < "$STATE/db.ready"
kill -USR1 "$WEB_PID"   # web renames itself to web-worker (prctl PR_SET_NAME)
if [ "${SNAP:-0}" = 1 ]; then
	: > "$STATE/snap.req"
	read -r _ < "$STATE/snap.fifo"
fi
sleep 0.1
echo "memtrace-real: $TAG leaker-start" > /dev/kmsg
timeout 6 "$BIN/leaker" "$INPUT" 4096 30000 160
echo "leaker $?" > "$STATE/leaker.rc"
kill "$db" "$WEB_PID" 2>/dev/null
wait
echo "memtrace-real: $TAG end" > /dev/kmsg
