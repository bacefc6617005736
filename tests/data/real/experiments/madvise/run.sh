# One run of experiment C ("madvise freer"), started by make_real.sh as
# `timeout 60 sh madvise/run.sh` (under perf record for the recording) with the
# environment CG, BIN, STATE, TAG, MODE (dontneed, free or munmap), STEPS, SNAP.
echo $$ > "$CG/cgroup.procs"
echo "$PPID $$" > "$STATE/roots"
echo "memtrace-real: $TAG start" > /dev/kmsg
mkfifo "$STATE/bystander.ready"
timeout 20 "$BIN/bystander" 32 "${BYSTANDER_ADJ:-0}" "$STATE/bystander.ready" &
by=$!
read -r _ < "$STATE/bystander.ready"
if [ "${SNAP:-0}" = 1 ]; then
	: > "$STATE/snap.req"
	read -r _ < "$STATE/snap.fifo"
fi
sleep 0.1
echo "memtrace-real: $TAG freer-start" > /dev/kmsg
timeout 15 "$BIN/freer" "$MODE" "$STEPS" 30000 > "$STATE/freer.out"
echo "freer $?" > "$STATE/freer.rc"
sleep 0.1
kill "$by" 2>/dev/null
wait
echo "memtrace-real: $TAG end" > /dev/kmsg
