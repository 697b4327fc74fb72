/* The host side of the guest console: stdin feeds the UART, the UART's
 * output goes to stdout. On a terminal, stdin is put in raw mode (restored
 * on every exit path) and Ctrl-A is an escape: Ctrl-A x stops the VM,
 * Ctrl-A Ctrl-A sends a Ctrl-A. */
#ifndef VIREO_VMM_CONSOLE_H
#define VIREO_VMM_CONSOLE_H

#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

struct console {
	int in_fd, out_fd;
	int is_tty;
	int eof;
	int escape_pending;
	uint8_t pending[256]; /* read from stdin, not yet taken by the UART */
	size_t pending_len, pending_off;
};

enum console_action { CONSOLE_CONTINUE, CONSOLE_QUIT };

void console_init(struct console *c, int in_fd, int out_fd);
/* Raw mode when stdin is a terminal; installs the restore handlers. */
int console_raw_mode(struct console *c);
void console_restore(void);
/* Handles escapes in raw input: writes what goes to the guest into out
 * (at most n bytes) and returns its length; sets *action. */
size_t console_filter(struct console *c, const uint8_t *in, size_t n, uint8_t *out,
		      enum console_action *action);
void console_write(struct console *c, uint8_t byte);
void console_write_buf(struct console *c, const uint8_t *buf, size_t len);

#endif
