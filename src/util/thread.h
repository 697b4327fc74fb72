/* Threads with a stack sized for what Vireo's threads do, instead of
 * glibc's default of RLIMIT_STACK (8 MiB): an 8 MiB stack is a 2 MiB
 * aligned region that transparent huge pages back with a whole 2 MiB page
 * on its first touch where THP is "always" (Debian's default), which was
 * half of the VMM's own memory. A smaller stack cannot hold a huge page. */
#ifndef VIREO_UTIL_THREAD_H
#define VIREO_UTIL_THREAD_H

#include <pthread.h>

/* Deepest path: a vCPU thread running a device's queue handler on an MMIO
 * exit (--no-ioeventfd), with a virtqueue element (4 KiB of iovecs) on
 * its stack; sanitizer builds need several times what a normal build
 * does. */
#define THREAD_STACK_SIZE (1u << 20)

/* pthread_create with that stack size, the new thread's control signals
 * blocked (util/signals.h); 0 or an errno value. */
int thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
