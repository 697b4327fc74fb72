#include "arch/x86/aml.h"

#include <string.h>

#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP 0x82
#define AML_ROOT_CHAR '\\'

void aml_init(struct aml_buf *b)
{
	b->len = 0;
	b->overflow = 0;
}

void aml_bytes(struct aml_buf *b, const void *p, size_t n)
{
	if (b->overflow || n > sizeof(b->data) - b->len) {
		b->overflow = 1;
		return;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void aml_byte(struct aml_buf *b, uint8_t v)
{
	aml_bytes(b, &v, 1);
}

void aml_integer(struct aml_buf *b, uint64_t v)
{
	uint8_t le[8];
	int i;

	if (v == 0 || v == 1) {
		aml_byte(b, v ? AML_ONE_OP : AML_ZERO_OP);
		return;
	}
	for (i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	if (v <= 0xff) {
		aml_byte(b, AML_BYTE_PREFIX);
		aml_bytes(b, le, 1);
	} else if (v <= 0xffff) {
		aml_byte(b, AML_WORD_PREFIX);
		aml_bytes(b, le, 2);
	} else if (v <= 0xffffffffULL) {
		aml_byte(b, AML_DWORD_PREFIX);
		aml_bytes(b, le, 4);
	} else {
		aml_byte(b, AML_QWORD_PREFIX);
		aml_bytes(b, le, 8);
	}
}

void aml_name_string(struct aml_buf *b, const char *name)
{
	size_t n;
	char seg[4];

	if (*name == AML_ROOT_CHAR) {
		aml_byte(b, AML_ROOT_CHAR);
		name++;
	}
	/* NameSegs are exactly four characters, padded with '_'. */
	n = strlen(name);
	if (n > 4)
		n = 4;
	memset(seg, '_', sizeof(seg));
	memcpy(seg, name, n);
	aml_bytes(b, seg, sizeof(seg));
}

size_t aml_pkglength(uint8_t out[4], size_t body_len)
{
	size_t total;

	/* The length counts its own encoding bytes. */
	if (body_len + 1 <= 0x3f) {
		out[0] = (uint8_t)(body_len + 1);
		return 1;
	}
	if (body_len + 2 <= 0xfff) {
		total = body_len + 2;
		out[0] = (uint8_t)(0x40 | (total & 0xf));
		out[1] = (uint8_t)(total >> 4);
		return 2;
	}
	total = body_len + 3;
	out[0] = (uint8_t)(0x80 | (total & 0xf));
	out[1] = (uint8_t)(total >> 4);
	out[2] = (uint8_t)(total >> 12);
	return 3;
}

static void wrap(struct aml_buf *b, const uint8_t *op, size_t oplen, const struct aml_buf *body)
{
	uint8_t pl[4];
	size_t n = aml_pkglength(pl, body->len);

	if (body->overflow)
		b->overflow = 1;
	aml_bytes(b, op, oplen);
	aml_bytes(b, pl, n);
	aml_bytes(b, body->data, body->len);
}

void aml_name(struct aml_buf *b, const char *name, const struct aml_buf *value)
{
	aml_byte(b, AML_NAME_OP);
	aml_name_string(b, name);
	if (value->overflow)
		b->overflow = 1;
	aml_bytes(b, value->data, value->len);
}

void aml_name_integer(struct aml_buf *b, const char *name, uint64_t v)
{
	aml_byte(b, AML_NAME_OP);
	aml_name_string(b, name);
	aml_integer(b, v);
}

uint32_t aml_eisaid(const char *id)
{
	uint32_t v = 0;
	int i;

	/* Three letters of five bits ('A' = 1) and four hex digits, stored
	 * big-endian in a little-endian DWORD. */
	if (strlen(id) != 7)
		return 0;
	v |= (uint32_t)((id[0] - '@') & 0x1f) << 26;
	v |= (uint32_t)((id[1] - '@') & 0x1f) << 21;
	v |= (uint32_t)((id[2] - '@') & 0x1f) << 16;
	for (i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t d = (c >= '0' && c <= '9') ? (uint32_t)(c - '0') : (uint32_t)((c | 0x20) - 'a' + 10);

		v |= (d & 0xf) << (4 * (6 - i));
	}
	return __builtin_bswap32(v);
}

void aml_name_eisaid(struct aml_buf *b, const char *name, const char *eisaid)
{
	uint32_t v = aml_eisaid(eisaid);

	aml_byte(b, AML_NAME_OP);
	aml_name_string(b, name);
	/* Always a DWORD, as ASL compilers emit EisaId(). */
	aml_byte(b, AML_DWORD_PREFIX);
	aml_bytes(b, &v, sizeof(v));
}

void aml_scope(struct aml_buf *b, const char *name, const struct aml_buf *body)
{
	struct aml_buf inner;
	uint8_t op = AML_SCOPE_OP;

	aml_init(&inner);
	aml_name_string(&inner, name);
	aml_bytes(&inner, body->data, body->len);
	if (body->overflow)
		inner.overflow = 1;
	wrap(b, &op, 1, &inner);
}

void aml_device(struct aml_buf *b, const char *name, const struct aml_buf *body)
{
	struct aml_buf inner;
	const uint8_t op[2] = { AML_EXT_OP_PREFIX, AML_DEVICE_OP };

	aml_init(&inner);
	aml_name_string(&inner, name);
	aml_bytes(&inner, body->data, body->len);
	if (body->overflow)
		inner.overflow = 1;
	wrap(b, op, 2, &inner);
}

void aml_package(struct aml_buf *b, uint8_t count, const struct aml_buf *elements)
{
	struct aml_buf inner;
	uint8_t op = AML_PACKAGE_OP;

	aml_init(&inner);
	aml_byte(&inner, count);
	aml_bytes(&inner, elements->data, elements->len);
	if (elements->overflow)
		inner.overflow = 1;
	wrap(b, &op, 1, &inner);
}

void aml_buffer(struct aml_buf *b, const struct aml_buf *bytes)
{
	struct aml_buf inner;
	uint8_t op = AML_BUFFER_OP;

	aml_init(&inner);
	aml_integer(&inner, bytes->len);
	aml_bytes(&inner, bytes->data, bytes->len);
	if (bytes->overflow)
		inner.overflow = 1;
	wrap(b, &op, 1, &inner);
}
