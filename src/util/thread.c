#include "util/thread.h"

#include "util/signals.h"

/* The new thread starts with the control signals blocked (util/signals.h):
 * the mask is inherited, so it is set around pthread_create. */
int thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t control, old;
	int err = pthread_attr_init(&attr);

	if (err)
		return err;
	signals_control_set(&control);
	err = pthread_attr_setstacksize(&attr, THREAD_STACK_SIZE);
	if (!err)
		err = pthread_sigmask(SIG_BLOCK, &control, &old);
	if (!err) {
		err = pthread_create(t, &attr, fn, arg);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_attr_destroy(&attr);
	return err;
}
