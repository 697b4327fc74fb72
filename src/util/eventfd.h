/* Waking a thread through an eventfd. */
#ifndef VIREO_UTIL_EVENTFD_H
#define VIREO_UTIL_EVENTFD_H

#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

/* Adds one to the eventfd's counter, so that it reads ready. The write
 * fails only when the counter would overflow (EAGAIN when non-blocking),
 * and then it reads ready already: nothing to do. */
static inline void eventfd_signal(int fd)
{
	uint64_t one = 1;
	ssize_t done = write(fd, &one, sizeof(one));

	(void)done;
}

/* Reads the counter, which resets it: true if the eventfd had been
 * signalled, false if not (EAGAIN on a non-blocking one: a wakeup for
 * nothing, or another reader was first). */
static inline bool eventfd_consume(int fd)
{
	uint64_t n;

	return read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n);
}

#endif
