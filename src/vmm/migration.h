/* Migration, the source side and the destination's: QMP `migrate` to
 * "file:PATH" (a snapshot, vmm/snapshot.h, taken with the VM paused) or
 * to "tcp:HOST:PORT" (live: pre-copy), and `--incoming tcp:ADDR:PORT`.
 *
 * Live migration: the stream (vmm/migration_stream.h) first carries every
 * non-zero page of RAM while the guest runs, with KVM's dirty log on and
 * Vireo's own writes into guest RAM tracked (mem/guest_mem.h, marked by
 * the virtqueues); then, pass after pass, the pages written since the
 * last pass, until what is left would go in the downtime limit at the
 * bandwidth measured. Then the main thread stops the VM, sends the last
 * pages and the machine's state (vmm/vm_state.h), and waits for the
 * destination to say it loaded them: the source stays paused
 * ("postmigrate") when it did, and runs on as if nothing happened when
 * anything failed or the user cancelled. When the guest dirties memory
 * faster than the link carries it, the vCPUs are throttled (QEMU's
 * auto-converge: 20 % first, +10 % per pass that did not converge, at
 * most 99 %).
 *
 * The pre-copy runs in a thread of its own; QMP, the stop and everything
 * that touches the machine run on the main thread. The source's side is
 * migration.c, the destination's migration_incoming.c, the QMP words
 * migration_qmp.c, the stream itself migration_stream.c, the record of
 * what was sent for which reason migration_pages.c. */
#ifndef VIREO_VMM_MIGRATION_H
#define VIREO_VMM_MIGRATION_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"

struct vm;

struct migration_params {
	uint64_t downtime_limit_ms; /* QEMU's downtime-limit: 300 */
	uint64_t max_bandwidth;	    /* bytes/s, QEMU's max-bandwidth: 128 MiB/s */
	bool auto_converge;	    /* on here; a capability off by default in QEMU */
	bool events;		    /* MIGRATION events: on here, off by default in QEMU */
	unsigned int throttle_initial, throttle_increment, max_throttle; /* % */
};

struct migration {
	pthread_mutex_t lock; /* the fields below the parameters */
	struct migration_params params;
	const char *status; /* QEMU's MigrationStatus, NULL before the first */
	char error[1200]; /* room for the destination's own reason */
	bool live;	    /* tcp: (else a snapshot to a file) */
	bool was_running;   /* the VM ran when migrate came */
	bool thread_started;
	bool precopy_done;  /* the thread ended: converged, failed or cancelled */
	bool converged;
	bool disks_released; /* the images' locks given to the destination */
	volatile bool cancel;
	pthread_t thread;
	int fd;
	char uri[256];
	uint64_t *todo;	   /* pages still to send, a bit per page */
	uint64_t *scratch; /* KVM's log of one slot, or Vireo's marks */
	bool manual_log;   /* KVM's log is manual (kvm_dirty_log_manual) */
	/* Of the last live migration, kept after it for
	 * query-vireo-migration-pages (to tell why a page differs at the
	 * destination): per page, the pass that last sent it and what put
	 * it there (MIG_PAGE_* bits). Passes are counted as they begin: 1 is
	 * the first, the last the stop-and-copy's. */
	uint16_t *page_log;
	unsigned int pass;
	/* The pre-copy's passes, for the log line of a completed migration:
	 * when each ended and how long its dirty-log sync took (ms from the
	 * start), so that a stall of the guest can be put beside them. */
	char passes[256];
	/* What query-migrate reports. */
	uint64_t start_ms, setup_ms, total_ms, downtime_ms, expected_downtime_ms;
	uint64_t transferred, precopy_bytes, downtime_bytes, remaining, ram_total;
	uint64_t duplicate, normal_pages, dirty_pages_rate, mbps, pages_per_second;
	uint64_t dirty_sync_count;
	unsigned int throttle_pct;
};

void migration_init(struct migration *m);
/* page_log: the pass (up to 255) that last sent the page; which tracker
 * reported the page for that pass (none: the first pass sends all); and
 * which reported it since (sent by no pass yet). */
#define MIG_PAGE_PASS 0xffu
#define MIG_PAGE_SENT_KVM (1u << 8)
#define MIG_PAGE_SENT_VIREO (1u << 9)
#define MIG_PAGE_DIRTY_KVM (1u << 10)
#define MIG_PAGE_DIRTY_VIREO (1u << 11)
/* query-vireo-migration-pages: page_log of [offset, offset+length) as
 * {"passes": N, "pages": [{"pass": P, "sent-for": [...], "dirty-since":
 * [...]}]}; offset UINT64_MAX: per pass (0: never sent), how many pages
 * it sent last and for which tracker. Refused while a migration runs or
 * before the first live one (new reference, or NULL with err set). */
json_t *migration_pages_json(struct vm *vm, uint64_t offset, uint64_t length, struct error *err);
/* The pre-copy's decisions after each pass (pure: the unit tests drive
 * them). Whether `remaining` bytes go within limit_ms at bw bytes/s; and
 * the throttle after a pass that sent `sent` bytes while the guest
 * dirtied `dirtied` (hot_passes: the count the rule keeps between
 * calls, 0 at the start). */
bool migration_fits(uint64_t remaining, uint64_t bw, uint64_t limit_ms);
unsigned int migration_throttle_after_pass(const struct migration_params *p, unsigned int pct,
					   uint64_t dirtied, uint64_t sent,
					   unsigned int *hot_passes);
/* QMP migrate: "file:PATH" completes before it returns; "tcp:HOST:PORT"
 * starts the pre-copy and returns. 0, or -1 with err set (the VM as
 * before). */
int migration_start(struct vm *vm, const char *uri, struct error *err);
/* migrate_cancel: a pre-copy stops and the VM runs on. */
void migration_cancel(struct vm *vm);
/* The main thread's part, called when it is woken: once the pre-copy
 * thread is done, the stop-and-copy (or the clean-up of a failure). */
void migration_poll(struct vm *vm);
/* After a completed migration the images are the destination's: cont
 * takes their locks back first (and fails, the VM paused, while another
 * process holds one), as QEMU re-activates its images. 0, or -1 with err
 * set. */
int migration_take_disks_back(struct vm *vm, struct error *err);
/* Stops a migration in progress and frees what it holds (VM teardown). */
void migration_shutdown(struct vm *vm);
/* query-migrate, query-migrate-parameters, query-migrate-capabilities,
 * as QEMU words them (new references). */
json_t *migration_info(struct vm *vm);
json_t *migration_params_json(struct vm *vm);
json_t *migration_caps_json(struct vm *vm);
/* migrate-set-parameters / migrate-set-capabilities (QEMU's names; what
 * Vireo does not have is refused). 0, or -1 with err set. */
int migration_set_params(struct vm *vm, json_t *args, struct error *err);
int migration_set_caps(struct vm *vm, json_t *caps, struct error *err);

/* --incoming tcp:ADDR:PORT: waits for one source, receives its stream
 * into the VM built from the same options (before its vCPUs first run),
 * loads the state and tells the source. A signal on signal_fd (SIGINT,
 * SIGTERM) ends the wait. 0, or -1 with err set (the source is told
 * too, and resumes). */
int migration_incoming(struct vm *vm, const char *addr, int signal_fd, struct error *err);

#endif
