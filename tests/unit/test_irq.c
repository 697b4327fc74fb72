/* The interrupt service (hw/irq.c) against a fake controller that
 * records what reaches it: shared lines follow the OR of their sources
 * and reach the controller only when that changes; MSI vectors go
 * through a route and an eventfd where the controller has routes, and
 * are sent message by message where it has none. */
#include "cmocka_prelude.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "hw/irq.h"

struct fake_chip {
	int line[IRQ_LINES];
	unsigned int line_calls;
	unsigned int msis_sent;
	uint64_t last_addr;
	uint32_t last_data;
	int routes;
	uint64_t route_addr[8];
	uint32_t route_data[8];
	bool route_valid[8];
	int bound_fd[8];
};

static int fake_set_line(void *chip, unsigned int gsi, int level)
{
	struct fake_chip *c = chip;

	c->line[gsi] = level;
	c->line_calls++;
	return 0;
}

static int fake_send_msi(void *chip, uint64_t addr, uint32_t data)
{
	struct fake_chip *c = chip;

	c->msis_sent++;
	c->last_addr = addr;
	c->last_data = data;
	return 0;
}

static int fake_route_alloc(void *chip)
{
	struct fake_chip *c = chip;

	return c->routes < 8 ? c->routes++ : -1;
}

static int fake_route_set(void *chip, int route, uint64_t addr, uint32_t data, bool valid)
{
	struct fake_chip *c = chip;

	c->route_addr[route] = addr;
	c->route_data[route] = data;
	c->route_valid[route] = valid;
	return 0;
}

static int fake_route_bind(void *chip, int route, int fd, bool assign)
{
	struct fake_chip *c = chip;

	c->bound_fd[route] = assign ? fd : -1;
	return 0;
}

static const struct irq_chip_ops lines_and_msi = {
	.set_line = fake_set_line,
	.send_msi = fake_send_msi,
};

static const struct irq_chip_ops with_routes = {
	.set_line = fake_set_line,
	.send_msi = fake_send_msi,
	.route_alloc = fake_route_alloc,
	.route_set = fake_route_set,
	.route_bind = fake_route_bind,
};

static void test_shared_line_is_the_or_of_its_sources(void **state)
{
	struct fake_chip c = { 0 };
	struct irq_service s;
	struct irq_line a, b;

	(void)state;
	irq_service_init(&s, &lines_and_msi, &c);
	assert_int_equal(irq_line_claim(&s, 11, &a), 0);
	assert_int_equal(irq_line_claim(&s, 11, &b), 0);
	assert_int_not_equal(a.bit, b.bit);

	irq_line_set(&a, 1);
	assert_int_equal(c.line[11], 1);
	assert_int_equal(c.line_calls, 1);
	irq_line_set(&b, 1); /* already high: nothing new for the controller */
	assert_int_equal(c.line_calls, 1);
	irq_line_set(&a, 0); /* b still holds it */
	assert_int_equal(c.line[11], 1);
	assert_int_equal(c.line_calls, 1);
	irq_line_set(&a, 0); /* repeated lowering: no effect */
	assert_int_equal(c.line_calls, 1);
	irq_line_set(&b, 0);
	assert_int_equal(c.line[11], 0);
	assert_int_equal(c.line_calls, 2);
	assert_int_equal(s.raised, 1);
	irq_service_destroy(&s);
}

static void test_release_lowers_and_frees_the_source(void **state)
{
	struct fake_chip c = { 0 };
	struct irq_service s;
	struct irq_line l[IRQ_LINE_SOURCES], extra;

	(void)state;
	irq_service_init(&s, &lines_and_msi, &c);
	for (unsigned int i = 0; i < IRQ_LINE_SOURCES; i++)
		assert_int_equal(irq_line_claim(&s, 5, &l[i]), 0);
	assert_int_equal(irq_line_claim(&s, 5, &extra), -1);
	assert_int_equal(irq_line_claim(&s, IRQ_LINES, &extra), -1);

	irq_line_set(&l[3], 1);
	assert_int_equal(c.line[5], 1);
	irq_line_release(&l[3]); /* a device going away drops its interrupt */
	assert_int_equal(c.line[5], 0);
	irq_line_set(&l[3], 1); /* a released handle does nothing */
	assert_int_equal(c.line[5], 0);
	assert_int_equal(irq_line_claim(&s, 5, &extra), 0);
	assert_int_equal(extra.bit, 1u << 3);
	irq_service_destroy(&s);
}

static void test_msi_without_routes_is_sent_directly(void **state)
{
	struct fake_chip c = { 0 };
	struct irq_service s;
	struct irq_msi m;

	(void)state;
	irq_service_init(&s, &lines_and_msi, &c);
	assert_int_equal(irq_msi_open(&s, &m), 0);
	assert_int_equal(m.fd, -1);
	irq_msi_fire(&m); /* unprogrammed: dropped */
	assert_int_equal(c.msis_sent, 0);
	assert_int_equal(irq_msi_program(&m, 0xfee00000, 0x4031), 0);
	irq_msi_fire(&m);
	assert_int_equal(c.msis_sent, 1);
	assert_int_equal(c.last_addr, 0xfee00000);
	assert_int_equal(c.last_data, 0x4031);
	assert_int_equal(irq_msi_send(&s, 0xfee01000, 0x22), 0);
	assert_int_equal(c.msis_sent, 2);
	irq_msi_close(&m);
	irq_service_destroy(&s);
}

static void test_msi_with_routes_goes_through_the_eventfd(void **state)
{
	struct fake_chip c = { 0 };
	struct irq_service s;
	struct irq_msi m;
	uint64_t count = 0;

	(void)state;
	irq_service_init(&s, &with_routes, &c);
	assert_int_equal(irq_msi_open(&s, &m), 0);
	assert_int_equal(m.route, 0);
	assert_true(m.fd >= 0);
	assert_int_equal(c.bound_fd[0], m.fd);
	assert_int_equal(irq_msi_program(&m, 0xfee00000, 0x41), 0);
	assert_true(c.route_valid[0]);
	assert_int_equal(c.route_data[0], 0x41);
	irq_msi_fire(&m);
	irq_msi_fire(&m);
	assert_int_equal(read(m.fd, &count, sizeof(count)), sizeof(count));
	assert_int_equal(count, 2); /* what KVM would have injected */
	assert_int_equal(c.msis_sent, 0);
	/* Address 0: the guest unprogrammed it; the route goes, firing drops. */
	assert_int_equal(irq_msi_program(&m, 0, 0), 0);
	assert_false(c.route_valid[0]);
	irq_msi_fire(&m);
	assert_int_equal(read(m.fd, &count, sizeof(count)), -1);
	irq_msi_close(&m);
	assert_int_equal(c.bound_fd[0], -1);
	irq_service_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_line_is_the_or_of_its_sources),
		cmocka_unit_test(test_release_lowers_and_frees_the_source),
		cmocka_unit_test(test_msi_without_routes_is_sent_directly),
		cmocka_unit_test(test_msi_with_routes_goes_through_the_eventfd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
