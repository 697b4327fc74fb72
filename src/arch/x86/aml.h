/* Just enough of an AML (ACPI Machine Language) encoder to write our DSDT:
 * names, integers, packages, buffers, scopes and devices. Each nested
 * object is built into its own aml_buf and then wrapped, which gives the
 * PkgLength its final size. */
#ifndef VIREO_ARCH_X86_AML_H
#define VIREO_ARCH_X86_AML_H

#include <stddef.h>
#include <stdint.h>

#define AML_BUF_MAX 2048

struct aml_buf {
	size_t len;
	int overflow; /* set when an append did not fit */
	uint8_t data[AML_BUF_MAX];
};

void aml_init(struct aml_buf *b);
void aml_bytes(struct aml_buf *b, const void *p, size_t n);
void aml_byte(struct aml_buf *b, uint8_t v);
/* Encodes an integer constant with the smallest opcode. */
void aml_integer(struct aml_buf *b, uint64_t v);
/* A 4-character NameSeg ("_HID") or a rooted path ("\\_SB_"). */
void aml_name_string(struct aml_buf *b, const char *name);
/* Name(name, <object already encoded in value>) */
void aml_name(struct aml_buf *b, const char *name, const struct aml_buf *value);
void aml_name_integer(struct aml_buf *b, const char *name, uint64_t v);
void aml_name_eisaid(struct aml_buf *b, const char *name, const char *eisaid);
/* Wrappers that add an opcode, a PkgLength and then the body. */
void aml_scope(struct aml_buf *b, const char *name, const struct aml_buf *body);
void aml_device(struct aml_buf *b, const char *name, const struct aml_buf *body);
void aml_package(struct aml_buf *b, uint8_t count, const struct aml_buf *elements);
void aml_buffer(struct aml_buf *b, const struct aml_buf *bytes);
/* The PkgLength encoding of a body of len bytes (for tests). */
size_t aml_pkglength(uint8_t out[4], size_t body_len);
/* Compressed EISA id ("PNP0A03") as the 32-bit value AML stores. */
uint32_t aml_eisaid(const char *id);

#endif
