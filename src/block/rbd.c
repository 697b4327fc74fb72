/* Ceph RBD images through librbd (loaded when a disk first needs it, as
 * libnbd and libslirp are; no build dependency: the few declarations
 * used are below). Requests go through librbd's asynchronous API, with
 * the guest's scatter-gather lists as they are; librbd completes them in
 * its own threads, and they are handed to the device through an eventfd
 * as block.h promises.
 *
 * What a dead or unreachable cluster does: librbd's own timeouts are set
 * (client_mount_timeout, rados_osd_op_timeout, rados_mon_op_timeout:
 * VIREO_RBD_TIMEOUT_S, 30 s), so a request fails with an error instead
 * of waiting forever. Concurrent writers are librbd's business (the
 * image's exclusive-lock feature), as for QEMU. */
#include "block/rbd.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "block/block_driver.h"
#include "block/completions.h"
#include "util/iov.h"
#include "util/log.h"

/* librados.h and librbd.h, what is used of them. */
typedef void *rados_t;
typedef void *rados_ioctx_t;
typedef void *rbd_image_t;
typedef void *rbd_completion_t;
typedef void (*rbd_callback_t)(rbd_completion_t cb, void *arg);

static struct {
	int (*create)(rados_t *, const char *);
	int (*conf_read_file)(rados_t, const char *);
	int (*conf_set)(rados_t, const char *, const char *);
	int (*connect)(rados_t);
	void (*shutdown)(rados_t);
	int (*ioctx_create)(rados_t, const char *, rados_ioctx_t *);
	void (*ioctx_destroy)(rados_ioctx_t);
} R;

static struct {
	int (*open)(rados_ioctx_t, const char *, rbd_image_t *, const char *);
	int (*open_read_only)(rados_ioctx_t, const char *, rbd_image_t *, const char *);
	int (*close)(rbd_image_t);
	int (*get_size)(rbd_image_t, uint64_t *);
	int (*aio_create_completion)(void *, rbd_callback_t, rbd_completion_t *);
	ssize_t (*aio_get_return_value)(rbd_completion_t);
	void (*aio_release)(rbd_completion_t);
	int (*aio_readv)(rbd_image_t, const struct iovec *, int, uint64_t, rbd_completion_t);
	int (*aio_writev)(rbd_image_t, const struct iovec *, int, uint64_t, rbd_completion_t);
	int (*aio_flush)(rbd_image_t, rbd_completion_t);
	int (*aio_discard)(rbd_image_t, uint64_t, uint64_t, rbd_completion_t);
	int (*aio_write_zeroes)(rbd_image_t, uint64_t, size_t, rbd_completion_t, int, int);
} B;

static bool loaded;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static bool resolve(void *h, const char *lib, const char *const *names, void **slot, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!(slot[i] = dlsym(h, names[i]))) {
			log_error("--disk rbd=: %s has no %s", lib, names[i]);
			return false;
		}
	}
	return true;
}

static void load(void)
{
	static const char *const rados[] = { "rados_create", "rados_conf_read_file",
					     "rados_conf_set", "rados_connect", "rados_shutdown",
					     "rados_ioctx_create", "rados_ioctx_destroy" };
	static const char *const rbd[] = {
		"rbd_open", "rbd_open_read_only", "rbd_close", "rbd_get_size",
		"rbd_aio_create_completion", "rbd_aio_get_return_value", "rbd_aio_release",
		"rbd_aio_readv", "rbd_aio_writev", "rbd_aio_flush", "rbd_aio_discard",
		"rbd_aio_write_zeroes",
	};
	void *hr = dlopen("librados.so.2", RTLD_NOW | RTLD_LOCAL);
	void *hb = hr ? dlopen("librbd.so.1", RTLD_NOW | RTLD_LOCAL) : NULL;

	_Static_assert(sizeof(R) == sizeof(rados) / sizeof(rados[0]) * sizeof(void *),
		       "one name per member");
	_Static_assert(sizeof(B) == sizeof(rbd) / sizeof(rbd[0]) * sizeof(void *),
		       "one name per member");
	if (!hb) {
		log_error("--disk rbd= needs librbd (Debian: apt-get install librbd1): %s", dlerror());
		return;
	}
	loaded = resolve(hr, "librados.so.2", rados, (void **)&R, sizeof(rados) / sizeof(rados[0])) &&
		 resolve(hb, "librbd.so.1", rbd, (void **)&B, sizeof(rbd) / sizeof(rbd[0]));
}

