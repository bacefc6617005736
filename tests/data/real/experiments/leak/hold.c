/* hold: the long-lived processes of experiments A and C ("db", "web", "bystander").
 *
 * hold HOLD_MIB ADJ READY_FILE [NEWNAME]
 *
 * Writes ADJ to /proc/self/oom_score_adj, maps and writes HOLD_MIB of private
 * anonymous memory (one byte per 4 KiB page), writes its pid to READY_FILE (a
 * FIFO the starter reads, so nobody polls), then
 * sleeps until killed. With NEWNAME, the first SIGUSR1 makes it rename itself
 * once with prctl(PR_SET_NAME, NEWNAME): a comm change that is not an exec.
 * Run inside a memory cgroup with a limit, never outside one.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

static volatile sig_atomic_t renamed_req;

static void on_usr1(int sig)
{
	(void)sig;
	renamed_req = 1;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: hold HOLD_MIB ADJ READY_FILE [NEWNAME]\n");
		return 2;
	}
	size_t len = strtoul(argv[1], NULL, 10) << 20;
	const char *newname = argc == 5 ? argv[4] : NULL;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	FILE *f = fopen("/proc/self/oom_score_adj", "w");
	if (f) {
		fputs(argv[2], f);
		fclose(f);
	}
	if (len) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		for (size_t off = 0; off < len; off += 4096)
			p[off] = 1;
	}
	/* READY_FILE is normally a FIFO its starter reads (no polling) */
	f = fopen(argv[3], "w");
	if (!f) {
		perror(argv[3]);
		return 1;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	int done = 0;
	for (;;) {
		pause();
		if (renamed_req && newname && !done) {
			prctl(PR_SET_NAME, newname, 0, 0, 0);
			done = 1;
		}
	}
}
