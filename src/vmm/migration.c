/* Migration (vmm/migration.h). */
#include "vmm/migration.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "virtio/virtio_pci.h"
#include "vmm/migration_stream.h"
#include "vmm/snapshot_file.h"
#include "vmm/vm.h"
#include "vmm/vm_state.h"

#define REPLY_TIMEOUT_MS 60000 /* the destination loads the state */
#define THROTTLE_SLICE_NS 10000000ULL /* QEMU's CPU_THROTTLE_TIMESLICE_NS */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void migration_init(struct migration *m)
{
	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->fd = -1;
	m->params = (struct migration_params){
		.downtime_limit_ms = 300,
		.max_bandwidth = 128ULL << 20,
		.auto_converge = true,
		.throttle_initial = 20,
		.throttle_increment = 10,
		.max_throttle = 99,
	};
}

static void event(struct vm *vm, const char *status)
{
	vm_qmp_event(vm, "MIGRATION", json_pack("{s:s}", "status", status));
}

static void set_status(struct vm *vm, const char *status)
{
	pthread_mutex_lock(&vm->mig.lock);
	vm->mig.status = status;
	pthread_mutex_unlock(&vm->mig.lock);
	event(vm, status);
}

/* "HOST:PORT" or "[V6]:PORT" into its parts. */
static int split_host_port(const char *s, char *host, size_t hn, char *port, size_t pn)
{
	const char *colon;
	size_t len;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -1;
		len = (size_t)(end - s - 1);
		if (len >= hn)
			return -1;
		memcpy(host, s + 1, len);
		host[len] = 0;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= hn)
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = 0;
	}
	if (!colon[1] || strlen(colon + 1) >= pn)
		return -1;
	strcpy(port, colon + 1);
	return 0;
}

/* A connected (or, with passive, listening) TCP socket for HOST:PORT. */
static int tcp_socket(const char *hostport, bool passive, struct error *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0 };
	struct addrinfo *res, *a;
	char host[256], port[32];
	int fd = -1, r, one = 1, saved = 0;

	if (split_host_port(hostport, host, sizeof(host), port, sizeof(port)) < 0)
		return error_set(err, "'%s': must be HOST:PORT", hostport);
	r = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (r)
		return error_set(err, "'%s': %s", hostport, gai_strerror(r));
	for (a = res; a; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (passive) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1) == 0)
				break;
		} else if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			break;
		}
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return error_set(err, "cannot %s %s: %s", passive ? "listen on" : "connect to",
				 hostport, strerror(saved));
	return fd;
}

/* ---- dirty pages ------------------------------------------------------ */

struct slot {
	uint32_t id;
	uint64_t gpa, size, first_page; /* first_page: in the host mapping */
};

static unsigned int slots(const struct vm *vm, struct slot *s)
{
	unsigned int n = 0;

	s[n++] = (struct slot){ 0, 0, vm->mem.low_size, 0 };
	if (guest_mem_high_size(&vm->mem))
		s[n++] = (struct slot){ 1, HIGH_RAM_START, guest_mem_high_size(&vm->mem),
					vm->mem.low_size / MIG_PAGE };
	return n;
}

static int dirty_logging(struct vm *vm, bool on)
{
	struct slot s[2];
	unsigned int i, n = slots(vm, s);

	for (i = 0; i < n; i++)
		if (kvm_set_dirty_logging(&vm->kvm, s[i].id, s[i].gpa, s[i].size,
					  vm->mem.host + s[i].first_page * MIG_PAGE, on) < 0)
			return -1;
	return 0;
}

/* The pages written since the last call, by the vCPUs (KVM's log) and by
 * Vireo's devices, into m->todo. */