struct rbd_node;

struct rbd_cmd {
	/* First: release() frees the command. Its req NULL: a synchronous
	 * caller waits on finished. Its result: the command's, either way. */
	struct completion completion;
	struct rbd_node *n;
	enum block_op op;
	uint64_t len;
	bool finished;
};
_Static_assert(offsetof(struct rbd_cmd, completion) == 0, "a command begins with its completion");

struct rbd_node {
	struct block_backend base;
	rados_t cluster;
	rados_ioctx_t io;
	rbd_image_t image;
	struct completions done; /* the asynchronous commands */
	pthread_mutex_t lock;	 /* the synchronous ones' finished */
	pthread_cond_t finished;
};

static struct rbd_node *N(const struct block_backend *b)
{
	return (struct rbd_node *)b;
}

/* In one of librbd's threads. */
static void completed(rbd_completion_t comp, void *arg)
{
	struct rbd_cmd *c = arg;
	struct rbd_node *n = c->n;
	ssize_t r = B.aio_get_return_value(comp);

	B.aio_release(comp);
	/* A short read is an error to the guest (block.h). */
	if (r < 0)
		c->completion.result = r;
	else if (c->op == BLOCK_READ && (uint64_t)r != c->len)
		c->completion.result = -EIO;
	else if (c->op == BLOCK_READ || c->op == BLOCK_WRITE)
		c->completion.result = (int64_t)c->len; /* a write's own count varies by version */
	else
		c->completion.result = 0;
	if (c->completion.req) {
		completions_push(&n->done, &c->completion);
		return;
	}
	pthread_mutex_lock(&n->lock);
	c->finished = true;
	pthread_cond_broadcast(&n->finished);
	pthread_mutex_unlock(&n->lock);
}

/* The queue's: an asynchronous command, done with. */
static void release(struct completion *done)
{
	free(done);
}

static int issue(struct rbd_node *n, struct rbd_cmd *c, uint64_t offset, const struct iovec *iov,
		 unsigned int iovcnt)
{
	rbd_completion_t comp;
	int r;

	c->n = n;
	if (B.aio_create_completion(c, completed, &comp) < 0)
		return -ENOMEM;
	switch (c->op) {
	case BLOCK_READ:
		r = B.aio_readv(n->image, iov, (int)iovcnt, offset, comp);
		break;
	case BLOCK_WRITE:
		r = B.aio_writev(n->image, iov, (int)iovcnt, offset, comp);
		break;
	case BLOCK_FLUSH:
		r = B.aio_flush(n->image, comp);
		break;
	case BLOCK_DISCARD: /* reads back as zeroes: rbd_skip_partial_discard is off */
		r = B.aio_discard(n->image, offset, c->len, comp);
		break;
	default:
		r = B.aio_write_zeroes(n->image, offset, (size_t)c->len, comp, 0, 0);
		break;
	}
	if (r < 0) {
		B.aio_release(comp);
		return r;
	}
	return 0;
}

static int rbd_submit(struct block_backend *b, struct block_req *r)
{
	struct rbd_node *n = N(b);
	struct rbd_cmd *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->completion.req = r;
	c->op = r->op;
	c->len = r->op == BLOCK_READ || r->op == BLOCK_WRITE ? iov_size(r->iov, r->iovcnt) : r->len;
	err = issue(n, c, r->offset, r->iov, r->iovcnt);
	if (err) {
		free(c);
		return err;
	}
	completions_expect(&n->done);
	return 0;
}

static int64_t rbd_io_sync(struct block_backend *b, enum block_op op, uint64_t offset,
			   const struct iovec *iov, unsigned int iovcnt, uint64_t len)
{
	struct rbd_node *n = N(b);
	struct rbd_cmd c = { .op = op, .len = op == BLOCK_READ || op == BLOCK_WRITE
						      ? iov_size(iov, iovcnt)
						      : len };
	int err = issue(n, &c, offset, iov, iovcnt);

	if (err)
		return err;
	pthread_mutex_lock(&n->lock);
	while (!c.finished)
		pthread_cond_wait(&n->finished, &n->lock);
	pthread_mutex_unlock(&n->lock);
	return c.completion.result;
}

