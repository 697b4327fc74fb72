#include "util/signals.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/signalfd.h>

static const int control[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR2 };
static pthread_t main_thread;
static volatile sig_atomic_t taken;

void signals_control_set(sigset_t *set)
{
	unsigned int i;

	sigemptyset(set);
	for (i = 0; i < sizeof(control) / sizeof(control[0]); i++)
		sigaddset(set, control[i]);
	sigaddset(set, SIGUSR1);
}

/* Runs only in a thread that does not block sig: before signals_take()
 * any thread, after it one started by a library before then. */
static void route(int sig)
{
	int saved = errno;

	if (taken) {
		/* Pending on the main thread, which blocks it: its signalfd
		 * reads the main thread's pending signals too. */
		pthread_kill(main_thread, sig);
	} else if (sig != SIGUSR2) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	errno = saved;
}

int signals_route_early(void)
{
	struct sigaction sa;
	unsigned int i;

	main_thread = pthread_self();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = route;
	sa.sa_flags = SA_RESTART; /* a library thread's calls go on */
	signals_control_set(&sa.sa_mask); /* one at a time: no nesting */
	for (i = 0; i < sizeof(control) / sizeof(control[0]); i++)
		if (sigaction(control[i], &sa, NULL) < 0)
			return -1;
	return 0;
}

int signals_take(void)
{
	sigset_t set;

	signals_control_set(&set);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	taken = 1;
	sigdelset(&set, SIGUSR1);
	return signalfd(-1, &set, SFD_CLOEXEC);
}
