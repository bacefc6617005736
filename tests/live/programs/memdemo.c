/*
 * memdemo.c: maps, touches, forks, frees memory, and samples its own VmRSS
 * (/proc/self/status) after every step into SAMPLES, one line per sample:
 *
 *     mono_ns_before mono_ns_after pid label VmRSS_kB RssAnon_kB RssFile_kB RssShmem_kB
 *
 * (CLOCK_MONOTONIC just before opening /proc/self/status and just after reading
 * it: VmRSS is the RSS at some instant between the two). Steps: brk +4 MiB, an
 * anonymous mmap of 48 MiB touched 8 MiB at a time, an 8 MiB file written then
 * mapped shared and read, mprotect, mremap to 64 MiB, fork (the child writes 32 MiB
 * copy-on-write, then exits), prctl rename, madvise(DONTNEED) 32 MiB, munmap of
 * both, brk shrink.
 *
 * Usage: memdemo SAMPLES FILE
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB (1UL << 20)
static int out_fd;

static long field_kb(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void sample(const char *label)
{
	char buf[4096], line[256];
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	int fd = open("/proc/self/status", O_RDONLY);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	n = snprintf(line, sizeof(line), "%lld %lld %d %s %ld %ld %ld %ld\n",
		     (long long)t0.tv_sec * 1000000000LL + t0.tv_nsec,
		     (long long)t1.tv_sec * 1000000000LL + t1.tv_nsec, getpid(), label,
		     field_kb(buf, "VmRSS:"), field_kb(buf, "RssAnon:"),
		     field_kb(buf, "RssFile:"), field_kb(buf, "RssShmem:"));
	if (write(out_fd, line, n) != n)
		_exit(3);
}

static void touch(char *p, size_t len, int write_it)
{
	volatile char sink = 0;

	for (size_t off = 0; off < len; off += 4096) {
		if (write_it)
			p[off] = 1;
		else
			sink += ((volatile char *)p)[off];
	}
	(void)sink;
}

int main(int argc, char **argv)
{
	char label[64];

	if (argc < 3) {
		fprintf(stderr, "usage: memdemo SAMPLES FILE\n");
		return 2;
	}
	out_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	sample("warm-up"); /* the first calls fault in libc and vdso pages */
	sample("start");

	char *brk0 = sbrk(0);
	if (sbrk(4 * MiB) == (void *)-1)
		return 1;
	touch(brk0, 4 * MiB, 1);
	sample("brk+4M");

	size_t alen = 48 * MiB;
	char *anon = mmap(NULL, alen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(anon, alen, MADV_NOHUGEPAGE);
	for (size_t off = 0; off < alen; off += 8 * MiB) {
		touch(anon + off, 8 * MiB, 1);
		snprintf(label, sizeof(label), "anon-touched-%zuM", (off + 8 * MiB) / MiB);
		sample(label);
		usleep(5000);
	}

	int fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
	char *chunk = calloc(1, MiB);
	for (int i = 0; i < 8; i++)
		if (write(fd, chunk, MiB) != (ssize_t)MiB)
			return 1;
	free(chunk);
	sample("file-written");
	char *fmap = mmap(NULL, 8 * MiB, PROT_READ, MAP_SHARED, fd, 0);
	touch(fmap, 8 * MiB, 0);
	sample("file-mapped-read");

	mprotect(anon, 8 * MiB, PROT_READ);
	sample("mprotect");
	mprotect(anon, 8 * MiB, PROT_READ | PROT_WRITE);

	size_t nlen = 64 * MiB;
	char *anon2 = mremap(anon, alen, nlen, MREMAP_MAYMOVE);
	if (anon2 == MAP_FAILED)
		return 1;
	anon = anon2;
	alen = nlen;
	madvise(anon, alen, MADV_NOHUGEPAGE);
	touch(anon + 48 * MiB, 16 * MiB, 1);
	sample("mremap-64M-touched");

	pid_t child = fork();
	if (child == 0) {
		prctl(PR_SET_NAME, "memdemo-child");
		sample("child-start");
		for (size_t off = 8 * MiB; off < 40 * MiB; off += 8 * MiB) {
			touch(anon + off, 8 * MiB, 1); /* copy-on-write */
			snprintf(label, sizeof(label), "child-cow-%zuM", off / MiB);
			sample(label);
			usleep(5000);
		}
		_exit(0);
	}
	waitpid(child, NULL, 0);
	sample("after-child");

	prctl(PR_SET_NAME, "memdemo-late");
	madvise(anon, 32 * MiB, MADV_DONTNEED);
	sample("madvise-dontneed-32M");
	munmap(fmap, 8 * MiB);
	close(fd);
	unlink(argv[2]);
	sample("file-unmapped");
	munmap(anon, alen);
	sample("anon-unmapped");
	sbrk(-(long)(4 * MiB));
	sample("brk-shrunk");
	return 0;
}
