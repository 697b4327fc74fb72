/* The QEMU Machine Protocol (QMP), the protocol side: requests in,
 * replies and events out, as JSON objects (jansson). The wire format is
 * QEMU's (docs/interop/qmp-spec): a greeting, capabilities negotiation,
 * {"execute", "arguments", "id"} requests, {"return"} or
 * {"error": {"class", "desc"}} replies, timestamped events. What the
 * commands act on is behind struct qmp_ops (the VMM fills it), so this
 * file knows nothing of sockets or of the machine, and is what the unit
 * tests and the fuzz target drive. */
#ifndef VIREO_QMP_QMP_H
#define VIREO_QMP_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* What the machine offers. Every function runs on the thread that calls
 * qmp_handle() (the VMM's main thread). */
struct qmp_ops {
	void *ctx;
	/* "running", "paused", "shutdown", ... (QEMU's RunState names) */
	const char *(*status)(void *ctx);
	int (*stop)(void *ctx, struct error *err);
	int (*cont)(void *ctx, struct error *err);
	/* Presses the ACPI power button. */
	int (*powerdown)(void *ctx, struct error *err);
	/* Resets the machine (QEMU's system_reset); a paused VM stays paused. */
	int (*reset)(void *ctx, struct error *err);
	/* Ends the VM (after the reply is sent). */
	void (*quit)(void *ctx);
	/* New references, each a JSON array as QEMU's query-* returns. */
	json_t *(*query_cpus)(void *ctx);
	json_t *(*query_block)(void *ctx);
	json_t *(*query_pci)(void *ctx);
	/* Migrates the VM to uri: "file:PATH" (a snapshot, done when this
	 * returns) or "tcp:HOST:PORT" (live, in the background: MIGRATION
	 * events and query-migrate tell how it goes). Done, the VM stays
	 * paused, as QEMU's runstate "postmigrate"; cont runs it on. On
	 * failure a VM that ran runs on. */
	int (*migrate)(void *ctx, const char *uri, struct error *err);
	/* QEMU's MigrationInfo of the last migrate ({} if none): new
	 * reference. */
	json_t *(*query_migrate)(void *ctx);
	/* migrate_cancel: a live migration in progress stops, the VM runs on. */
	void (*migrate_cancel)(void *ctx);
	/* QEMU's MigrationParameters and capability list (new references),
	 * and their setters: args is the command's arguments object, caps
	 * its "capabilities" array. */
	json_t *(*query_migrate_parameters)(void *ctx);
	json_t *(*query_migrate_capabilities)(void *ctx);
	int (*migrate_set_parameters)(void *ctx, json_t *args, struct error *err);
	int (*migrate_set_capabilities)(void *ctx, json_t *caps, struct error *err);
	/* The statistics object --stats-json writes, now. */
	json_t *(*stats)(void *ctx, struct error *err);
	/* query-vireo-ram-digest: a CRC-32 of each chunk of guest RAM (from
	 * offset, length bytes, chunks of chunk: checked by the caller), from
	 * a paused VM (to compare two VMs, as the two ends of a migration).
	 * New reference, or NULL with err set. */
	json_t *(*ram_digest)(void *ctx, uint64_t offset, uint64_t length, uint64_t chunk,
			      struct error *err);
	/* query-vireo-migration-pages: what the last live migration did
	 * with each page of [offset, offset+length) (migration.h). New
	 * reference, or NULL with err set. */
	json_t *(*migration_pages)(void *ctx, uint64_t offset, uint64_t length,
				   struct error *err);
	/* QEMU's pmemsave: size bytes of guest RAM from guest physical
	 * address addr into a new file. */
	int (*pmemsave)(void *ctx, uint64_t addr, uint64_t size, const char *path,
			struct error *err);
};

struct qmp_session {
	bool negotiated; /* qmp_capabilities done: commands and events */
	bool quit;	 /* a quit was answered: close after sending */
};

/* The greeting a new client gets first (new reference). */
json_t *qmp_greeting(void);
/* Answers one request (a JSON value already parsed, or NULL with a parse
 * error in perr): a new reference, never NULL. */
json_t *qmp_handle(struct qmp_session *s, const struct qmp_ops *ops, json_t *request);
/* An error reply as QMP words it ("class" GenericError unless given). */
json_t *qmp_error(const char *klass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An event with the current time (steals data, which may be NULL). */
json_t *qmp_event(const char *name, json_t *data);
/* The commands served, in the order query-commands lists them. */
extern const char *const qmp_command_names[];

#endif
