/* Migration (vmm/migration.h). */
#include "vmm/migration.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/tcp.h"
#include "vmm/migration_stream.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"
#include "vmm/vm_state.h"

#define REPLY_TIMEOUT_MS 60000 /* the destination loads the state */
#define THROTTLE_SLICE_NS 10000000ULL /* QEMU's CPU_THROTTLE_TIMESLICE_NS */

void migration_init(struct migration *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->fd = -1;
	m->params = (struct migration_params){
		.downtime_limit_ms = 300,
		.max_bandwidth = 128ULL << 20,
		.auto_converge = true,
		.events = true,
		.throttle_initial = 20,
		.throttle_increment = 10,
		.max_throttle = 99,
	};
}

static void event(struct vm *vm, const char *status)
{
	if (__atomic_load_n(&vm->mig.params.events, __ATOMIC_RELAXED))
		vm_qmp_event(vm, "MIGRATION", json_pack("{s:s}", "status", status));
}

static void set_status(struct vm *vm, const char *status)
{
	pthread_mutex_lock(&vm->mig.lock);
	vm->mig.status = status;
	pthread_mutex_unlock(&vm->mig.lock);
	event(vm, status);
}

/* ---- dirty pages ------------------------------------------------------ */

/* KVM's log on (manual where KVM has it, as QEMU uses it: see
 * kvm_dirty_log_manual) or off. */
static int dirty_logging(struct vm *vm, bool on)
{
	struct vm_ram_slot s[VM_RAM_SLOTS];
	unsigned int i, n = vm_ram_slots(vm, s);

	if (on)
		vm->mig.manual_log = kvm_dirty_log_manual(&vm->kvm, true) == 0;
	for (i = 0; i < n; i++)
		if (kvm_set_dirty_logging(&vm->kvm, s[i].id, s[i].gpa, s[i].size,
					  vm->mem.host + s[i].offset, on) < 0)
			return -1;
	if (!on && vm->mig.manual_log) {
		kvm_dirty_log_manual(&vm->kvm, false);
		vm->mig.manual_log = false;
	}
	return 0;
}

/* Adds the pages set in bitmap (words of it, its bit 0 being page first
 * of RAM) to m->todo, noting in the page log which tracker reported them. */
static void add_dirty(struct migration *m, uint64_t first, const uint64_t *bitmap, uint64_t words,
		      uint16_t tracker)
{
	for (uint64_t w = 0; w < words; w++) {
		uint64_t bits = bitmap[w];

		while (bits) {
			uint64_t p = first + w * 64 + (uint64_t)__builtin_ctzll(bits);

			m->todo[p / 64] |= 1ULL << (p % 64);
			m->page_log[p] |= tracker;
			bits &= bits - 1;
		}
	}
}

/* The pages written since the last call (with KVM's manual log: since
 * send_todo protected them again), by the vCPUs (KVM's log) and by
 * Vireo's devices, into m->todo. */
static int sync_dirty(struct vm *vm)
{
	struct migration *m = &vm->mig;
	struct vm_ram_slot s[VM_RAM_SLOTS];
	unsigned int i, n = vm_ram_slots(vm, s);
	uint64_t words = guest_mem_bitmap_words(&vm->mem);

	for (i = 0; i < n; i++) {
		uint64_t slot_words = (s[i].size / MIG_PAGE + 63) / 64;

		memset(m->scratch, 0, slot_words * 8);
		if (kvm_get_dirty_log(&vm->kvm, s[i].id, m->scratch) < 0)
			return -1;
		add_dirty(m, s[i].offset / MIG_PAGE, m->scratch, slot_words, MIG_PAGE_DIRTY_KVM);
	}
	/* Vireo's own writes, through scratch to note them apart. */
	memset(m->scratch, 0, words * 8);
	guest_mem_take_written(&vm->mem, m->scratch);
	add_dirty(m, 0, m->scratch, words, MIG_PAGE_DIRTY_VIREO);
	return 0;
}

static uint64_t count_todo(const struct vm *vm)
{
	size_t i, n = guest_mem_bitmap_words(&vm->mem);
	uint64_t c = 0;

	for (i = 0; i < n; i++)
		c += (uint64_t)__builtin_popcountll(vm->mig.todo[i]);
	return c;
}

/* Whether page p is still to be sent. */
static bool todo_has(const struct migration *m, uint64_t p)
{
	return m->todo[p / 64] >> (p % 64) & 1;
}

