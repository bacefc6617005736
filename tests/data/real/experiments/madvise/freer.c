/* freer: the workload of experiment C.
 *
 * freer MODE STEPS STEP_US
 *
 * MODE is dontneed, free or munmap. STEPS times: mmap an 8 MiB private anonymous
 * chunk, write it (one byte per 4 KiB page), then give back its second half:
 *   dontneed: madvise(MADV_DONTNEED) on it (freed at once),
 *   free:     madvise(MADV_FREE) on it (lazily freed: stays charged and in RSS
 *             until reclaim takes it),
 *   munmap:   munmap of that half (a partial munmap of the 8 MiB mapping);
 * and sleep STEP_US. So it holds 4 MiB more after each step. Once, at step
 * STEPS/2, it grows the current chunk's mapping by 4 MiB with
 * mremap(MREMAP_MAYMOVE) and writes the new 4 MiB. At the end it holds about
 * 4 * STEPS + 4 MiB, prints "done" and exits 0. Run inside a memory cgroup.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIB (1UL << 20)
#define CHUNK (8 * MIB)
#define HALF (CHUNK / 2)

static void touch(char *p, size_t len)
{
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: freer dontneed|free|munmap STEPS STEP_US\n");
		return 2;
	}
	const char *mode = argv[1];
	int steps = atoi(argv[2]);
	useconds_t every = (useconds_t)strtoul(argv[3], NULL, 10);
	int m = !strcmp(mode, "dontneed") ? 0 : !strcmp(mode, "free") ? 1 : !strcmp(mode, "munmap") ? 2 : -1;
	if (m < 0 || steps <= 0) {
		fprintf(stderr, "freer: bad arguments\n");
		return 2;
	}
	for (int i = 0; i < steps; i++) {
		char *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		touch(p, CHUNK);
		size_t len = CHUNK;
		if (m == 0) {
			madvise(p + HALF, HALF, MADV_DONTNEED);
		} else if (m == 1) {
			madvise(p + HALF, HALF, MADV_FREE);
		} else {
			munmap(p + HALF, HALF);
			len = HALF;
		}
		if (i == steps / 2) {
			char *q = mremap(p, len, len + HALF, MREMAP_MAYMOVE);
			if (q == MAP_FAILED) {
				perror("mremap");
				return 1;
			}
			touch(q + len, HALF);
		}
		usleep(every);
	}
	printf("done\n");
	return 0;
}
