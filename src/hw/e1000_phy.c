/* The 82540EM's copper PHY, a Marvell 88E1011, reached through MDIC (8254x
 * manual, 13.4.6 and 13.5): IEEE 802.3 clause 22 registers plus Marvell's
 * status. The link is always up at 1000 Mb/s full duplex, auto-negotiation
 * complete: the backend behind it has no link of its own to report. A
 * restart of auto-negotiation completes at once. */
#include <string.h>

#include "hw/e1000_regs.h"

#define M88E1011_ID1 0x0141 /* Marvell's OUI */
#define M88E1011_ID2 0x0c20 /* model 2, revision 0 */

/* Read-only registers: status, identifiers, what the partner offered,
 * Marvell's status and counters. */
static const uint32_t phy_readonly = 1u << PHY_STATUS | 1u << PHY_ID1 | 1u << PHY_ID2 |
				     1u << PHY_LP_ABILITY | 1u << 6 | 1u << 8 |
				     1u << PHY_1000T_STATUS | 1u << PHY_EXT_STATUS |
				     1u << M88_PHY_SPEC_STATUS | 1u << 19 | 1u << 21;

void e1000_phy_reset(struct e1000_phy *phy)
{
	memset(phy, 0, sizeof(*phy));
	phy->reg[PHY_CTRL] = 0x1140; /* auto-negotiation on, full duplex, 1000 */
	/* 10/100 both duplexes, extended status, preamble suppression,
	 * auto-negotiation able and complete, link up, extended registers. */
	phy->reg[PHY_STATUS] = 0x796d;
	phy->reg[PHY_ID1] = M88E1011_ID1;
	phy->reg[PHY_ID2] = M88E1011_ID2;
	phy->reg[PHY_AUTONEG_ADV] = 0x0de1; /* 10/100 both duplexes, pause */
	phy->reg[PHY_LP_ABILITY] = 0x45e1;  /* the same, acknowledged */
	phy->reg[6] = 0x0001;		    /* the partner negotiates */
	phy->reg[7] = 0x2001;		    /* next page: null message */
	phy->reg[PHY_1000T_CTRL] = 0x0300;  /* 1000 both duplexes */
	phy->reg[PHY_1000T_STATUS] = 0x3c00; /* partner 1000 both, receivers OK */
	phy->reg[PHY_EXT_STATUS] = 0x3000;   /* 1000BASE-T both duplexes */
	phy->reg[M88_PHY_SPEC_CTRL] = 0x0068;
	/* 1000 Mb/s, full duplex, resolved, link up in real time. */
	phy->reg[M88_PHY_SPEC_STATUS] = 0xac00;
	phy->reg[20] = 0x0c60; /* extended PHY specific control */
}

uint32_t e1000_mdic_write(struct e1000_phy *phy, uint32_t v)
{
	unsigned int addr = (v >> E1000_MDIC_PHY_SHIFT) & 0x1f;
	unsigned int reg = (v >> E1000_MDIC_REG_SHIFT) & 0x1f;
	uint32_t op = v & (E1000_MDIC_OP_READ | E1000_MDIC_OP_WRITE);
	uint32_t out = (v & ~(uint32_t)(E1000_MDIC_READY | E1000_MDIC_ERROR)) | E1000_MDIC_READY;
	uint16_t data = (uint16_t)(v & E1000_MDIC_DATA_MASK);

	/* One PHY, at address 1; no operation (or both) is an error too. */
	if (addr != E1000_PHY_ADDR || (op != E1000_MDIC_OP_READ && op != E1000_MDIC_OP_WRITE))
		return out | E1000_MDIC_ERROR;
	if (op == E1000_MDIC_OP_READ)
		return (out & ~(uint32_t)E1000_MDIC_DATA_MASK) | phy->reg[reg];
	if (phy_readonly & (1u << reg))
		return out;
	if (reg == PHY_CTRL) {
		/* Reset and restart are self-clearing and finish at once. */
		data &= (uint16_t)~(PHY_CTRL_RESET | PHY_CTRL_RESTART_AN);
	}
	phy->reg[reg] = data;
	return out;
}
