/* Events for the QMP client: sent at once from the main thread
 * (vm_qmp_event), or posted from a device's thread and sent by the main
 * thread when it wakes (vm_post_event). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_server.h"
#include "vmm/vm.h"

void vm_qmp_event(struct vm *vm, const char *name, json_t *data)
{
	if (vm->qmp)
		qmp_server_event(vm->qmp, qmp_event(name, data));
	else
		json_decref(data);
}

void vm_post_event(void *ctx, const char *device, const char *event)
{
	struct vm *vm = ctx;

	pthread_mutex_lock(&vm->events_lock);
	if (!vm->events)
		vm->events = calloc(VM_EVENTS_MAX, sizeof(*vm->events));
	if (vm->events && vm->nevents < VM_EVENTS_MAX) {
		struct vm_event *e = &vm->events[vm->nevents++];

		snprintf(e->device, sizeof(e->device), "%s", device);
		snprintf(e->name, sizeof(e->name), "%s", event);
	} else {
		vm->events_dropped++;
	}
	pthread_mutex_unlock(&vm->events_lock);
	vm_wake(vm);
}

void vm_send_posted_events(struct vm *vm)
{
	struct vm_event local[VM_EVENTS_MAX];
	unsigned int i, n;

	pthread_mutex_lock(&vm->events_lock);
	n = vm->nevents;
	if (n)
		memcpy(local, vm->events, n * sizeof(local[0]));
	vm->nevents = 0;
	pthread_mutex_unlock(&vm->events_lock);
	for (i = 0; i < n; i++)
		vm_qmp_event(vm, local[i].name, json_pack("{s:s}", "device", local[i].device));
}
