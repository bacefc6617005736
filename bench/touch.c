/*
 * touch.c: the real-kernel half of bench/run.py's first_touch_1gib entry.
 *
 * mmap()s LENGTH bytes (default 1 GiB) of private anonymous memory without
 * MAP_POPULATE, writes one byte in every 4096-byte page (one first-touch
 * page fault per page: 262,144 for 1 GiB), munmap()s, and prints:
 *
 *     line 1: elapsed time of the touch loop alone, in seconds
 *             (CLOCK_MONOTONIC; mmap and munmap are not timed)
 *     line 2: minor_faults=N, the process's minor faults during the loop
 *             (getrusage), so the caller can check one fault per page
 *
 * MADV_NOHUGEPAGE keeps transparent huge pages out of it: with THP "always"
 * the kernel would map 2 MiB at a time and take 512 faults, not 262,144.
 *
 * Usage: touch [LENGTH_BYTES]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#define PAGE_SIZE_BYTES 4096UL
#define DEFAULT_LENGTH_BYTES (1UL << 30)

static double elapsed_s(const struct timespec *start, const struct timespec *end)
{
	long long ns = (long long)(end->tv_sec - start->tv_sec) * 1000000000LL +
		       (end->tv_nsec - start->tv_nsec);

	return (double)ns / 1e9;
}

static long minor_faults(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0) {
		perror("touch: getrusage");
		exit(1);
	}
	return ru.ru_minflt;
}

int main(int argc, char **argv)
{
	size_t length_bytes = DEFAULT_LENGTH_BYTES;
	struct timespec start, end;
	volatile char *buf;
	long minflt_before, minflt_after;
	size_t off;

	if (argc > 2) {
		fprintf(stderr, "usage: %s [LENGTH_BYTES]\n", argv[0]);
		return 2;
	}
	if (argc == 2) {
		char *endp;

		errno = 0;
		length_bytes = strtoul(argv[1], &endp, 10);
		if (errno || *endp || length_bytes == 0 ||
		    length_bytes % PAGE_SIZE_BYTES) {
			fprintf(stderr,
				"touch: bad length %s: want a positive multiple of %lu bytes\n",
				argv[1], PAGE_SIZE_BYTES);
			return 2;
		}
	}

	buf = mmap(NULL, length_bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		fprintf(stderr, "touch: mmap of %zu bytes: %s\n", length_bytes,
			strerror(errno));
		return 1;
	}
	/* Best effort: a kernel without THP refuses it with EINVAL, harmlessly. */
	(void)madvise((void *)buf, length_bytes, MADV_NOHUGEPAGE);

	minflt_before = minor_faults();
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (off = 0; off < length_bytes; off += PAGE_SIZE_BYTES)
		buf[off] = 1;
	clock_gettime(CLOCK_MONOTONIC, &end);
	minflt_after = minor_faults();

	if (munmap((void *)buf, length_bytes) != 0) {
		fprintf(stderr, "touch: munmap: %s\n", strerror(errno));
		return 1;
	}

	printf("%.9f\n", elapsed_s(&start, &end));
	printf("minor_faults=%ld\n", minflt_after - minflt_before);
	return 0;
}
