#!/bin/sh
# gen-vmlinux.sh - regenerate vmlinux/x86/vmlinux.h from the running kernel's BTF.
# The header is committed so a build needs no BTF; rerun this after a kernel
# upgrade that the BPF programs need types from.
set -eu
cd "$(dirname "$0")/.."
bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/x86/vmlinux.h.new
mv vmlinux/x86/vmlinux.h.new vmlinux/x86/vmlinux.h
echo "vmlinux/x86/vmlinux.h: $(wc -l < vmlinux/x86/vmlinux.h) lines from $(uname -r)"
