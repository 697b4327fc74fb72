#include "cmocka_prelude.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "util/signals.h"
#include "util/thread.h"

static bool all_blocked(void)
{
	sigset_t control, cur;

	signals_control_set(&control);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&control, s) == 1 && sigismember(&cur, s) != 1)
			return false;
	return true;
}

static void *report_mask(void *arg)
{
	*(bool *)arg = all_blocked();
	return NULL;
}

/* Vireo's own threads are born deaf to the control signals, and the
 * thread that started one keeps its own mask. */
static void test_thread_create_blocks_control_signals(void **state)
{
	sigset_t before, after;
	bool child = false;
	pthread_t t;

	(void)state;
	pthread_sigmask(SIG_BLOCK, NULL, &before);
	assert_int_equal(sigismember(&before, SIGTERM), 0);
	assert_int_equal(thread_create(&t, report_mask, &child), 0);
	pthread_join(t, NULL);
	assert_true(child);
	pthread_sigmask(SIG_BLOCK, NULL, &after);
	assert_int_equal(sigismember(&after, SIGTERM), 0);
	assert_int_equal(sigismember(&after, SIGUSR2), 0);
}

static int wake[2];

/* A library's thread, started with the default mask before
 * signals_take(), blocked in a read the signals must not break. */
static void *library_thread(void *arg)
{
	char c = 0;

	*(ssize_t *)arg = read(wake[0], &c, 1);
	return NULL;
}

/* After signals_take() the kernel may hand a process-wide signal to the
 * library's thread, the one thread not blocking it (or to the main
 * thread's signalfd, if that reads first: a race). Sent to that thread
 * itself, as the kernel would hand it: it must reach the main thread's
 * signalfd, not end the process, and the library's read goes on
 * (SA_RESTART). */
static void test_library_thread_hands_signals_on(void **state)
{
	struct signalfd_siginfo si[2];
	ssize_t got = -2;
	pthread_t t;
	int fd, n = 0;

	(void)state;
	assert_int_equal(pipe(wake), 0);
	assert_int_equal(signals_route_early(), 0);
	assert_int_equal(pthread_create(&t, NULL, library_thread, &got), 0);
	fd = signals_take();
	assert_true(fd >= 0);
	assert_int_equal(pthread_kill(t, SIGUSR2), 0);
	assert_int_equal(pthread_kill(t, SIGTERM), 0);
	while (n < 2) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		assert_int_equal(poll(&p, 1, 5000), 1);
		assert_int_equal(read(fd, &si[n], sizeof(si[n])), sizeof(si[n]));
		n++;
	}
	/* In either order: the main thread may read the first before the
	 * second is handed on. */
	assert_true((si[0].ssi_signo == SIGUSR2 && si[1].ssi_signo == SIGTERM) ||
		    (si[0].ssi_signo == SIGTERM && si[1].ssi_signo == SIGUSR2));
	assert_int_equal(write(wake[1], "x", 1), 1);
	pthread_join(t, NULL);
	assert_int_equal(got, 1);
	close(fd);
}

int main(void)
{
	/* In this order: the second takes the signals for good. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thread_create_blocks_control_signals),
		cmocka_unit_test(test_library_thread_hands_signals_on),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
