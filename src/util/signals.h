/* The signals that control a running VM (SIGINT, SIGTERM, SIGHUP stop it,
 * SIGQUIT dumps the vCPUs, SIGUSR2 writes the statistics) reach the event
 * loop through a signalfd in the main thread. A signalfd only sees a
 * signal that no thread takes: the kernel hands a process-wide signal to
 * any thread that does not block it, and that thread would end the
 * process by the signal's default action. So Vireo's own threads are born
 * with them blocked (thread_create), and the threads a library starts
 * before the VM runs (librados' while a disk opens) hand them on to the
 * main thread (signals_route_early). */
#ifndef VIREO_UTIL_SIGNALS_H
#define VIREO_UTIL_SIGNALS_H

#include <signal.h>

/* The signals above, and SIGUSR1 (the vCPU kick, which only vCPU threads
 * take). */
void signals_control_set(sigset_t *set);

/* Called first thing in the main thread: until signals_take(), a control
 * signal does what it did by default (SIGUSR2, with no statistics yet, is
 * dropped); after, one that lands in a thread not blocking it is passed
 * to the main thread. */
int signals_route_early(void);

/* Blocks the control signals in the calling (main) thread and returns a
 * signalfd that reads them (not SIGUSR1), or -1. */
int signals_take(void);

#endif
