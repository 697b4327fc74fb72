/* Inside the emulated Intel 82540EM (e1000.c and its helpers): register
 * offsets and bits, descriptor layouts, and the small parts that have no
 * thread, lock or guest memory of their own (the EEPROM behind EECD/EERD,
 * the PHY behind MDIC, the transmit offloads), so the unit tests and the
 * fuzzer can drive them alone. Names and values are the Intel PCI/PCI-X
 * Family of Gigabit Ethernet Controllers Software Developer's Manual's
 * (8254x, rev. 4.0), chapter 13 for registers, 3 for descriptors. */
#ifndef VIREO_HW_E1000_REGS_H
#define VIREO_HW_E1000_REGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define E1000_VENDOR 0x8086
#define E1000_DEVICE_82540EM 0x100e
#define E1000_SUBSYS_ID 0x001e /* PRO/1000 MT Desktop */
#define E1000_BAR_SIZE 0x20000 /* 128 KiB of registers */
#define E1000_IO_BAR_SIZE 0x40 /* IOADDR, IODATA (and reserved) */

/* ---- registers (13.4) ---- */
#define E1000_CTRL 0x0000
#define E1000_STATUS 0x0008
#define E1000_EECD 0x0010
#define E1000_EERD 0x0014
#define E1000_CTRL_EXT 0x0018
#define E1000_FLA 0x001c
#define E1000_MDIC 0x0020
#define E1000_FCAL 0x0028
#define E1000_FCAH 0x002c
#define E1000_FCT 0x0030
#define E1000_VET 0x0038
#define E1000_ICR 0x00c0
#define E1000_ITR 0x00c4
#define E1000_ICS 0x00c8
#define E1000_IMS 0x00d0
#define E1000_IMC 0x00d8
#define E1000_RCTL 0x0100
#define E1000_FCTTV 0x0170
#define E1000_TXCW 0x0178
#define E1000_RXCW 0x0180
#define E1000_TCTL 0x0400
#define E1000_TIPG 0x0410
#define E1000_AIT 0x0458
#define E1000_LEDCTL 0x0e00
#define E1000_PBA 0x1000
#define E1000_FCRTL 0x2160
#define E1000_FCRTH 0x2168
#define E1000_RDBAL 0x2800
#define E1000_RDBAH 0x2804
#define E1000_RDLEN 0x2808
#define E1000_RDH 0x2810
#define E1000_RDT 0x2818
#define E1000_RDTR 0x2820
#define E1000_RXDCTL 0x2828
#define E1000_RADV 0x282c
#define E1000_RSRPD 0x2c00
#define E1000_TXDMAC 0x3000
#define E1000_TDBAL 0x3800
#define E1000_TDBAH 0x3804
#define E1000_TDLEN 0x3808
#define E1000_TDH 0x3810
#define E1000_TDT 0x3818
#define E1000_TIDV 0x3820
#define E1000_TXDCTL 0x3828
#define E1000_TADV 0x382c
#define E1000_STATS_START 0x4000 /* 0x4000-0x40ff: statistics, cleared on read */
#define E1000_STATS_END 0x4100
#define E1000_RXCSUM 0x5000
#define E1000_MTA 0x5200 /* 128 words */
#define E1000_RA 0x5400	 /* 16 pairs: RAL, RAH */
#define E1000_VFTA 0x5600 /* 128 words */
#define E1000_WUC 0x5800
#define E1000_WUFC 0x5808
#define E1000_WUS 0x5810
#define E1000_MANC 0x5820
#define E1000_REG_END 0x5900 /* registers kept: [0, E1000_REG_END) */
#define E1000_REG_WORDS (E1000_REG_END / 4)

/* Statistics (13.7) Vireo counts; the others read 0. */
#define E1000_MPC 0x4010   /* missed packets */
#define E1000_PRC64 0x405c /* 64, 65-127, ..., 1024-max: six counters */
#define E1000_GPRC 0x4074
#define E1000_BPRC 0x4078
#define E1000_MPRC 0x407c
#define E1000_GPTC 0x4080
#define E1000_GORCL 0x4088
#define E1000_GOTCL 0x4090
#define E1000_RNBC 0x40a0
#define E1000_ROC 0x40ac
#define E1000_TORL 0x40c0
#define E1000_TOTL 0x40c8
#define E1000_TPR 0x40d0
#define E1000_TPT 0x40d4
#define E1000_PTC64 0x40d8
#define E1000_MPTC 0x40f0
#define E1000_BPTC 0x40f4
#define E1000_TSCTC 0x40f8

#define E1000_CTRL_FD 0x00000001
#define E1000_CTRL_SLU 0x00000040
#define E1000_CTRL_SPD_1000 0x00000200
#define E1000_CTRL_RST 0x04000000
#define E1000_CTRL_VME 0x40000000
#define E1000_CTRL_PHY_RST 0x80000000

