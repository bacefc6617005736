/* The workload of the real samples in this folder (see make_samples.sh).
 *
 * leaky HOLD_MIB ADJ STEP_KIB STEP_US: sets its oom_score_adj to ADJ, maps and
 * writes HOLD_MIB of anonymous memory, then, if STEP_KIB > 0, maps and writes
 * STEP_KIB more every STEP_US microseconds until it is killed; else it sleeps.
 * Run inside a memory cgroup with a limit, never outside one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void touch(char *p, size_t len)
{
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 1;
}

static char *map(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: leaky HOLD_MIB ADJ STEP_KIB STEP_US\n");
		return 2;
	}
	size_t hold = strtoul(argv[1], NULL, 10) << 20;
	size_t step = strtoul(argv[3], NULL, 10) << 10;
	useconds_t every = (useconds_t)strtoul(argv[4], NULL, 10);
	FILE *f = fopen("/proc/self/oom_score_adj", "w");
	if (f) {
		fputs(argv[2], f);
		fclose(f);
	}
	if (hold) {
		char *p = map(hold);
		touch(p, hold);
	}
	if (!step) {
		for (;;)
			pause();
	}
	for (;;) {
		char *p = map(step);
		touch(p, step);
		usleep(every);
	}
}
