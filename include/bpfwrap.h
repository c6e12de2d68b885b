/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * bpfwrap.h - the ABI shared by the BPF programs (bpf/) and user space (user/).
 *
 * This is the only place where map keys, map values, verdicts and event
 * records are defined. Every field is fixed-width; byte order is stated per
 * field. Addresses and ports are kept in network byte order exactly as they
 * sit in the packet, so the kernel never converts them.
 *
 * Policy maps come in two generations (slot 0 and slot 1) behind
 * ARRAY_OF_MAPS outer maps; the `active` array names the slot in force. A
 * program reads the slot once per packet and uses only that slot's maps, so
 * no packet ever sees half of two policies. User space fills the idle slot,
 * then flips `active`.
 */
#ifndef BPFWRAP_H
#define BPFWRAP_H

#ifndef __bpf__
#include <stdint.h>
typedef uint8_t __u8;
typedef uint16_t __u16;
typedef uint32_t __u32;
typedef uint64_t __u64;
#endif

/* Longest daemon name the kernel keys on (process comm is 16; cgroup-given names
 * are cut to this). */
#define BPFWRAP_DAEMON_NAME_MAX 64

/* Daemon id 0 is the table for every daemon the policy does not name. */
#define BPFWRAP_DAEMON_OTHER 0

enum bpfwrap_verdict {
	BPFWRAP_ALLOW = 1,
	BPFWRAP_DENY = 2,
	BPFWRAP_ASK = 3, /* needs a host name, a user, or a pattern the tables cannot express */
};

/* policy_entry.flags: what the matched rule's options ask for. */
enum bpfwrap_rule_flags {
	BPFWRAP_F_SPAWN = 1 << 0,	/* rule has spawn/twist/banners: tell the agent */
	BPFWRAP_F_KEEPALIVE = 1 << 1,	/* keepalive option */
	BPFWRAP_F_LINGER = 1 << 2,	/* linger option (seconds in policy_entry.linger) */
	BPFWRAP_F_LOG_ACCEPT = 1 << 3,	/* log accepted connections of this rule */
	BPFWRAP_F_DEFAULT = 1 << 4,	/* no rule matched: libwrap's default allow */
};

/* LPM key for IPv4 clients: prefixlen counts the 32 bits of daemon_id plus
 * the significant bits of addr. */
struct policy_key_v4 {
	__u32 prefixlen;	/* host order (LPM trie convention) */
	__u32 daemon_id;	/* big-endian, so it is the most significant part of the key */
	__u32 addr;		/* network order */
};

struct policy_key_v6 {
	__u32 prefixlen;	/* host order */
	__u32 daemon_id;	/* big-endian */
	__u8 addr[16];		/* network order */
};

/* What an entry decides for every client address under its prefix. */
struct policy_entry {
	__u8 verdict;		/* enum bpfwrap_verdict */
	__u8 verdict_if_unknown;	/* for ASK: verdict when name/user stay unknown (ALLOW|DENY) */
	__u16 flags;		/* enum bpfwrap_rule_flags, host order */
	__u32 rule_id;		/* host order; index into rule counters, 0 = default */
	__u32 linger;		/* host order, seconds, with BPFWRAP_F_LINGER */
};

/* Key of the daemon-name table: zero-padded name as the kernel knows it. */
struct daemon_key {
	char name[BPFWRAP_DAEMON_NAME_MAX];
};

#endif /* BPFWRAP_H */
