/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Incremental Internet checksum updates (RFC 1624, eqn. 3:
 * HC' = ~(~HC + ~m + m')). Words are used as loaded from the packet, so
 * the arithmetic needs no byte swapping. */
#ifndef XLB_CSUM_H
#define XLB_CSUM_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __always_inline void csum_replace2(__u16 *sum, __u16 from, __u16 to)
{
	__u32 c = (__u16)~*sum;
	c += (__u16)~from;
	c += to;
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	*sum = (__u16)~c;
}

static __always_inline void csum_replace4(__u16 *sum, __u32 from, __u32 to)
{
	csum_replace2(sum, (__u16)from, (__u16)to);
	csum_replace2(sum, (__u16)(from >> 16), (__u16)(to >> 16));
}

/* RFC 1624 eqn. 3 for a 4-byte field from -> to, and (csum_swap42) a
 * 2-byte one pfrom -> pto with it, in one sum: the checksum is loaded and
 * stored once, where replacing word by word through memory made each
 * step wait on the last one's store. Ones'-complement addition is
 * associative, so the result is the one csum_replace2 word by word
 * gives. */
static __always_inline __u16 csum_swap4(__u16 sum, __u32 from, __u32 to)
{
	__u64 c = (__u16)~sum;
	c += (__u16)~from;
	c += (__u16)~(from >> 16);
	c += (__u16)to;
	c += (__u16)(to >> 16);
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

static __always_inline __u16 csum_swap42(__u16 sum, __u32 from, __u32 to, __u16 pfrom, __u16 pto)
{
	__u64 c = (__u16)~sum;
	c += (__u16)~from;
	c += (__u16)~(from >> 16);
	c += (__u16)to;
	c += (__u16)(to >> 16);
	c += (__u16)~pfrom;
	c += pto;
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

/* A checksum with a folded ones'-complement sum of changes (~m + m' for
 * each changed word, RFC 1624 eqn. 3) added. */
static __always_inline __u16 csum_add_delta(__u16 sum, __u16 delta)
{
	__u32 c = (__u16)~sum + (__u32)delta;
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

/* A ones'-complement sum below 2^32 (a few dozen 16-bit words) folded to 16 bits
 * (not complemented: a sum of changes, csum_add_delta's delta). */
static __always_inline __u16 csum_fold16(__u64 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)c;
}

/* The complement of a 32-bit ones'-complement sum folded to 16 bits. */
static __always_inline __u16 csum_fold32(__u32 c)
{
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return (__u16)~c;
}

/* A checksum over 16 bytes that change from from to to (an IPv6 address
 * in a pseudo-header): one bpf_csum_diff, where eight csum_replace2 would
 * spill their temporaries onto a frame near its limit. */
static __always_inline int csum_replace16(__u16 *sum, __be32 *from, __be32 *to)
{
	__s64 d = bpf_csum_diff(from, 16, to, 16, (__u16)~*sum);
	if (d < 0)
		return -1;
	*sum = csum_fold32((__u32)d);
	return 0;
}

#endif /* XLB_CSUM_H */