static int sync_dirty(struct vm *vm)
{
	struct migration *m = &vm->mig;
	struct slot s[2];
	unsigned int i, n = slots(vm, s);

	for (i = 0; i < n; i++) {
		uint64_t pages = s[i].size / MIG_PAGE, w, words = (pages + 63) / 64;

		memset(m->scratch, 0, words * 8);
		if (kvm_get_dirty_log(&vm->kvm, s[i].id, m->scratch) < 0)
			return -1;
		for (w = 0; w < words; w++) {
			uint64_t bits = m->scratch[w];

			while (bits) {
				uint64_t p = s[i].first_page + w * 64 + (uint64_t)__builtin_ctzll(bits);

				m->todo[p / 64] |= 1ULL << (p % 64);
				bits &= bits - 1;
			}
		}
	}
	guest_mem_take_written(&vm->mem, m->todo);
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

/* Sends the pages in todo, in runs, clearing them; counts them. */
static int send_todo(struct vm *vm, struct mig_out *o, bool zeros_too, uint64_t *pages)
{
	struct migration *m = &vm->mig;
	uint64_t total = vm->mem.size / MIG_PAGE, p = 0, zero = 0;

	while (p < total) {
		uint64_t run = 0;

		if (!(m->todo[p / 64] >> (p % 64) & 1)) {
			p++;
			continue;
		}
		while (p + run < total && (m->todo[(p + run) / 64] >> ((p + run) % 64) & 1))
			run++;
		/* Cleared before the copy: a write during the send is in the
		 * next sync. */
		for (uint64_t q = p; q < p + run; q++)
			m->todo[q / 64] &= ~(1ULL << (q % 64));
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
	uint64_t pages = 0, pass_start = now_ms(), pass_sent = 0;
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
	    send_todo(vm, &o, false, &pages) < 0) {
		precopy_failed(m, "sending RAM", errno);
		goto out;
	}
	for (;;) {
		uint64_t t = now_ms(), elapsed = t - pass_start ? t - pass_start : 1;
		uint64_t sent = o.sent - pass_sent, dirty, bw;

		if (sync_dirty(vm) < 0) {
			precopy_failed(m, "reading the dirty log", errno);
			goto out;
		}
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
		if (send_todo(vm, &o, true, &pages) < 0) {
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
	m->total_ms = now_ms() - m->start_ms;
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
	uint64_t stop_at = now_ms(), pages = 0, before;
	unsigned int n = 0, i;
	uint32_t status;
	char msg[MIG_MAX_REPLY + 1];

	memset(sec, 0, sizeof(sec));
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
	if (sync_dirty(vm) < 0) {
		error_set(&err, "reading the dirty log: %s", strerror(errno));
		goto failed;
	}
	if (send_todo(vm, &o, true, &pages) < 0)
		goto send_failed;
	if (vm_sync_disks(vm, &err) < 0 || vm_state_build(vm, sec, &n, &err) < 0)
		goto failed;
	/* The images are the destination's from here: it locks them before
	 * it runs. */
	vm_unlock_disks(vm);
	m->disks_released = true;
	for (i = 0; i < n; i++)
		if (mig_send_section(&o, sec[i].kind, sec[i].index, sec[i].w.buf, sec[i].w.len) < 0)
			break;
	if (i < n || mig_send_end(&o) < 0)
		goto send_failed;
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
	m->downtime_ms = now_ms() - stop_at;
	m->total_ms = now_ms() - m->start_ms;
	m->downtime_bytes = o.sent - before;
	m->transferred = o.sent;
	m->remaining = 0;
	pthread_mutex_unlock(&m->lock);
	stop_tracking(vm);
	vm->postmigrate = true;
	log_info("migrated to %s: %llu MiB in %llu ms, downtime %llu ms", m->uri,
		 (unsigned long long)(o.sent >> 20), (unsigned long long)m->total_ms,
		 (unsigned long long)m->downtime_ms);
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
	m->start_ms = now_ms();
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
	if (!m->todo || !m->scratch || guest_mem_track_writes_start(&vm->mem) < 0) {
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
	m->setup_ms = now_ms() - m->start_ms;
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
}

/* ---- QMP ------------------------------------------------------------------ */

json_t *migration_info(struct vm *vm)
{
	struct migration *m = &vm->mig;
	json_t *info, *ram;
	bool done;

	pthread_mutex_lock(&m->lock);
	if (!m->status) {
		pthread_mutex_unlock(&m->lock);
		return json_object();
	}
	done = !strcmp(m->status, "completed");
	info = json_pack("{s:s,s:I}", "status", m->status, "total-time",
			 (json_int_t)(m->total_ms && strcmp(m->status, "active") ? m->total_ms
									 : now_ms() - m->start_ms));
	ram = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I}", "transferred",
			(json_int_t)m->transferred, "remaining", (json_int_t)m->remaining, "total",
			(json_int_t)m->ram_total, "duplicate", (json_int_t)m->duplicate, "normal",
			(json_int_t)m->normal_pages, "normal-bytes",
			(json_int_t)(m->normal_pages * MIG_PAGE), "dirty-pages-rate",
			(json_int_t)m->dirty_pages_rate, "mbps", (double)m->mbps, "dirty-sync-count",
			(json_int_t)m->dirty_sync_count, "precopy-bytes",
			(json_int_t)m->precopy_bytes, "downtime-bytes", (json_int_t)m->downtime_bytes,
			"pages-per-second", (json_int_t)m->pages_per_second);
	json_object_set_new(info, "ram", ram);
	json_object_set_new(info, "setup-time", json_integer((json_int_t)m->setup_ms));
	if (done)
		json_object_set_new(info, "downtime", json_integer((json_int_t)m->downtime_ms));
	else if (!strcmp(m->status, "active"))
		json_object_set_new(info, "expected-downtime",
				    json_integer((json_int_t)m->expected_downtime_ms));
	if (m->throttle_pct)
		json_object_set_new(info, "cpu-throttle-percentage",
				    json_integer((json_int_t)m->throttle_pct));
	if (!strcmp(m->status, "failed") && m->error[0])
		json_object_set_new(info, "error-desc", json_string(m->error));
	pthread_mutex_unlock(&m->lock);
	return info;
}

json_t *migration_params_json(struct vm *vm)
{
	const struct migration_params *p = &vm->mig.params;

	return json_pack("{s:I,s:I,s:I,s:I,s:I}", "downtime-limit",
			 (json_int_t)p->downtime_limit_ms, "max-bandwidth",
			 (json_int_t)p->max_bandwidth, "cpu-throttle-initial",
			 (json_int_t)p->throttle_initial, "cpu-throttle-increment",
			 (json_int_t)p->throttle_increment, "max-cpu-throttle",
			 (json_int_t)p->max_throttle);
}

json_t *migration_caps_json(struct vm *vm)
{
	return json_pack("[{s:s,s:b}]", "capability", "auto-converge", "state",
			 vm->mig.params.auto_converge);
}

static bool busy(const struct migration *m)
{
	return m->thread_started;
}

int migration_set_params(struct vm *vm, json_t *args, struct error *err)
{
	struct migration_params p = vm->mig.params;
	const char *key;
	json_t *v;

	json_object_foreach(args, key, v) {
		json_int_t x = json_integer_value(v);

		if (!json_is_integer(v))
			return error_set(err, "Invalid parameter type for '%s', expected: integer",
					 key);
		if (!strcmp(key, "downtime-limit")) {
			if (x < 0 || x > 2000000)
				return error_set(err, "Parameter 'downtime-limit' expects an integer "
						 "in the range of 0 to 2000 seconds");
			p.downtime_limit_ms = (uint64_t)x;
		} else if (!strcmp(key, "max-bandwidth")) {
			if (x < 0)
				return error_set(err, "Parameter 'max-bandwidth' expects a size");
			p.max_bandwidth = (uint64_t)x;
		} else if (!strcmp(key, "cpu-throttle-initial") ||
			   !strcmp(key, "cpu-throttle-increment") ||
			   !strcmp(key, "max-cpu-throttle")) {
			if (x < 1 || x > 99)
				return error_set(err, "Parameter '%s' expects an integer in the "
						 "range of 1 to 99", key);
			if (!strcmp(key, "cpu-throttle-initial"))
				p.throttle_initial = (unsigned int)x;
			else if (!strcmp(key, "cpu-throttle-increment"))
				p.throttle_increment = (unsigned int)x;
			else
				p.max_throttle = (unsigned int)x;
		} else {
			return error_set(err, "Parameter '%s' is unexpected", key);
		}
	}
	/* The pre-copy thread reads the parameters between its passes. */
	vm->mig.params.downtime_limit_ms = p.downtime_limit_ms;
	vm->mig.params.throttle_initial = p.throttle_initial;
	vm->mig.params.throttle_increment = p.throttle_increment;
	vm->mig.params.max_throttle = p.max_throttle;
	__atomic_store_n(&vm->mig.params.max_bandwidth, p.max_bandwidth, __ATOMIC_RELAXED);
	return 0;
}

int migration_set_caps(struct vm *vm, json_t *caps, struct error *err)
{
	bool ac = vm->mig.params.auto_converge;
	size_t i;
	json_t *c;

	if (!json_is_array(caps))
		return error_set(err, "Invalid parameter type for 'capabilities', expected: array");
	json_array_foreach(caps, i, c) {
		json_t *name = json_object_get(c, "capability"), *state = json_object_get(c, "state");

		if (!json_is_string(name) || !json_is_boolean(state) || json_object_size(c) != 2)
			return error_set(err, "capabilities: each is {\"capability\": NAME, "
					 "\"state\": BOOL}");
		if (strcmp(json_string_value(name), "auto-converge"))
			return error_set(err, "Capability '%s' is not supported by Vireo",
					 json_string_value(name));
		ac = json_is_true(state);
	}
	if (busy(&vm->mig))
		return error_set(err, "There's a migration process in progress");
	vm->mig.params.auto_converge = ac;
	return 0;
}

/* ---- the destination -------------------------------------------------------- */

struct incoming {
	int fd, signal_fd;
};

/* Reads n bytes of the stream; a signal (SIGINT, SIGTERM) ends the wait. */
static int incoming_read(void *ctx, void *buf, size_t n)
{
	struct incoming *in = ctx;
	uint8_t *p = buf;

	while (n) {
		struct pollfd fds[2] = { { .fd = in->fd, .events = POLLIN },
					 { .fd = in->signal_fd, .events = POLLIN } };
		ssize_t r;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (fds[1].revents & POLLIN)
			return -1;
		r = read(in->fd, p, n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static bool signalled(int signal_fd)
{
	struct pollfd p = { .fd = signal_fd, .events = POLLIN };

	return signal_fd >= 0 && poll(&p, 1, 0) > 0;
}

/* The NICs tell the network they are here now. */
static void announce(struct vm *vm)
{
	struct device *d;

	for (d = vm->devices.head; d; d = d->next) {
		struct virtio_device *vdev = virtio_pci_vdev(d);

		if (vdev && vdev->ops->announce)
			vdev->ops->announce(vdev);
	}
}

/* The source gave its images up before its end record; a moment's grace
 * all the same for a lock that is still on its way out. */
static int take_disks(struct vm *vm, struct error *err)
{
	int tries;

	for (tries = 0; vm_lock_disks(vm, err) < 0; tries++) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 100000000 };

		if (tries == 20)
			return -1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

int migration_incoming(struct vm *vm, const char *addr, int signal_fd, struct error *err)
{
	struct vm_state_loaded l[SNAPSHOT_MAX_SECTIONS];
	struct mig_target t = { .ram = vm->mem.host, .ram_size = vm->mem.size,
				.low_size = vm->mem.low_size, .ncpus = vm->ncpus };
	struct incoming in = { .fd = -1, .signal_fd = signal_fd };
	unsigned int n = 0;
	uint64_t bytes = 0, start;
	int lfd, ret = -1;

	lfd = tcp_socket(addr, true, err);
	if (lfd < 0)
		return -1;
	log_info("waiting for the migration on %s", addr);
	for (;;) {
		struct pollfd fds[2] = { { .fd = lfd, .events = POLLIN },
					 { .fd = signal_fd, .events = POLLIN } };

		if (poll(fds, 2, -1) < 0 && errno != EINTR) {
			error_set(err, "waiting for the migration: %s", strerror(errno));
			goto out;
		}
		if (fds[1].revents & POLLIN) {
			error_set(err, "stopped by a signal while waiting for the migration");
			goto out;
		}
		if (fds[0].revents & POLLIN) {
			in.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (in.fd >= 0)
				break;
		}
	}
	close(lfd);
	lfd = -1;
	start = now_ms();
	/* RAM as the stream assumes it: zero where the source's is zero (the
	 * first pass skips those pages). The kernel and initrd loaded into it
	 * at start-up are not the source's: left there, a page the guest
	 * had zeroed would hold initrd bytes here. */
	if (madvise(vm->mem.host, vm->mem.size, MADV_DONTNEED) < 0) {
		error_set(err, "incoming migration: cannot clear guest RAM: %s", strerror(errno));
		goto reply;
	}
	if (mig_receive(incoming_read, &in, &t, l, &n, &bytes, err) < 0) {
		if (signalled(signal_fd))
			error_set(err, "stopped by a signal during the migration");
		error_prefix(err, "incoming migration: ");
		goto reply;
	}
	if (vm_state_check(vm, l, n, err) < 0 || vm_state_apply(vm, l, n, err) < 0 ||
	    take_disks(vm, err) < 0) {
		error_prefix(err, "incoming migration: ");
		goto reply;
	}
	announce(vm);
	ret = 0;
	log_info("migrated in on %s: %llu MiB in %llu ms", addr,
		 (unsigned long long)(bytes >> 20), (unsigned long long)(now_ms() - start));
reply:
	/* The source waits for this word: it resumes on anything but 0. */
	mig_send_reply(in.fd, ret ? 1 : 0, ret ? err->msg : "running");
out:
	mig_sections_free(l, n);
	if (in.fd >= 0)
		close(in.fd);
	if (lfd >= 0)
		close(lfd);
	return ret;
}
