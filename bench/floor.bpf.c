// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * floor.bpf.c - the cheapest cgroup_skb/ingress program there is: pass every
 * packet. The benchmark attaches it to a cgroup of its own and measures its
 * run_time_ns / run_cnt on the same traffic as bpfwrap's programs; that is
 * the floor every program pays on this machine (the hook and the run-time
 * accounting itself), so bpfwrap's own work is the difference.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup_skb/ingress")
int bench_floor(struct __sk_buff *skb)
{
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
