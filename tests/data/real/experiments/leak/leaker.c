/* leaker: the leaking process of experiment A.
 *
 * leaker FILE STEP_KIB STEP_US MAX_MIB
 *
 * Drops FILE from the page cache (posix_fadvise DONTNEED: its clean pages) and
 * reads it whole with read(2), so its page cache is charged to this memory
 * cgroup; then maps and writes STEP_KIB of private anonymous memory (one byte
 * per 4 KiB page) every STEP_US microseconds until it holds MAX_MIB, then sleeps
 * until killed (or until its timeout). Run inside a memory cgroup with a limit.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: leaker FILE STEP_KIB STEP_US MAX_MIB\n");
		return 2;
	}
	size_t step = strtoul(argv[2], NULL, 10) << 10;
	useconds_t every = (useconds_t)strtoul(argv[3], NULL, 10);
	size_t max = strtoul(argv[4], NULL, 10) << 20;
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	static char buf[1 << 16];
	ssize_t n;
	size_t got = 0;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		got += (size_t)n;
	close(fd);
	size_t held = 0;
	while (held < max) {
		char *p = mmap(NULL, step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		for (size_t off = 0; off < step; off += 4096)
			p[off] = 1;
		held += step;
		usleep(every);
	}
	fprintf(stderr, "leaker: read %zu bytes, holds %zu MiB, sleeping\n", got, held >> 20);
	for (;;)
		pause();
}
