/* stderr_begin() .. stderr_end(): what the code under test logged in
 * between, for tests that check Vireo's one-line error messages. */
#ifndef VIREO_TESTS_CAPTURE_STDERR_H
#define VIREO_TESTS_CAPTURE_STDERR_H

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct captured {
	char text[8192];
};

static inline int stderr_begin(void)
{
	int saved, fd = memfd_create("stderr", 0);

	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	close(fd);
	return saved;
}

static inline void stderr_end(int saved, struct captured *c)
{
	ssize_t n;

	fflush(stderr);
	memset(c->text, 0, sizeof(c->text));
	n = pread(STDERR_FILENO, c->text, sizeof(c->text) - 1, 0);
	assert_true(n >= 0);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
}

#endif
