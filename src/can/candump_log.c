/* candump -L log files for --can ...,log=FILE. See candump_log.h. */
#include "can/candump_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

struct candump_log {
	int fd;
	char file[256];
	char ifname[CANDUMP_IFNAME_MAX + 1];
	atomic_bool warned;
};

static const char hex_digits[] = "0123456789ABCDEF";

/* Appends to buf at *pos, never past size - 1 (buf stays NUL-terminated). */
static void put_char(char *buf, size_t size, size_t *pos, char c)
{
	if (*pos + 1 < size) {
		buf[*pos] = c;
		(*pos)++;
		buf[*pos] = '\0';
	}
}

static void put_hex(char *buf, size_t size, size_t *pos, uint32_t v, unsigned int digits)
{
	while (digits--)
		put_char(buf, size, pos, hex_digits[(v >> (4 * digits)) & 0xf]);
}

static void put_str(char *buf, size_t size, size_t *pos, const char *s)
{
	while (*s)
		put_char(buf, size, pos, *s++);
}

size_t candump_format(char *buf, size_t size, const struct timespec *when, const char *ifname,
		      const struct can_msg *m)
{
	char stamp[48];
	size_t pos = 0;
	unsigned int i, len = m->len;

	if (!size)
		return 0;
	buf[0] = '\0';
	snprintf(stamp, sizeof(stamp), "(%lld.%06ld) ", (long long)when->tv_sec,
		 (long)(when->tv_nsec / 1000));
	put_str(buf, size, &pos, stamp);
	for (i = 0; ifname[i] && i < CANDUMP_IFNAME_MAX; i++) {
		char c = ifname[i];

		put_char(buf, size, &pos,
			 (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
				 ? '_'
				 : c);
	}
	put_char(buf, size, &pos, ' ');
	if (m->flags & CAN_MSG_EXT)
		put_hex(buf, size, &pos, m->id & 0x1fffffff, 8);
	else
		put_hex(buf, size, &pos, m->id & 0x7ff, 3);
	put_char(buf, size, &pos, '#');
	if (m->flags & CAN_MSG_FD) {
		/* The flags of struct canfd_frame, as candump prints them:
		 * CANFD_FDF (4) is set on every FD frame the kernel hands
		 * out (and on the ones we send), plus BRS (1) and ESI (2). */
		unsigned int nibble = 4;

		if (m->flags & CAN_MSG_BRS)
			nibble |= 1;
		if (m->flags & CAN_MSG_ESI)
			nibble |= 2;
		put_char(buf, size, &pos, '#');
		put_hex(buf, size, &pos, nibble, 1);
		if (len > CANFD_MAX_DLEN)
			len = CANFD_MAX_DLEN;
	} else if (m->flags & CAN_MSG_RTR) {
		put_char(buf, size, &pos, 'R');
		/* candump prints a requested length only when it is not 0. */
		if (len && len <= CAN_MAX_DLEN)
			put_hex(buf, size, &pos, len, 1);
		len = 0;
	} else if (len > CAN_MAX_DLEN) {
		len = CAN_MAX_DLEN;
	}
	for (i = 0; i < len; i++)
		put_hex(buf, size, &pos, m->data[i], 2);
	put_char(buf, size, &pos, '\n');
	return pos;
}

struct candump_log *candump_log_open(const char *file, const char *ifname, const char *what)
{
	struct candump_log *l;
	int fd;

	if (!*file) {
		log_error("%s: empty log file name", what);
		return NULL;
	}
	fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0) {
		log_error("%s: cannot open log file %s: %s", what, file, strerror(errno));
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		log_error("%s: out of memory", what);
		close(fd);
		return NULL;
	}
	l->fd = fd;
	snprintf(l->file, sizeof(l->file), "%s", file);
	snprintf(l->ifname, sizeof(l->ifname), "%s", ifname);
	atomic_init(&l->warned, false);
	return l;
}

void candump_log_frame(struct candump_log *l, const struct can_msg *m)
{
	char line[CANDUMP_LINE_MAX];
	struct timespec now;
	size_t len;
	ssize_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	len = candump_format(line, sizeof(line), &now, l->ifname, m);
	do {
		n = write(l->fd, line, len);
	} while (n < 0 && errno == EINTR);
	if ((n < 0 || (size_t)n != len) && !atomic_exchange(&l->warned, true))
		log_warn("CAN log %s: write failed (%s); later frames may be missing", l->file,
			 n < 0 ? strerror(errno) : "short write");
}

void candump_log_close(struct candump_log *l)
{
	if (!l)
		return;
	close(l->fd);
	free(l);
}
