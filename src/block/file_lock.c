/* Image locking as QEMU does it, so that QEMU and Vireo (and two of
 * either) cannot both write one image: open file description (OFD) locks
 * on single bytes of the file, never on its data. For each permission a
 * user holds it read-locks byte 100 + the permission's number; for each
 * permission it does not let others have, byte 200 + that number. A user
 * may start when nobody holds a byte 200 + a permission it wants, and
 * nobody holds a byte 100 + a permission it refuses to share. The numbers
 * are QEMU's (include/block/block-common.h): consistent read 0, write 1,
 * write-unchanged 2, resize 3. OFD locks belong to the open file, so a
 * second open in this very process conflicts too, and they vanish with
 * the fd. Testing then taking is not atomic: QEMU's own race, shared. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "block/file.h"

#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200

enum { PERM_READ = 0, PERM_WRITE = 1, PERM_RESIZE = 3 };

static int ofd(int fd, int cmd, short type, off_t byte, off_t len, short *held)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = len };

	if (fcntl(fd, cmd, &fl) < 0)
		return -1;
	if (held)
		*held = fl.l_type;
	return 0;
}

/* Whether another open file holds byte. -1 on error. */
static int taken(int fd, off_t byte)
{
	short held;

	if (ofd(fd, F_OFD_GETLK, F_WRLCK, byte, 1, &held) < 0)
		return -1;
	return held != F_UNLCK;
}

/* A guest disk reads and, unless read-only, writes; it lets nobody else
 * write or resize the image meanwhile (a read-only disk's data must not
 * change under it either), and lets others read. */
int file_lock(const struct block_backend *bb)
{
	const struct block_file *b = (const struct block_file *)bb;
	const int want[] = { PERM_READ, PERM_WRITE }, refuse[] = { PERM_WRITE, PERM_RESIZE };
	unsigned int nwant = b->base.read_only ? 1 : 2, i;
	int t;

	for (i = 0; i < nwant; i++) {
		if ((t = taken(b->fd, LOCK_SHARED_BASE + want[i])) != 0)
			goto busy;
	}
	for (i = 0; i < 2; i++) {
		if ((t = taken(b->fd, LOCK_PERM_BASE + refuse[i])) != 0)
			goto busy;
	}
	for (i = 0; i < nwant; i++)
		if (ofd(b->fd, F_OFD_SETLK, F_RDLCK, LOCK_PERM_BASE + want[i], 1, NULL) < 0)
			goto failed;
	for (i = 0; i < 2; i++)
		if (ofd(b->fd, F_OFD_SETLK, F_RDLCK, LOCK_SHARED_BASE + refuse[i], 1, NULL) < 0)
			goto failed;
	return 0;
busy:
	if (t > 0)
		errno = EWOULDBLOCK;
	return -1;
failed:
	i = (unsigned int)errno;
	file_unlock(bb);
	errno = (int)i == EAGAIN || (int)i == EACCES ? EWOULDBLOCK : (int)i;
	return -1;
}

void file_unlock(const struct block_backend *bb)
{
	ofd(((const struct block_file *)bb)->fd, F_OFD_SETLK, F_UNLCK, LOCK_PERM_BASE,
	    LOCK_SHARED_BASE - LOCK_PERM_BASE + 100, NULL);
}
