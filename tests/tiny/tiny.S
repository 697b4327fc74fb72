/* A tiny "bzImage" for fast tests of Vireo's exits, without Linux: a valid
 * setup header (boot protocol 2.15, 64-bit entry) and a few instructions
 * at the 64-bit entry point. Built once per MODE:
 *   hello     print "hello from tiny guest\n" on COM1, power off via ACPI
 *   echo      print "tiny echo up\n" (so a reset is seen), then echo COM1
 *             input back until 'q', then power off
 *   reset     print, then pulse the i8042 reset line
 *   crash     print, then fault with no IDT (a triple fault)
 *   spin      loop forever (for signal tests)
 *   cmos      print the CMOS RTC's hour:minute:second (BCD) then power off
 *   count     print "tiny count up\n", then for each COM1 input byte add
 *             one to a counter in RAM and print it (4 hex digits and a
 *             newline), until 'q': state a snapshot must carry
 */
#define MODE_hello 1
#define MODE_echo 2
#define MODE_reset 3
#define MODE_crash 4
#define MODE_spin 5
#define MODE_cmos 6
#define MODE_count 7
#define CAT(a, b) a##b
#define XMODE(m) CAT(MODE_, m)
#define THIS XMODE(MODE)

	.code16
	.section .text
	.globl _start
_start:
	.org 0x1f1
	.byte 1			/* setup_sects: one sector after the boot sector */
	.word 0			/* root_flags */
	.long (pm_end - pm_start) / 16 /* syssize */
	.word 0, 0, 0		/* ram_size, vid_mode, root_dev */
	.word 0xaa55		/* boot_flag */
	.byte 0xeb, hdr_end - _start - 0x202 /* jump over the header */
	.ascii "HdrS"
	.word 0x020f		/* protocol version */
	.long 0			/* realmode_swtch */
	.word 0			/* start_sys_seg */
	.word 0			/* kernel_version */
	.byte 0			/* type_of_loader */
	.byte 1			/* loadflags: LOADED_HIGH */
	.word 0			/* setup_move_size */
	.long 0x100000		/* code32_start */
	.long 0, 0		/* ramdisk_image, ramdisk_size */
	.long 0			/* bootsect_kludge */
	.word 0			/* heap_end_ptr */
	.byte 0, 0		/* ext_loader_ver, ext_loader_type */
	.long 0			/* cmd_line_ptr */
	.long 0x7fffffff	/* initrd_addr_max */
	.long 0x200000		/* kernel_alignment */
	.byte 0			/* relocatable_kernel */
	.byte 0			/* min_alignment */
	.word 1			/* xloadflags: XLF_KERNEL_64 */
	.long 2047		/* cmdline_size */
	.long 0			/* hardware_subarch */
	.quad 0			/* hardware_subarch_data */
	.long 0, 0		/* payload_offset, payload_length */
	.quad 0			/* setup_data */
	.quad 0x100000		/* pref_address */
	.long 0x10000		/* init_size */
	.long 0			/* handover_offset */
	.long 0			/* kernel_info_offset */
hdr_end:
	.org 0x400
pm_start:
	.org 0x600		/* 64-bit entry: load address + 0x200 */
	.code64
entry:
#if THIS == MODE_echo
	lea echo_banner(%rip), %rsi
	mov $0x3f8, %dx
banner:
	lodsb
	test %al, %al
	jz echo_loop
	out %al, %dx
	jmp banner
echo_loop:
	mov $0x3fd, %dx
	in %dx, %al
	test $1, %al
	jz echo_loop
	mov $0x3f8, %dx
	in %dx, %al
	cmp $'q', %al
	je poweroff
	out %al, %dx
	jmp echo_loop
#elif THIS == MODE_count
	lea count_banner(%rip), %rsi
	mov $0x3f8, %dx
cbanner:
	lodsb
	test %al, %al
	jz count_loop
	out %al, %dx
	jmp cbanner
count_loop:
	mov $0x3fd, %dx
	in %dx, %al
	test $1, %al
	jz count_loop
	mov $0x3f8, %dx
	in %dx, %al
	cmp $'q', %al
	je poweroff
	incl counter(%rip)
	mov counter(%rip), %ebx
	mov $4, %ecx
hex_digit:
	rol $4, %bx		/* the top nibble to the bottom */
	mov %bl, %al
	and $0xf, %al
	add $'0', %al
	cmp $'9', %al
	jbe 1f
	add $7, %al		/* 'A'..'F' */
1:	out %al, %dx
	loop hex_digit
	mov $'\n', %al
	out %al, %dx
	jmp count_loop
#elif THIS == MODE_spin
spin:
	jmp spin
#else
	lea message(%rip), %rsi
	mov $0x3f8, %dx
print:
	lodsb
	test %al, %al
	jz printed
	out %al, %dx
	jmp print
printed:
#if THIS == MODE_reset
	mov $0xfe, %al
	out %al, $0x64
	hlt
#elif THIS == MODE_crash
	ud2
#elif THIS == MODE_cmos
	mov $4, %bl		/* hours, minutes, seconds */
	call cmos_byte
	mov $2, %bl
	call cmos_byte
	mov $0, %bl
	call cmos_byte
	mov $'\n', %al
	out %al, %dx
	jmp poweroff
cmos_byte:
	mov %bl, %al
	out %al, $0x70
	in $0x71, %al
	mov %al, %cl
	shr $4, %al
	add $'0', %al
	out %al, %dx
	mov %cl, %al
	and $0xf, %al
	add $'0', %al
	out %al, %dx
	ret
#endif
#endif
poweroff:
	/* PM1a_CNT: SLP_TYP = 5 (our \_S5), SLP_EN. */
	mov $0x604, %dx
	mov $0x3400, %ax
	out %ax, %dx
halt:
	hlt
	jmp halt
message:
	.asciz "hello from tiny guest\n"
count_banner:
	.asciz "tiny count up\n"
	.balign 4
counter:
	.long 0
echo_banner:
	.asciz "tiny echo up\n"
	.balign 16
pm_end:
