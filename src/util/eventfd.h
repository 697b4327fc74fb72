/* Waking a thread through an eventfd. */
#ifndef VIREO_UTIL_EVENTFD_H
#define VIREO_UTIL_EVENTFD_H

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

#endif
