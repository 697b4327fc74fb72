/* The 82540EM's EEPROM (8254x manual, 5.6 and 13.4.3-4): a 64-word
 * Microwire serial EEPROM (a 93C46) that Linux's e1000 driver reads by
 * toggling EECD's clock, chip select and data bits, one register write per
 * edge; and EERD, the read register later drivers use instead. Only reads
 * are implemented: writes (ethtool -E) are taken and ignored, as by an
 * EEPROM whose write enable was never given. */
#include <string.h>

#include "hw/e1000_regs.h"

/* Word offsets of the image (5.6.1). */
#define EE_MAC 0x00 /* 0x00-0x02 */
#define EE_LED 0x04
#define EE_PBA 0x08 /* 0x08-0x09: the printed board assembly number */
#define EE_INIT1 0x0a
#define EE_SUBSYS_ID 0x0b
#define EE_SUBSYS_VENDOR 0x0c
#define EE_DEVICE_ID 0x0d
#define EE_VENDOR_ID 0x0e
#define EE_INIT2 0x0f
#define EE_CHECKSUM 0x3f

/* Microwire: a start bit and a 2-bit opcode, then the address. */
#define MW_READ 0x6 /* 1 10 */
#define MW_CMD_BITS (3 + E1000_EEPROM_ADDR_BITS)
#define MW_IGNORE (MW_CMD_BITS + 1) /* nbits: a command we do not do */

#define EECD_WRITABLE (E1000_EECD_SK | E1000_EECD_CS | E1000_EECD_DI | E1000_EECD_FWE_MASK | \
		       E1000_EECD_REQ)

uint16_t e1000_eeprom_sum(const struct e1000_eeprom *ee)
{
	uint16_t sum = 0;
	unsigned int i;

	for (i = 0; i < E1000_EEPROM_WORDS; i++)
		sum = (uint16_t)(sum + ee->data[i]);
	return sum;
}

void e1000_eeprom_init(struct e1000_eeprom *ee, const uint8_t mac[6])
{
	unsigned int i;

	memset(ee, 0, sizeof(*ee));
	for (i = 0; i < 3; i++)
		ee->data[EE_MAC + i] = (uint16_t)(mac[2 * i] | mac[2 * i + 1] << 8);
	ee->data[EE_LED] = 0xffff; /* "use the default LED configuration" */
	ee->data[EE_PBA] = 0x1000;
	ee->data[EE_PBA + 1] = 0x0001;
	/* Init control 1 and 2: no power management, no flow control (the
	 * PAUSE bits of word 0x0f clear), the software pins as inputs. */
	ee->data[EE_INIT1] = 0x0000;
	ee->data[EE_INIT2] = 0x0000;
	ee->data[EE_SUBSYS_ID] = E1000_SUBSYS_ID;
	ee->data[EE_SUBSYS_VENDOR] = E1000_VENDOR;
	ee->data[EE_DEVICE_ID] = E1000_DEVICE_82540EM;
	ee->data[EE_VENDOR_ID] = E1000_VENDOR;
	ee->data[EE_CHECKSUM] = (uint16_t)(E1000_EEPROM_SUM - e1000_eeprom_sum(ee));
}

uint32_t e1000_eecd_read(const struct e1000_eeprom *ee)
{
	uint32_t v = (ee->eecd & EECD_WRITABLE) | E1000_EECD_PRES;

	/* The driver asks for the EEPROM (REQ) and waits for the grant:
	 * nothing else ever uses it here. */
	if (ee->eecd & E1000_EECD_REQ)
		v |= E1000_EECD_GNT;
	if (ee->dout)
		v |= E1000_EECD_DO;
	return v;
}

/* A rising clock edge with chip select high: shifts DI in, or the next
 * bit of the word being read out. */
static void clock_edge(struct e1000_eeprom *ee, bool di)
{
	if (ee->reading) {
		if (ee->bitpos == 0) { /* sequential read: the next word */
			ee->addr = (uint8_t)((ee->addr + 1) % E1000_EEPROM_WORDS);
			ee->bitpos = 16;
		}
		ee->bitpos--;
		ee->dout = (ee->data[ee->addr] >> ee->bitpos) & 1;
		return;
	}
	if (ee->nbits >= MW_CMD_BITS)
		return; /* ignoring the rest of an unsupported command */
	if (ee->nbits == 0 && !di)
		return; /* leading zeros before the start bit */
	ee->in = (uint16_t)(ee->in << 1 | di);
	if (++ee->nbits < MW_CMD_BITS)
		return;
	if ((ee->in >> E1000_EEPROM_ADDR_BITS) == MW_READ) {
		ee->reading = true;
		ee->addr = (uint8_t)(ee->in & (E1000_EEPROM_WORDS - 1));
		ee->bitpos = 16;
		ee->dout = false; /* the dummy zero before the data */
	} else {
		ee->nbits = MW_IGNORE;
	}
}

void e1000_eecd_write(struct e1000_eeprom *ee, uint32_t v)
{
	uint32_t old = ee->eecd;

	ee->eecd = v & EECD_WRITABLE;
	if (!(v & E1000_EECD_CS)) {
		/* Chip select low ends any command (standby). */
		ee->in = 0;
		ee->nbits = 0;
		ee->reading = false;
		ee->bitpos = 0;
		ee->dout = false;
		return;
	}
	if (!(old & E1000_EECD_SK) && (v & E1000_EECD_SK))
		clock_edge(ee, (v & E1000_EECD_DI) != 0);
}

uint32_t e1000_eerd_write(const struct e1000_eeprom *ee, uint32_t v)
{
	unsigned int addr = (v >> E1000_EERD_ADDR_SHIFT) & 0xff;

	if (!(v & E1000_EERD_START))
		return v & ~(uint32_t)E1000_EERD_DONE;
	/* A word beyond the 64 reads as erased. */
	return (v & 0xff00u) | E1000_EERD_DONE |
	       (uint32_t)(addr < E1000_EEPROM_WORDS ? ee->data[addr] : 0xffff)
		       << E1000_EERD_DATA_SHIFT;
}

bool e1000_eeprom_state_valid(const struct e1000_eeprom *ee)
{
	if (ee->eecd & ~(uint32_t)EECD_WRITABLE)
		return false;
	if (ee->reading)
		return ee->addr < E1000_EEPROM_WORDS && ee->bitpos <= 16;
	return (ee->nbits < MW_CMD_BITS || ee->nbits == MW_IGNORE) &&
	       ee->in < (1u << MW_CMD_BITS) && ee->addr < E1000_EEPROM_WORDS && ee->bitpos <= 16;
}
