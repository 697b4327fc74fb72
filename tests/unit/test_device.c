/* The device registry and lifecycle (hw/device.c): creation order kept,
 * names unique, pause last-created-first and resume first-created-first,
 * a refused pause undone, and errors carried up as values. */
#include "cmocka_prelude.h"

#include <stdio.h>
#include <string.h>

#include "hw/device.h"
#include "util/error.h"

static char trail[512]; /* "pause:b resume:a ..." */

static void note(const char *what, const struct device *d)
{
	size_t n = strlen(trail);

	snprintf(trail + n, sizeof(trail) - n, "%s%s:%s", n ? " " : "", what, d->name);
}

static int fake_realize(struct device *d, struct error *err)
{
	(void)err;
	note("realize", d);
	return 0;
}

static int fake_pause(struct device *d, struct error *err)
{
	note("pause", d);
	if (d->opaque == (void *)1)
		return error_set(err, "requests still in flight after 30 s");
	return 0;
}

static void fake_resume(struct device *d)
{
	note("resume", d);
}

static void fake_destroy(struct device *d)
{
	note("destroy", d);
}

static const struct device_ops fake_ops = {
	.realize = fake_realize,
	.pause = fake_pause,
	.resume = fake_resume,
	.destroy = fake_destroy,
};

/* A device with no ops at all: registers only. */
static const struct device_ops bare_ops = { 0 };

static struct device a, b, c, bare;
static struct device_list list;

static void three(void)
{
	trail[0] = '\0';
	device_list_init(&list);
	device_init(&a, "a", "fake", &fake_ops, NULL);
	device_init(&b, "b", "fake", &fake_ops, NULL);
	device_init(&c, "c", "fake", &fake_ops, NULL);
	device_init(&bare, "bare", "fake", &bare_ops, NULL);
	assert_int_equal(device_register(&list, &a, NULL), 0);
	assert_int_equal(device_register(&list, &bare, NULL), 0);
	assert_int_equal(device_register(&list, &b, NULL), 0);
	assert_int_equal(device_register(&list, &c, NULL), 0);
}

static void test_lifecycle_order(void **state)
{
	struct error err = { 0 };

	(void)state;
	three();
	assert_int_equal(list.count, 4);
	assert_int_equal(devices_realize_all(&list, &err), 0);
	assert_int_equal(devices_pause_all(&list, &err), 0);
	assert_int_equal(a.state, DEVICE_PAUSED);
	assert_int_equal(bare.state, DEVICE_PAUSED);
	devices_resume_all(&list);
	assert_int_equal(c.state, DEVICE_RUNNING);
	devices_destroy_all(&list);
	assert_int_equal(list.count, 0);
	assert_null(list.head);
	assert_string_equal(trail, "realize:a realize:b realize:c "
				   "pause:c pause:b pause:a "
				   "resume:a resume:b resume:c "
				   "destroy:c destroy:b destroy:a");
}

static void test_refused_pause_is_undone(void **state)
{
	struct error err = { 0 };

	(void)state;
	three();
	a.opaque = (void *)1; /* a cannot quiesce */
	assert_int_equal(devices_realize_all(&list, NULL), 0);
	trail[0] = '\0';
	assert_int_equal(devices_pause_all(&list, &err), -1);
	assert_true(err.set);
	assert_string_equal(err.msg, "a: requests still in flight after 30 s");
	/* c and b were paused before a refused: they run again. */
	assert_string_equal(trail, "pause:c pause:b pause:a resume:b resume:c");
	assert_int_equal(a.state, DEVICE_RUNNING);
	assert_int_equal(b.state, DEVICE_RUNNING);
	assert_int_equal(c.state, DEVICE_RUNNING);
	assert_int_equal(bare.state, DEVICE_RUNNING);
}

static void test_names_unique_and_unregister(void **state)
{
	struct device dup;
	struct error err = { 0 };

	(void)state;
	three();
	device_init(&dup, "b", "fake", &fake_ops, NULL);
	assert_int_equal(device_register(&list, &dup, &err), -1);
	assert_string_equal(err.msg, "a device named 'b' exists already");
	assert_ptr_equal(device_find(&list, "c"), &c);
	assert_null(device_find(&list, "nope"));
	/* Removing the last one keeps the tail right for the next append. */
	device_unregister(&list, &c);
	assert_null(device_find(&list, "c"));
	assert_int_equal(device_register(&list, &dup, NULL), -1);
	device_init(&dup, "d", "fake", &fake_ops, NULL);
	assert_int_equal(device_register(&list, &dup, NULL), 0);
	assert_ptr_equal(b.next, &dup);
	device_unregister(&list, &a); /* the head */
	assert_ptr_equal(list.head, &bare);
	assert_int_equal(list.count, 3);
}

static void test_error_first_wins_and_prefix(void **state)
{
	struct error err = { 0 };

	(void)state;
	assert_int_equal(error_set(&err, "cannot open '%s'", "x.img"), -1);
	assert_int_equal(error_set(&err, "later"), -1);
	error_prefix(&err, "%s: ", "virtio-blk0");
	assert_string_equal(err.msg, "virtio-blk0: cannot open 'x.img'");
	/* A prefix never overflows the message. */
	for (int i = 0; i < 40; i++)
		error_prefix(&err, "%s: ", "a-rather-long-context");
	assert_int_equal(strlen(err.msg), ERROR_MSG_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_order),
		cmocka_unit_test(test_refused_pause_is_undone),
		cmocka_unit_test(test_names_unique_and_unregister),
		cmocka_unit_test(test_error_first_wins_and_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