/* Pages protected again in KVM's manual log at a time, just before they
 * are sent (a multiple of 64, as KVM wants): 16 MiB. */
#define PROTECT_PAGES 4096

/* Pages [first, first+n) of slot sl, those set in todo: out of KVM's
 * manual log and write-protected, before they are read to be sent, so
 * that a write from now on is in the next sync. */
static int protect_again(struct vm *vm, const struct vm_ram_slot *sl, uint64_t first, uint64_t n)
{
	uint64_t mask[PROTECT_PAGES / 64] = { 0 }, base = sl->offset / MIG_PAGE, i;
	bool any = false;

	for (i = 0; i < n; i++) {
		if (todo_has(&vm->mig, base + first + i)) {
			mask[i / 64] |= 1ULL << (i % 64);
			any = true;
		}
	}
	if (!any)
		return 0;
	if (kvm_clear_dirty_log(&vm->kvm, sl->id, first, (uint32_t)n, mask) < 0) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* Sends the pages in todo in [first, end), in runs, clearing them; counts
 * them. */
static int send_range(struct vm *vm, struct mig_out *o, uint64_t first, uint64_t end,
		      bool zeros_too, uint64_t *pages)
{
	struct migration *m = &vm->mig;
	uint64_t p = first, zero = 0;

	while (p < end) {
		uint64_t run = 0;

		if (!todo_has(m, p)) {
			p++;
			continue;
		}
		while (p + run < end && todo_has(m, p + run))
			run++;
		/* Cleared before the copy: a write during the send is in the
		 * next sync. */
		for (uint64_t q = p; q < p + run; q++) {
			uint16_t l = m->page_log[q];

			m->todo[q / 64] &= ~(1ULL << (q % 64));
			m->page_log[q] = (uint16_t)((m->pass < MIG_PAGE_PASS ? m->pass : MIG_PAGE_PASS) |
						    (l & (MIG_PAGE_DIRTY_KVM | MIG_PAGE_DIRTY_VIREO)) >> 2);
		}
		if (mig_send_pages(o, vm->mem.host, p, run, zeros_too, &zero) < 0)
			return -1;
		*pages += run;
		p += run;
		pthread_mutex_lock(&m->lock);
		m->transferred = o->sent;
		m->duplicate += zero;
		m->normal_pages += run - zero;
		pthread_mutex_unlock(&m->lock);
		zero = 0;
	}
	return 0;
}

/* Sends the pages in todo, slot by slot, a piece at a time: with KVM's
 * manual log and protect set (pre-copy, the guest running), each piece
 * write-protected again just before it is sent. Counts them. All sent on
 * return (the stage flushed): the pass's rate is measured on it. */
static int send_todo(struct vm *vm, struct mig_out *o, bool zeros_too, bool protect,
		     uint64_t *pages)
{
	struct migration *m = &vm->mig;
	struct vm_ram_slot s[VM_RAM_SLOTS];
	unsigned int i, n = vm_ram_slots(vm, s);

	m->pass++;
	for (i = 0; i < n; i++) {
		uint64_t slot_pages = s[i].size / MIG_PAGE, at;

		for (at = 0; at < slot_pages; at += PROTECT_PAGES) {
			uint64_t k = slot_pages - at < PROTECT_PAGES ? slot_pages - at : PROTECT_PAGES;
			uint64_t first = s[i].offset / MIG_PAGE + at;

			if ((protect && m->manual_log && protect_again(vm, &s[i], at, k) < 0) ||
			    send_range(vm, o, first, first + k, zeros_too, pages) < 0)
				return -1;
		}
	}
	if (mig_out_flush(o) < 0)
		return -1;
	pthread_mutex_lock(&m->lock);
	m->transferred = o->sent;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- throttling (auto-converge) ---------------------------------------- */

/* Every slice, each vCPU is kicked out of KVM_RUN and sleeps its share
 * (vcpu.c): pct % of the time off, as QEMU's cpu_throttle does. */
static void *throttle_thread(void *arg)
{
	struct vm *vm = arg;
	unsigned int pct;

	while ((pct = __atomic_load_n(&vm->mig.throttle_pct, __ATOMIC_ACQUIRE)) > 0 &&
	       !__atomic_load_n(&vm->mig.cancel, __ATOMIC_ACQUIRE)) {
		uint64_t sleep_ns = THROTTLE_SLICE_NS * pct / (100 - pct);
		uint64_t period = THROTTLE_SLICE_NS + sleep_ns;
		struct timespec ts = { .tv_sec = (time_t)(period / 1000000000u),
				       .tv_nsec = (long)(period % 1000000000u) };

		vcpus_throttle(vm, sleep_ns);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void throttle_set(struct vm *vm, unsigned int pct, pthread_t *t, bool *running)
{
	__atomic_store_n(&vm->mig.throttle_pct, pct, __ATOMIC_RELEASE);
	if (pct && !*running)
		*running = pthread_create(t, NULL, throttle_thread, vm) == 0;
}

/* ---- the pre-copy's decisions -------------------------------------------- */

bool migration_fits(uint64_t remaining, uint64_t bw, uint64_t limit_ms)
{
	return remaining * 1000 <= limit_ms * (bw ? bw : 1);
}

unsigned int migration_throttle_after_pass(const struct migration_params *p, unsigned int pct,
					   uint64_t dirtied, uint64_t sent,
					   unsigned int *hot_passes)
{
	/* The guest dirtied more than half of what the link carried, in two
	 * passes (QEMU's rule): slow its vCPUs down one step more. */
	if (dirtied <= sent / 2 || ++*hot_passes < 2)
		return pct;
	*hot_passes = 0;
	pct = pct ? pct + p->throttle_increment : p->throttle_initial;
	return pct > p->max_throttle ? p->max_throttle : pct;
}

/* ---- the pre-copy thread ------------------------------------------------ */

static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		errno = ETIMEDOUT;
	return r > 0 ? 0 : -1;
}

/* A destination that refuses the stream says why before it hangs up;
 * when a send failed, that is the better reason to give. */
static bool destination_refused(int fd, char *msg, size_t size)
{
	uint32_t status;

	return wait_readable(fd, 1000) == 0 && mig_read_reply(fd, &status, msg, size) == 0 &&
	       status != 0;
}

static void precopy_failed(struct migration *m, const char *what, int e)
{
	char why[MIG_MAX_REPLY + 1];
	bool refused = e != ECANCELED && destination_refused(m->fd, why, sizeof(why));

	pthread_mutex_lock(&m->lock);
	if (refused)
		snprintf(m->error, sizeof(m->error), "the destination refused it: %s", why);
	else
		snprintf(m->error, sizeof(m->error), "%s: %s", what,
			 e == ECANCELED ? "cancelled" : strerror(e));
	pthread_mutex_unlock(&m->lock);
}

static void *precopy_thread(void *arg)
{
	struct vm *vm = arg;
	struct migration *m = &vm->mig;
	struct mig_out o;
	pthread_t throttler;
	bool throttling = false;
	uint64_t pages = 0, pass_start = monotonic_ms(), pass_sent = 0;
	unsigned int hot_passes = 0;
	size_t i, words = guest_mem_bitmap_words(&vm->mem);

	if (mig_out_init(&o, m->fd, m->params.max_bandwidth, &m->cancel) < 0) {
		precopy_failed(m, "setup", ENOMEM);
		goto out;
	}
	/* The first pass: every page (zero ones are zero there too). */
	for (i = 0; i < words; i++)
		m->todo[i] = ~0ULL;
	if (vm->mem.size / MIG_PAGE % 64)
		m->todo[words - 1] = (1ULL << (vm->mem.size / MIG_PAGE % 64)) - 1;
	if (mig_send_header(&o, vm->ncpus, vm->mem.size, vm->mem.low_size) < 0 ||
	    send_todo(vm, &o, false, true, &pages) < 0) {
		precopy_failed(m, "sending RAM", errno);
		goto out;
	}
	m->passes[0] = 0;
	for (;;) {
		uint64_t t = monotonic_ms(), elapsed = t - pass_start ? t - pass_start : 1;
		uint64_t sent = o.sent - pass_sent, dirty, bw;
		size_t used = strlen(m->passes);

		if (sync_dirty(vm) < 0) {
			precopy_failed(m, "reading the dirty log", errno);
			goto out;
		}
		snprintf(m->passes + used, sizeof(m->passes) - used, "%s%llu+%llu",
			 used ? ", " : "", (unsigned long long)(t - m->start_ms),
			 (unsigned long long)(monotonic_ms() - t));
		dirty = count_todo(vm);
		bw = sent * 1000 / elapsed; /* bytes/s over the last pass */
		pthread_mutex_lock(&m->lock);
		m->dirty_sync_count++;
		m->remaining = dirty * MIG_PAGE;
		m->dirty_pages_rate = dirty * 1000 / elapsed;
		m->mbps = bw * 8 / 1000000;
		m->pages_per_second = sent / MIG_PAGE * 1000 / elapsed;
		m->expected_downtime_ms = bw ? dirty * MIG_PAGE * 1000 / bw : 0;
		m->precopy_bytes = o.sent;
		m->transferred = o.sent;
		pthread_mutex_unlock(&m->lock);
		if (migration_fits(dirty * MIG_PAGE, bw, m->params.downtime_limit_ms)) {
			m->converged = true;
			break;
		}
		if (m->params.auto_converge)
			throttle_set(vm, migration_throttle_after_pass(&m->params, m->throttle_pct,
								       dirty * MIG_PAGE, sent,
								       &hot_passes),
				     &throttler, &throttling);
		/* max-bandwidth may change while the migration runs. */
		o.max_bw = __atomic_load_n(&m->params.max_bandwidth, __ATOMIC_RELAXED);
		pass_start = t;
		pass_sent = o.sent;
		if (send_todo(vm, &o, true, true, &pages) < 0) {
			precopy_failed(m, "sending RAM", errno);
			goto out;
		}
	}
out:
	/* The vCPUs run at full speed again for the stop (or on). */
	__atomic_store_n(&m->throttle_pct, 0, __ATOMIC_RELEASE);
	if (throttling)
		pthread_join(throttler, NULL);
	pthread_mutex_lock(&m->lock);
	m->transferred = o.sent;
	pthread_mutex_unlock(&m->lock);
	mig_out_free(&o);
	__atomic_store_n(&m->precopy_done, true, __ATOMIC_RELEASE);
	vm_wake(vm);
	return NULL;
}

/* ---- the main thread's part --------------------------------------------- */

static void stop_tracking(struct vm *vm)
{
	struct migration *m = &vm->mig;

	dirty_logging(vm, false);
	guest_mem_track_writes_stop(&vm->mem);
	free(m->todo);
	free(m->scratch);
	m->todo = m->scratch = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

/* The source runs on (if it ran) and says why it did not migrate. */
static void finish_failed(struct vm *vm, const char *status, const char *why)
{
	struct migration *m = &vm->mig;
	struct error err = { 0 };

	stop_tracking(vm);
	if (m->disks_released && migration_take_disks_back(vm, &err) < 0)
		log_warn("%s", err.msg);
	pthread_mutex_lock(&m->lock);
	if (why && !m->error[0])
		snprintf(m->error, sizeof(m->error), "%s", why);
	m->total_ms = monotonic_ms() - m->start_ms;
	pthread_mutex_unlock(&m->lock);
	log_info("migration to %s %s%s%s", m->uri, status, m->error[0] ? ": " : "", m->error);
	/* As QEMU: the status first, then the VM runs again. */
	set_status(vm, status);
	if (vm->paused && m->was_running) {
		vm_resume(vm);
		vm_qmp_event(vm, "RESUME", NULL);
	}
}

/* Stop-and-copy: the VM paused, the last pages, the state, the reply. */
static void complete_live(struct vm *vm)
{
	struct migration *m = &vm->mig;
	struct vm_state_section sec[SNAPSHOT_MAX_SECTIONS];
	struct error err = { 0 };
	struct mig_out o;
	uint64_t stop_at, pages = 0, before;
	/* When each step of the stop-and-copy ended: a downtime over the
	 * limit says in the log where it went. */
	uint64_t t_paused, t_pages, t_disks, t_state, t_sent;
	unsigned int n = 0, i;
	uint32_t status;
	char msg[MIG_MAX_REPLY + 1];

	memset(sec, 0, sizeof(sec));
	/* The destination catches up with what was sent before the guest
	 * stops: bytes still queued here would be read during the downtime. */
	tcp_wait_sent(m->fd, 256 << 10, 1000);
	stop_at = monotonic_ms();
	if (mig_out_init(&o, m->fd, 0, &m->cancel) < 0) {
		finish_failed(vm, "failed", "out of memory");
		return;
	}
	o.sent = m->transferred;
	before = o.sent;
	m->was_running = !vm->paused; /* resumed on failure only if we paused it */
	if (!vm->paused) {
		if (vm_pause(vm, &err) < 0)
			goto failed;
		vm_qmp_event(vm, "STOP", NULL);
	}
	t_paused = monotonic_ms();
	if (sync_dirty(vm) < 0) {
		error_set(&err, "reading the dirty log: %s", strerror(errno));
		goto failed;
	}
	if (send_todo(vm, &o, true, false, &pages) < 0) /* paused: nothing to protect */
		goto send_failed;
	t_pages = monotonic_ms();
	if (vm_sync_disks(vm, &err) < 0)
		goto failed;
	t_disks = monotonic_ms();
	if (vm_state_build(vm, sec, &n, &err) < 0)
		goto failed;
	t_state = monotonic_ms();
	/* The images are the destination's from here: it locks them before
	 * it runs. */
	vm_unlock_disks(vm);
	m->disks_released = true;
	for (i = 0; i < n; i++)
		if (mig_send_section(&o, sec[i].kind, sec[i].index, sec[i].w.buf, sec[i].w.len) < 0)
			break;
	if (i < n || mig_send_end(&o) < 0)
		goto send_failed;
	t_sent = monotonic_ms();
	if (wait_readable(m->fd, REPLY_TIMEOUT_MS) < 0 ||
	    mig_read_reply(m->fd, &status, msg, sizeof(msg)) < 0) {
		error_set(&err, "no word from the destination: %s",
			  errno == EPROTO ? "not a Vireo reply" : strerror(errno));
		goto failed;
	}
	if (status != 0) {
		error_set(&err, "the destination refused it: %s", msg);
		goto failed;
	}
	vm_state_free(sec);
	mig_out_free(&o);
	pthread_mutex_lock(&m->lock);
	m->downtime_ms = monotonic_ms() - stop_at;
	m->total_ms = monotonic_ms() - m->start_ms;
	m->downtime_bytes = o.sent - before;
	m->transferred = o.sent;
	m->remaining = 0;
	pthread_mutex_unlock(&m->lock);
	stop_tracking(vm);
	vm->postmigrate = true;
	log_info("migrated to %s: %llu MiB in %llu ms, passes ended at (ms, +sync) %s; downtime "
		 "%llu ms (pause %llu, last %llu pages %llu, disks flushed %llu, state %llu, sent "
		 "%llu, destination's word %llu)",
		 m->uri, (unsigned long long)(o.sent >> 20), (unsigned long long)m->total_ms,
		 m->passes,
		 (unsigned long long)m->downtime_ms, (unsigned long long)(t_paused - stop_at),
		 (unsigned long long)pages, (unsigned long long)(t_pages - t_paused),
		 (unsigned long long)(t_disks - t_pages), (unsigned long long)(t_state - t_disks),
		 (unsigned long long)(t_sent - t_state),
		 (unsigned long long)(stop_at + m->downtime_ms - t_sent));
	set_status(vm, "completed");
	return;
send_failed:
	if (destination_refused(m->fd, msg, sizeof(msg)))
		error_set(&err, "the destination refused it: %s", msg);
	else
		error_set(&err, "sending the last pages and the state: %s", strerror(errno));
failed:
	vm_state_free(sec);
	mig_out_free(&o);
	finish_failed(vm, "failed", err.msg);
}

int migration_take_disks_back(struct vm *vm, struct error *err)
{
	if (!vm->mig.disks_released)
		return 0;
	if (vm_lock_disks(vm, err) < 0) {
		error_prefix(err, "the migration gave the disks away: ");
		return -1;
	}
	vm->mig.disks_released = false;
	return 0;
}

void migration_poll(struct vm *vm)
{
	struct migration *m = &vm->mig;

	if (!m->thread_started || !__atomic_load_n(&m->precopy_done, __ATOMIC_ACQUIRE))
		return;
	pthread_join(m->thread, NULL);
	m->thread_started = false;
	if (m->cancel)
		finish_failed(vm, "cancelled", NULL);
	else if (!m->converged)
		finish_failed(vm, "failed", NULL);
	else
		complete_live(vm);
}

static int start_file(struct vm *vm, const char *path, struct error *err)
{
	struct migration *m = &vm->mig;
	struct snapshot_stats st;

	if (m->was_running) {
		if (vm_pause(vm, err) < 0)
			return -1;
		vm_qmp_event(vm, "STOP", NULL);
	}
	set_status(vm, "setup");
	set_status(vm, "active");
	if (vm_snapshot_save(vm, path, &st, err) < 0) {
		finish_failed(vm, "failed", err->msg);
		return -1;
	}
	pthread_mutex_lock(&m->lock);
	m->total_ms = m->downtime_ms = st.total_ms;
	m->transferred = m->downtime_bytes = st.written;
	m->ram_total = st.ram_bytes;
	pthread_mutex_unlock(&m->lock);
	vm->postmigrate = true;
	set_status(vm, "completed");
	return 0;
}

int migration_start(struct vm *vm, const char *uri, struct error *err)
{
	struct migration *m = &vm->mig;
	size_t words = guest_mem_bitmap_words(&vm->mem);
	bool file = !strncmp(uri, "file:", 5) && uri[5];

	if (m->status && (!strcmp(m->status, "setup") || !strcmp(m->status, "active") ||
			  !strcmp(m->status, "cancelling")))
		return error_set(err, "There's a migration process in progress");
	if (!file && (strncmp(uri, "tcp:", 4) || !uri[4]))
		return error_set(err, "'%s': Vireo migrates to file:PATH (a snapshot) or "
				 "tcp:HOST:PORT", uri);
	if (!file && vm->paused && vm->postmigrate)
		return error_set(err, "this VM was migrated already; it runs again after cont");
	pthread_mutex_lock(&m->lock);
	m->error[0] = 0;
	m->live = !file;
	m->was_running = !vm->paused;
	m->cancel = false;
	m->precopy_done = m->converged = false;
	m->disks_released = false;
	m->start_ms = monotonic_ms();
	m->setup_ms = m->total_ms = m->downtime_ms = m->expected_downtime_ms = 0;
	m->transferred = m->precopy_bytes = m->downtime_bytes = m->remaining = 0;
	m->duplicate = m->normal_pages = m->dirty_pages_rate = m->mbps = 0;
	m->pages_per_second = m->dirty_sync_count = 0;
	m->ram_total = vm->mem.size;
	m->throttle_pct = 0;
	snprintf(m->uri, sizeof(m->uri), "%s", uri);
	pthread_mutex_unlock(&m->lock);
	if (file)
		return start_file(vm, uri + 5, err);

	set_status(vm, "setup");
	m->fd = tcp_socket(uri + 4, false, err);
	if (m->fd < 0)
		goto failed;
	m->todo = calloc(words, sizeof(uint64_t));
	m->scratch = calloc(words, sizeof(uint64_t));
	free(m->page_log);
	m->page_log = calloc(vm->mem.size / MIG_PAGE, sizeof(*m->page_log));
	m->pass = 0;
	if (!m->todo || !m->scratch || !m->page_log || guest_mem_track_writes_start(&vm->mem) < 0) {
		error_set(err, "out of memory");
		goto failed;
	}
	/* Vireo's writes are tracked before the vCPUs' log starts: nothing
	 * written after the first pass copied a page is missed. */
	if (dirty_logging(vm, true) < 0) {
		error_set(err, "KVM cannot log dirty pages: %s", strerror(errno));
		goto failed;
	}
	if (pthread_create(&m->thread, NULL, precopy_thread, vm) != 0) {
		error_set(err, "cannot start the migration thread");
		goto failed;
	}
	m->thread_started = true;
	m->setup_ms = monotonic_ms() - m->start_ms;
	set_status(vm, "active");
	return 0;
failed:
	finish_failed(vm, "failed", err->msg);
	return -1;
}

void migration_cancel(struct vm *vm)
{
	struct migration *m = &vm->mig;

	if (!m->thread_started)
		return;
	__atomic_store_n(&m->cancel, true, __ATOMIC_RELEASE);
	/* A send blocked on a full socket returns at once. */
	if (m->fd >= 0)
		shutdown(m->fd, SHUT_RDWR);
	set_status(vm, "cancelling");
}

void migration_shutdown(struct vm *vm)
{
	struct migration *m = &vm->mig;

	if (m->thread_started) {
		__atomic_store_n(&m->cancel, true, __ATOMIC_RELEASE);
		if (m->fd >= 0)
			shutdown(m->fd, SHUT_RDWR);
		pthread_join(m->thread, NULL);
		m->thread_started = false;
	}
	if (m->todo)
		stop_tracking(vm);
	free(m->page_log);
	m->page_log = NULL;
}