static const char *rbd_engine_name(const struct block_backend *b)
{
	(void)b;
	return "librbd";
}

static void rbd_free(struct rbd_node *n)
{
	if (n->image)
		B.close(n->image);
	if (n->io)
		R.ioctx_destroy(n->io);
	if (n->cluster)
		R.shutdown(n->cluster);
	completions_destroy(&n->done);
	pthread_cond_destroy(&n->finished);
	pthread_mutex_destroy(&n->lock);
	free(n->base.path);
	free(n);
}

static void rbd_close_node(struct block_backend *b)
{
	rbd_free(N(b));
}

static const struct block_driver rbd_driver = {
	.name = "rbd",
	.submit = rbd_submit,
	.io_sync = rbd_io_sync,
	.close = rbd_close_node,
	.engine_name = rbd_engine_name,
};

struct block_backend *block_rbd_open(const struct block_options *o)
{
	const char *t = getenv("VIREO_RBD_TIMEOUT_S"), *slash = strchr(o->path, '/');
	char pool[256], timeout[16];
	struct rbd_node *n;
	uint64_t size;
	int r;

	if (!slash || slash == o->path || !slash[1] || (size_t)(slash - o->path) >= sizeof(pool)) {
		log_error("disk 'rbd=%s': give POOL/IMAGE", o->path);
		return NULL;
	}
	pthread_once(&load_once, load);
	if (!loaded)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->base.drv = &rbd_driver;
	n->base.read_only = o->read_only;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->finished, NULL);
	memcpy(pool, o->path, (size_t)(slash - o->path));
	pool[slash - o->path] = 0;
	snprintf(timeout, sizeof(timeout), "%d", t && atoi(t) > 0 ? atoi(t) : 30);
	n->base.path = strdup(o->path);
	if (!n->base.path || (r = R.create(&n->cluster, o->rbd_id)) < 0) {
		log_error("disk 'rbd=%s': cannot create a cluster handle", o->path);
		n->cluster = NULL;
		goto fail;
	}
	if ((r = R.conf_read_file(n->cluster, o->rbd_conf)) < 0) {
		log_error("disk 'rbd=%s': cannot read %s: %s", o->path,
			  o->rbd_conf ? o->rbd_conf : "the default ceph.conf", strerror(-r));
		goto fail;
	}
	R.conf_set(n->cluster, "client_mount_timeout", timeout);
	R.conf_set(n->cluster, "rados_osd_op_timeout", timeout);
	R.conf_set(n->cluster, "rados_mon_op_timeout", timeout);
	R.conf_set(n->cluster, "rbd_skip_partial_discard", "false");
	if ((r = R.connect(n->cluster)) < 0) {
		if (r == -ENOENT)
			log_error("disk 'rbd=%s': no keyring for client.%s (say where it is in the "
				  "ceph.conf given by conf=)", o->path, o->rbd_id ? o->rbd_id : "admin");
		else
			log_error("disk 'rbd=%s': cannot connect to the cluster: %s", o->path,
				  strerror(-r));
		goto fail;
	}
	if ((r = R.ioctx_create(n->cluster, pool, &n->io)) < 0) {
		log_error("disk 'rbd=%s': no pool '%s': %s", o->path, pool, strerror(-r));
		n->io = NULL;
		goto fail;
	}
	r = o->read_only ? B.open_read_only(n->io, slash + 1, &n->image, NULL)
			 : B.open(n->io, slash + 1, &n->image, NULL);
	if (r < 0) {
		log_error("disk 'rbd=%s': cannot open the image: %s", o->path, strerror(-r));
		n->image = NULL;
		goto fail;
	}
	if (B.get_size(n->image, &size) < 0 || !size || size % BLOCK_SECTOR_SIZE) {
		log_error("disk 'rbd=%s': its size (%llu bytes) is not a positive multiple of %d",
			  o->path, (unsigned long long)size, BLOCK_SECTOR_SIZE);
		goto fail;
	}
	n->base.size = size;
	if (completions_init(&n->done, release) < 0)
		goto fail;
	n->base.done = &n->done;
	log_debug("disk 'rbd=%s': %llu bytes", o->path, (unsigned long long)size);
	return &n->base;
fail:
	rbd_free(n);
	return NULL;
}
