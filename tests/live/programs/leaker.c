/*
 * leaker.c: maps and writes STEP_KIB every SLEEP_US until killed (or MAX_MIB is
 * reached, then exits 1): the victim of a memory cgroup OOM.
 *
 * Usage: leaker [STEP_KIB=1024] [SLEEP_US=2000] [MAX_MIB=1024]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t step = (argc > 1 ? strtoul(argv[1], NULL, 10) : 1024) << 10;
	useconds_t nap = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000;
	size_t max = (argc > 3 ? strtoul(argv[3], NULL, 10) : 1024) << 20;

	for (size_t total = 0; total < max; total += step) {
		char *p = mmap(NULL, step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			perror("leaker: mmap");
			return 2;
		}
		memset(p, 1, step);
		usleep(nap);
	}
	fprintf(stderr, "leaker: reached %zu MiB without being killed\n", max >> 20);
	return 1;
}
