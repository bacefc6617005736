# One run of experiment B ("writer"), started by make_real.sh as
# `timeout 600 sh writer/run.sh` (under perf record for the recording) with the
# environment CG, BIN, STATE, TAG, OUT (the file to write, on ext4), SNAP.
echo $$ > "$CG/cgroup.procs"
echo "$PPID $$" > "$STATE/roots"
echo "memtrace-real: $TAG start" > /dev/kmsg
if [ "${SNAP:-0}" = 1 ]; then
	# writer opens OUT, writes its pid to the FIFO writer.ready and waits for go
	# while make_real.sh takes the snapshot
	mkfifo "$STATE/writer.ready"
	( read -r _ < "$STATE/writer.ready"
	  : > "$STATE/snap.req"
	  read -r _ < "$STATE/snap.fifo"
	  : > "$STATE/go" ) &
	timeout 540 "$BIN/writer" "$OUT" 1024 1024 "$STATE/writer.ready" "$STATE/go" > "$STATE/writer.out"
else
	timeout 540 "$BIN/writer" "$OUT" 1024 1024 > "$STATE/writer.out"
fi
echo "writer $?" > "$STATE/writer.rc"
wait
echo "memtrace-real: $TAG written" > /dev/kmsg
rm -f "$OUT"
echo "memtrace-real: $TAG end" > /dev/kmsg
