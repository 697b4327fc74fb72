/* The VM's run state as every thread sees it: running until someone
 * records why it must stop (the first reason wins). Apart from vm.c so
 * that the vCPU threads, which stop the VM, do not depend on the VMM's
 * assembly code, which drives them. */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "util/eventfd.h"
#include "vmm/vm.h"

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const char *fmt, ...)
{
	int expected = VM_RUNNING;
	va_list ap;

	while (!__atomic_compare_exchange_n(&vm->stop_reason, &expected, (int)reason, 0,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		/* The first reason wins, with one exception: under --reboot
		 * reset a guest reboot is not the end, so a stop asked for
		 * meanwhile (quit, a signal, an error) must not be lost to it. */
		if (expected != VM_STOP_RESET || reason == VM_STOP_RESET || !vm->opts ||
		    !vm->opts->reboot_reset)
			return;
	}
	va_start(ap, fmt);
	vsnprintf(vm->stop_detail, sizeof(vm->stop_detail), fmt, ap);
	va_end(ap);
	vm_wake(vm);
	/* A paused vCPU waits on run_cond: it must see the stop too. */
	pthread_mutex_lock(&vm->run_lock);
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
}

void vm_clear_stop(struct vm *vm)
{
	vm->stop_detail[0] = 0;
	__atomic_store_n(&vm->stop_reason, VM_RUNNING, __ATOMIC_SEQ_CST);
}

int vm_stop_reason(const struct vm *vm)
{
	return __atomic_load_n(&vm->stop_reason, __ATOMIC_SEQ_CST);
}

void vm_wake(struct vm *vm)
{
	eventfd_signal(vm->wake_fd);
}