#define E1000_STATUS_FD 0x00000001
#define E1000_STATUS_LU 0x00000002
#define E1000_STATUS_SPEED_1000 0x00000080
#define E1000_STATUS_ASDV_1000 0x00000200

#define E1000_EECD_SK 0x00000001
#define E1000_EECD_CS 0x00000002
#define E1000_EECD_DI 0x00000004
#define E1000_EECD_DO 0x00000008
#define E1000_EECD_FWE_MASK 0x00000030
#define E1000_EECD_REQ 0x00000040
#define E1000_EECD_GNT 0x00000080
#define E1000_EECD_PRES 0x00000100

#define E1000_EERD_START 0x00000001
#define E1000_EERD_DONE 0x00000010
#define E1000_EERD_ADDR_SHIFT 8
#define E1000_EERD_DATA_SHIFT 16

#define E1000_MDIC_DATA_MASK 0x0000ffff
#define E1000_MDIC_REG_SHIFT 16
#define E1000_MDIC_PHY_SHIFT 21
#define E1000_MDIC_OP_WRITE 0x04000000
#define E1000_MDIC_OP_READ 0x08000000
#define E1000_MDIC_READY 0x10000000
#define E1000_MDIC_INT_EN 0x20000000
#define E1000_MDIC_ERROR 0x40000000

/* Interrupt causes: ICR, ICS, IMS, IMC. */
#define E1000_ICR_TXDW 0x00000001
#define E1000_ICR_TXQE 0x00000002
#define E1000_ICR_LSC 0x00000004
#define E1000_ICR_RXSEQ 0x00000008
#define E1000_ICR_RXDMT0 0x00000010
#define E1000_ICR_RXO 0x00000040
#define E1000_ICR_RXT0 0x00000080
#define E1000_ICR_MDAC 0x00000200
#define E1000_ICR_VALID 0x0001f6df /* the causes the 82540EM has */

#define E1000_RCTL_EN 0x00000002
#define E1000_RCTL_SBP 0x00000004
#define E1000_RCTL_UPE 0x00000008
#define E1000_RCTL_MPE 0x00000010
#define E1000_RCTL_LPE 0x00000020
#define E1000_RCTL_RDMTS_SHIFT 8
#define E1000_RCTL_MO_SHIFT 12
#define E1000_RCTL_BAM 0x00008000
#define E1000_RCTL_BSIZE_SHIFT 16
#define E1000_RCTL_VFE 0x00040000
#define E1000_RCTL_BSEX 0x02000000
#define E1000_RCTL_SECRC 0x04000000

#define E1000_TCTL_EN 0x00000002

#define E1000_RAH_AV 0x80000000

/* ---- descriptors (3.2.3, 3.3) ---- */
#define E1000_DESC_SIZE 16

/* Receive descriptor: addr(8) length(2) csum(2) status(1) errors(1) special(2). */
#define E1000_RXD_STAT_DD 0x01
#define E1000_RXD_STAT_EOP 0x02
#define E1000_RXD_STAT_IXSM 0x04
#define E1000_RXD_STAT_VP 0x08

/* Transmit descriptors: the second quadword's low dword is "lower"
 * (length, and the command byte at 31:24), its high dword "upper"
 * (status at 7:0; legacy: CSS at 15:8 and special; data: POPTS at 15:8). */
#define E1000_TXD_CMD_EOP 0x01000000
#define E1000_TXD_CMD_IFCS 0x02000000
#define E1000_TXD_CMD_IC 0x04000000 /* legacy: insert checksum */
#define E1000_TXD_CMD_TSE 0x04000000 /* extended: TCP segmentation */
#define E1000_TXD_CMD_RS 0x08000000
#define E1000_TXD_CMD_DEXT 0x20000000
#define E1000_TXD_CMD_VLE 0x40000000
#define E1000_TXD_CMD_IDE 0x80000000
#define E1000_TXD_DTYP_MASK 0x00f00000
#define E1000_TXD_DTYP_D 0x00100000 /* data; 0 with DEXT: context */
#define E1000_TXD_STAT_DD 0x01
#define E1000_TXD_POPTS_IXSM 0x01
#define E1000_TXD_POPTS_TXSM 0x02
/* Context descriptor's TUCMD (the command byte). */
#define E1000_TXD_TUCMD_TCP 0x01000000
#define E1000_TXD_TUCMD_IP 0x02000000

/* ---- the EEPROM (5.6): 64 words behind Microwire (EECD) and EERD ---- */
#define E1000_EEPROM_WORDS 64
#define E1000_EEPROM_SUM 0xbaba /* words 0x00-0x3f add up to this */
#define E1000_EEPROM_ADDR_BITS 6

