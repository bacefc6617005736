/* writer: the workload of experiment B.
 *
 * writer PATH TOTAL_MIB CHUNK_KIB [READY_FILE GO_FILE]
 *
 * Creates PATH (O_TRUNC), optionally writes its pid to READY_FILE (a FIFO its
 * starter reads) and waits (polling every 10 ms, at most 30 s) for GO_FILE to exist, then write(2)s TOTAL_MIB in chunks of
 * CHUNK_KIB from one buffer, fsync(2)s and closes. Prints the phase times (ms) as
 * one JSON line on stdout. Run inside a memory cgroup with a limit.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 6) {
		fprintf(stderr, "usage: writer PATH TOTAL_MIB CHUNK_KIB [READY_FILE GO_FILE]\n");
		return 2;
	}
	size_t total = strtoul(argv[2], NULL, 10) << 20;
	size_t chunk = strtoul(argv[3], NULL, 10) << 10;
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	if (argc == 6) {
		FILE *f = fopen(argv[4], "w");
		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
		for (int i = 0; i < 3000 && access(argv[5], F_OK) != 0; i++)
			usleep(10000);
	}
	char *buf = malloc(chunk);
	if (!buf)
		return 1;
	memset(buf, 0x5a, chunk);
	double t0 = now_ms();
	size_t done = 0;
	while (done < total) {
		ssize_t n = write(fd, buf, chunk);
		if (n <= 0) {
			perror("write");
			return 1;
		}
		done += (size_t)n;
	}
	double t1 = now_ms();
	if (fsync(fd) != 0) {
		perror("fsync");
		return 1;
	}
	double t2 = now_ms();
	close(fd);
	printf("{\"written_bytes\": %zu, \"write_ms\": %.1f, \"fsync_ms\": %.1f, \"total_ms\": %.1f}\n",
	       done, t1 - t0, t2 - t1, t2 - t0);
	return 0;
}
