/* A record of CAN traffic in candump's log format (`candump -L`, which
 * canplayer and log2asc read back):
 *
 *   (1700000000.123456) vcan0 123#DEADBEEF     classic, 11-bit id
 *   (1700000000.123456) vcan0 12345678#00      classic, 29-bit id
 *   (1700000000.123456) vcan0 123#R            remote request, length 0
 *   (1700000000.123456) vcan0 123#R4           remote request, length 4
 *   (1700000000.123456) vcan0 123##5AABB       CAN FD: flags nibble (4 FDF, always
 *                                              set, | 1 BRS | 2 ESI), data
 *
 * Each line is written with a single write() on an O_APPEND file, so it
 * is on disk (in the page cache) the moment the frame passes: a crash of
 * Vireo loses nothing. */
#ifndef VIREO_CAN_CANDUMP_LOG_H
#define VIREO_CAN_CANDUMP_LOG_H

#include <stddef.h>
#include <time.h>

#include "can/can.h"

/* The longest interface name a log line carries (longer ones are cut). */
#define CANDUMP_IFNAME_MAX 63
/* Room for any line, with its newline and a terminating NUL. */
#define CANDUMP_LINE_MAX (32 + CANDUMP_IFNAME_MAX + 16 + 2 * CANFD_MAX_DLEN)

/* Formats one line, newline included, into buf (NUL-terminated; size
 * should be CANDUMP_LINE_MAX). Returns its length without the NUL. ifname
 * is used as given, cut to CANDUMP_IFNAME_MAX; whitespace in it becomes
 * '_' so the line stays parseable. */
size_t candump_format(char *buf, size_t size, const struct timespec *when, const char *ifname,
		      const struct can_msg *m);

struct candump_log;

/* Opens (creates, appends to) file. what names the option in the error
 * line ("--can bus=/run/can0,log=FILE"). NULL after logging one line. */
struct candump_log *candump_log_open(const char *file, const char *ifname, const char *what);
/* Appends m with the current wall-clock time. Never fails loudly: a
 * write error is reported once as a warning. Safe from any thread. */
void candump_log_frame(struct candump_log *l, const struct can_msg *m);
void candump_log_close(struct candump_log *l);

#endif