struct e1000_eeprom {
	uint16_t data[E1000_EEPROM_WORDS];
	/* Microwire: the state of a read in progress. */
	uint32_t eecd;	 /* what the driver wrote: SK, CS, DI, FWE, REQ */
	uint16_t in;	 /* bits shifted in since CS rose */
	uint8_t nbits;	 /* how many */
	bool reading;	 /* opcode READ and an address were taken */
	uint8_t addr;	 /* word being shifted out */
	uint8_t bitpos;	 /* next bit of it, from 15 down */
	bool dout;	 /* DO */
};

/* The image for mac: the MAC in words 0-2, the PCI identity, and the
 * checksum word 0x3f; the Microwire state idle. */
void e1000_eeprom_init(struct e1000_eeprom *ee, const uint8_t mac[6]);
/* The sum of words 0x00-0x3f (E1000_EEPROM_SUM for a valid image). */
uint16_t e1000_eeprom_sum(const struct e1000_eeprom *ee);
uint32_t e1000_eecd_read(const struct e1000_eeprom *ee);
void e1000_eecd_write(struct e1000_eeprom *ee, uint32_t v);
/* EERD written: the value it reads back (DONE and the word). */
uint32_t e1000_eerd_write(const struct e1000_eeprom *ee, uint32_t v);
/* Whether a loaded Microwire state is one this code could have made. */
bool e1000_eeprom_state_valid(const struct e1000_eeprom *ee);

/* ---- the PHY (a Marvell 88E1011, as on the 82540EM's boards) ---- */
#define E1000_PHY_ADDR 1
#define E1000_PHY_REGS 32
#define PHY_CTRL 0
#define PHY_STATUS 1
#define PHY_ID1 2
#define PHY_ID2 3
#define PHY_AUTONEG_ADV 4
#define PHY_LP_ABILITY 5
#define PHY_1000T_CTRL 9
#define PHY_1000T_STATUS 10
#define PHY_EXT_STATUS 15
#define M88_PHY_SPEC_CTRL 16
#define M88_PHY_SPEC_STATUS 17
#define PHY_CTRL_RESET 0x8000
#define PHY_CTRL_RESTART_AN 0x0200
#define PHY_STATUS_LINK 0x0004
#define PHY_STATUS_AN_COMPLETE 0x0020

struct e1000_phy {
	uint16_t reg[E1000_PHY_REGS];
};

void e1000_phy_reset(struct e1000_phy *phy);
/* An MDIC write: returns what MDIC reads back afterwards (READY, the
 * data of a read, ERROR for another PHY address or no operation). */
uint32_t e1000_mdic_write(struct e1000_phy *phy, uint32_t v);

/* ---- transmit offloads (3.3.5-3.3.7), on a frame in a flat buffer ---- */

/* The offload context a context descriptor sets (one for the 82540EM). */
struct e1000_tx_ctx {
	uint8_t ipcss, ipcso;
	uint16_t ipcse;
	uint8_t tucss, tucso;
	uint16_t tucse;
	uint32_t paylen; /* TSO: payload bytes after the header */
	uint8_t hdr_len; /* TSO: bytes of headers at the front */
	uint16_t mss;
	bool ipv4, tcp;	 /* TUCMD.IP, TUCMD.TCP */
};

/* Reads a context descriptor's 16 bytes into c. */
void e1000_tx_ctx_parse(struct e1000_tx_ctx *c, const uint8_t desc[16]);

/* The one's complement sum (RFC 1071) of p[0..len), folded, not inverted,
 * added to sum. */
uint32_t e1000_csum_add(uint32_t sum, const uint8_t *p, size_t len);
uint16_t e1000_csum_fold(uint32_t sum);

/* Inserts the checksum of f[start .. end] (end inclusive; 0: to the
 * frame's end) at f[at] (16 bits, network order), the field's present
 * value included in the sum. Nothing when the offsets do not fit len.
 * udp: a zero result is sent as 0xffff. */
void e1000_tx_insert_csum(uint8_t *f, size_t len, unsigned int start, unsigned int at,
			  unsigned int end, bool udp);

/* TCP segmentation: the frame whose headers are f[0..c->hdr_len) and
 * whose payload follows, segment k (of mss payload bytes) as a whole
 * frame into out (room for hdr_len + mss bytes): lengths, IP id, TCP
 * sequence and flags, and the checksums popts asks for. Returns its
 * length, or 0 when the headers do not fit the context's offsets. */
size_t e1000_tso_segment(const struct e1000_tx_ctx *c, uint8_t popts, const uint8_t *f, size_t len,
			 unsigned int k, uint8_t *out);
/* How many segments e1000_tso_segment makes of a frame of len bytes;
 * 0 when it cannot be segmented (no MSS, no payload, bad header length). */
unsigned int e1000_tso_count(const struct e1000_tx_ctx *c, size_t len);

#endif
