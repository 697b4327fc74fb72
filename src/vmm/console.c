#include "vmm/console.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/file.h"
#include "util/log.h"

static struct termios saved_termios;
static int saved_fd = -1;

void console_init(struct console *c, int in_fd, int out_fd)
{
	memset(c, 0, sizeof(*c));
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->is_tty = isatty(in_fd);
}

void console_restore(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSAFLUSH, &saved_termios);
		saved_fd = -1;
		log_set_raw_terminal(0);
	}
}

/* A crash must not leave the user's terminal in raw mode. tcsetattr is
 * async-signal-safe; the default action then runs as usual. */
static void fatal_signal(int sig)
{
	if (saved_fd >= 0)
		tcsetattr(saved_fd, TCSAFLUSH, &saved_termios);
	signal(sig, SIG_DFL);
	raise(sig);
}

int console_raw_mode(struct console *c)
{
	static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGQUIT };
	struct termios raw;
	size_t i;

	if (!c->is_tty)
		return 0;
	if (tcgetattr(c->in_fd, &saved_termios) < 0)
		return -1;
	raw = saved_termios;
	cfmakeraw(&raw);
	saved_fd = c->in_fd;
	atexit(console_restore);
	for (i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		signal(fatal[i], fatal_signal);
	if (tcsetattr(c->in_fd, TCSAFLUSH, &raw) < 0) {
		saved_fd = -1;
		return -1;
	}
	log_set_raw_terminal(1);
	return 0;
}

size_t console_filter(struct console *c, const uint8_t *in, size_t n, uint8_t *out,
		      enum console_action *action)
{
	size_t i, o = 0;

	*action = CONSOLE_CONTINUE;
	if (!c->is_tty) {
		memcpy(out, in, n);
		return n;
	}
	for (i = 0; i < n; i++) {
		uint8_t ch = in[i];

		if (c->escape_pending) {
			c->escape_pending = 0;
			if (ch == 'x' || ch == 'X') {
				*action = CONSOLE_QUIT;
				return o;
			}
			if (ch == CONSOLE_ESCAPE) {
				out[o++] = ch;
				continue;
			}
			/* Unknown escape: pass both through, like QEMU. */
			out[o++] = CONSOLE_ESCAPE;
			out[o++] = ch;
			continue;
		}
		if (ch == CONSOLE_ESCAPE) {
			c->escape_pending = 1;
			continue;
		}
		out[o++] = ch;
	}
	return o;
}

void console_write(struct console *c, uint8_t byte)
{
	/* A closed stdout must not kill the VM; the byte is dropped. */
	(void)write_full(c->out_fd, &byte, 1);
}

void console_write_buf(struct console *c, const uint8_t *buf, size_t len)
{
	(void)write_full(c->out_fd, buf, len);
}
