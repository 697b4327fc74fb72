#include "net/libslirp.h"

#include <dlfcn.h>
#include <pthread.h>

#include "util/log.h"

/* The soname of libslirp 4.x, the ABI the header describes. */
#define LIBSLIRP_SONAME "libslirp.so.0"

static struct libslirp lib;
static const struct libslirp *loaded;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void *sym(void *h, const char *name, int *missing)
{
	void *p = dlsym(h, name);

	if (!p) {
		log_error("--net user: %s has no %s: not the libslirp 4.x Vireo was built for",
			  LIBSLIRP_SONAME, name);
		*missing = 1;
	}
	return p;
}

static void load(void)
{
	void *h = dlopen(LIBSLIRP_SONAME, RTLD_NOW | RTLD_LOCAL);
	int missing = 0;

	if (!h) {
		log_error("--net user needs libslirp (Debian: apt-get install libslirp0): %s",
			  dlerror());
		return;
	}
	/* dlsym's void * to function pointers: POSIX guarantees it works. */
	*(void **)&lib.new_ = sym(h, "slirp_new", &missing);
	*(void **)&lib.cleanup = sym(h, "slirp_cleanup", &missing);
	*(void **)&lib.input = sym(h, "slirp_input", &missing);
	*(void **)&lib.pollfds_fill = sym(h, "slirp_pollfds_fill", &missing);
	*(void **)&lib.pollfds_poll = sym(h, "slirp_pollfds_poll", &missing);
	*(void **)&lib.handle_timer = sym(h, "slirp_handle_timer", &missing);
	*(void **)&lib.add_hostfwd = sym(h, "slirp_add_hostfwd", &missing);
	*(void **)&lib.state_save = sym(h, "slirp_state_save", &missing);
	*(void **)&lib.state_load = sym(h, "slirp_state_load", &missing);
	*(void **)&lib.state_version = sym(h, "slirp_state_version", &missing);
	*(void **)&lib.version_string = sym(h, "slirp_version_string", &missing);
	if (missing) {
		dlclose(h);
		return;
	}
	/* Never closed: a VM that used it may use it until it exits. */
	loaded = &lib;
}

const struct libslirp *libslirp_get(void)
{
	pthread_once(&once, load);
	return loaded;
}
