/*
 * test_guard.c - bpfwrap's extensions on real sockets: sensor traps and
 * bans (only after a completed handshake: forged segments sent from a raw
 * socket ban nobody; UDP traps only with `unproven`; expiry, unban, a full
 * ban table, a spoofed flood, surviving an agent exit), per_source /
 * instances / cps limits (also for handshakes a raw-socket client holds
 * and completes late, IPv6 per /64, across restarts with and without the
 * extensions), port owners forgotten when their socket goes, `status`
 * after a refused reload, reject mode for TCP and UDP, and revoke after a
 * reload and after a ban. Each case has its own network namespace and
 * child cgroup (itest.h); `bpfwrap run` runs inside the namespace, so its
 * sk_lookup program is attached to that namespace only. Before any run the
 * test checks that the namespace is not the root one. `test_guard PATTERN`
 * runs the matching cases only.
 *
 * The limits need connections that stay open: the "holdd" server here
 * accepts and keeps each connection until the client closes it.
 *
 * Needs root. A case fails when its world cannot be made, and skips (with
 * "# skip: why") only for a missing kernel feature (see itest.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "integration/itest.h"

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/ip.h>

#include "bpfwrap_guard.h"

#define ALLOW_ALL "ALL: ALL\n"
#define HOLD_PORT 8080
#define UDP_PORT 8053
#define HOLD_MAX 64
#define REFUSE_FAST_MS 100	/* a reject must come this fast (a drop takes >= 1 s) */
#define BAN_WAIT_MS 3000	/* a proven trap hit is logged (and in force) within this */

/* TCP flags of forged segments */
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10

/* What a holdd child serves. */
struct holdd {
	const struct itest_env *env;
	const char *comm;
	uint16_t port;
	const char *addr;	/* listening address (IPv6 if it has a ':'); NULL: 127.0.0.1 */
};

/* holdd_body - join the cgroup, listen, keep every connection until its peer closes */
static void holdd_body(int report, const void *arg)
{
	const struct holdd *h = arg;
	struct pollfd p[HOLD_MAX + 1];
	struct sockaddr_storage ss;
	socklen_t len;
	int n = 1, one = 1, fd, family;

	if (itest_cgroup_join(h->env->cgroup)) {
		dprintf(report, "error cgroup %s\n", strerror(errno));
		_exit(1);
	}
	prctl(PR_SET_NAME, h->comm);
	family = h->addr && strchr(h->addr, ':') ? AF_INET6 : AF_INET;
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || itest_sockaddr(family, h->addr ? h->addr : "127.0.0.1", h->port, &ss, &len))
		_exit(1);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 128)) {
		dprintf(report, "error bind %s\n", strerror(errno));
		_exit(1);
	}
	fcntl(report, F_SETFL, O_NONBLOCK);
	dprintf(report, "ready\n");
	p[0] = (struct pollfd){ .fd = fd, .events = POLLIN };
	for (;;) {
		if (poll(p, (nfds_t)n, 1000) <= 0)
			continue;
		if ((p[0].revents & POLLIN) && n <= HOLD_MAX) {
			int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

			if (c >= 0)
				p[n++] = (struct pollfd){ .fd = c, .events = POLLIN };
		}
		for (int i = 1; i < n; i++) {
			char buf[64];

			if (!p[i].revents)
				continue;
			if (read(p[i].fd, buf, sizeof(buf)) > 0)
				continue;
			close(p[i].fd);	/* the peer closed (or reset): so do we */
			p[i--] = p[--n];
		}
	}
}

/* own_netns_check - the test runs in its own namespace, not the root one (SAFETY) */
static void own_netns_check(struct itest_env *env)
{
	static const char *const refs[] = { "/proc/1/ns/net", "/proc/2/ns/net" };
	struct stat self, mine, ref;
	char path[PATH_MAX];
	bool have_ref = false;

	snprintf(path, sizeof(path), "/run/netns/%s", env->netns);
	if (stat("/proc/self/ns/net", &self) || stat(path, &mine))
		fail_msg("cannot stat the namespaces: %s", strerror(errno));
	if (self.st_ino != mine.st_ino)
		fail_msg("netns inode: got %lu, want the test's %lu", (unsigned long)self.st_ino,
			 (unsigned long)mine.st_ino);
	if (self.st_ino == 0xEFFFFFF9ul)
		fail_msg("the test process is in the root network namespace");
	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
		if (stat(refs[i], &ref))
			continue;
		have_ref = true;
		if (ref.st_ino == self.st_ino)
			fail_msg("netns inode %lu: got the same as %s, want a different one",
				 (unsigned long)self.st_ino, refs[i]);
	}
	if (!have_ref)
		fail_msg("got no readable root namespace reference (/proc/1 or /proc/2), want one to "
			 "prove the test is not in the root network namespace");
}

/* start_guarded - write the policy and extensions, start `bpfwrap run --extensions` + extra */
static void start_guarded(struct itest_env *env, const char *allow, const char *deny,
			  const char *ext, const char *extra1, const char *extra2)
{
	static char ext_path[PATH_MAX];
	const char *extra[8];	/* 4 fixed, 2 extra, NULL */
	int n = 0;

	ITEST_NEED_BPFWRAP(env);
	own_netns_check(env);
	if (itest_policy(env, allow, deny))
		fail_msg("cannot write the policy files");
	snprintf(ext_path, sizeof(ext_path), "%s/bpfwrap.conf", env->dir);
	if (itest_write_file(ext_path, ext ? ext : ""))
		fail_msg("cannot write %s", ext_path);
	extra[n++] = "--extensions";
	extra[n++] = ext_path;
	extra[n++] = "--log";
	extra[n++] = "stderr";
	if (extra1)
		extra[n++] = extra1;
	if (extra2)
		extra[n++] = extra2;
	extra[n] = NULL;
	(void)n;
	if (itest_bpfwrap_start_ready(env, &env->bw[0], NULL, extra))
		fail_msg("bpfwrap run: got no \"ready\" line, want one (output above)");
}

/* start_plain - `bpfwrap run` without the extensions (the policy files as written) */
static void start_plain(struct itest_env *env)
{
	const char *extra[] = { "--log", "stderr", NULL };

	if (itest_bpfwrap_start_ready(env, &env->bw[0], NULL, extra))
		fail_msg("bpfwrap run without --extensions: got no \"ready\" line, want one");
}

/* start_holdd - a holding server on 127.0.0.1:port in the test cgroup */
static void start_holdd(struct itest_env *env, const char *comm, uint16_t port)
{
	static struct holdd h;

	h = (struct holdd){ env, comm, port, NULL };
	if (itest_child_start(env, holdd_body, &h, "holdd"))
		fail_msg("holdd on 127.0.0.1:%u: got no \"ready\", want it running", port);
}

/* start_holdd_at - a holding server on addr:port in the test cgroup */
static void start_holdd_at(struct itest_env *env, const char *comm, const char *addr,
			   uint16_t port)
{
	static struct holdd h;

	h = (struct holdd){ env, comm, port, addr };
	if (itest_child_start(env, holdd_body, &h, "holdd"))
		fail_msg("holdd on %s port %u: got no \"ready\", want it running", addr, port);
}

/* start_udp - an itest UDP server (reports "recv ADDR DATA") */
static struct itest_server *start_udp(struct itest_env *env, const char *comm)
{
	struct itest_server_opts o = {
		.type = SOCK_DGRAM, .family = AF_INET, .addr = "127.0.0.1", .port = UDP_PORT,
		.comm = comm,
	};
	struct itest_server *srv = NULL;

	if (itest_server_start(env, &o, &srv))
		fail_msg("udp server: got no \"ready\", want it running");
	return srv;
}

/* hold_to - connect from src to dst:port (family) and keep the socket: fd, or -ETIMEDOUT / -errno */
static int hold_to(int family, const char *src, const char *dst, uint16_t port, int timeout_ms)
{
	struct sockaddr_storage s, d;
	socklen_t slen, dlen, elen = sizeof(int);
	struct pollfd p;
	int fd, soerr = 0;

	if (itest_sockaddr(family, dst, port, &d, &dlen) || itest_sockaddr(family, src, 0, &s, &slen))
		return -EINVAL;
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&s, slen) ||
	    (connect(fd, (struct sockaddr *)&d, dlen) && errno != EINPROGRESS)) {
		soerr = errno;
		close(fd);
		return -soerr;
	}
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&p, 1, timeout_ms) <= 0) {
		close(fd);
		return -ETIMEDOUT;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) || soerr) {
		close(fd);
		return -(soerr ? soerr : EIO);
	}
	return fd;
}

/* hold - connect from src to 127.0.0.1:port and keep the socket: fd, or -ETIMEDOUT / -errno */
static int hold(const char *src, uint16_t port, int timeout_ms)
{
	return hold_to(AF_INET, src, "127.0.0.1", port, timeout_ms);
}

/* hold_close - close a held socket with RST (no TIME_WAIT) */
static void hold_close(int fd)
{
	struct linger lg = { 1, 0 };

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* closed_by_peer - wait up to timeout_ms until the peer resets or closes fd; the errno seen
 * (ECONNRESET, or EPIPE for an orderly close), 0 if it stays open */
static int closed_by_peer(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;
	ssize_t n;

	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	n = recv(fd, &c, 1, MSG_DONTWAIT);
	if (n == 0)
		return EPIPE;
	return n < 0 && errno != EAGAIN ? errno : 0;
}

/* run_cmd - `bpfwrap SUB --pin-dir DIR [ARG]`; its exit status, output into out */
static int run_cmd(struct itest_env *env, const char *sub, const char *arg, char *out, size_t size)
{
	char *argv[] = { env->bpfwrap_bin, (char *)sub, "--pin-dir", env->pin_dir, (char *)arg, NULL };

	return itest_run(argv, out, size, 10000);
}

/* answered - a connection attempt was answered at once: a trap completes the handshake
 * (then resets it), a closed port or a reject refuses */
static bool answered(int rc)
{
	return rc == 0 || rc == -ECONNRESET || rc == -ECONNREFUSED;
}

/* scan - connect from src to each port of [lo, hi]; how many answered at once */
static int scan(const char *src, uint16_t lo, uint16_t hi)
{
	int n = 0;

	for (unsigned port = lo; port <= hi; port++)
		n += answered(itest_tcp_connect(AF_INET, src, "127.0.0.1", (uint16_t)port, 300));
	return n;
}

/* trap_hit - a real client from src (family) touches a trap on dst:port: the handshake
 * completes (then a reset), and bpfwrap logs the ban */
static void trap_hit(struct itest_env *env, int family, const char *src, const char *dst,
		     uint16_t port)
{
	char want[128];
	int rc = itest_tcp_connect(family, src, dst, port, 1000);

	if (rc != 0 && rc != -ECONNRESET)
		fail_msg("trap %s:%u from %s: got %s, want the handshake to complete", dst, port, src,
			 itest_outcome(rc));
	snprintf(want, sizeof(want), "trap: %s banned", src);
	if (itest_bpfwrap_wait(&env->bw[0], want, BAN_WAIT_MS))
		fail_msg("log: got \"%s\", want \"%s\"", env->bw[0].log, want);
}

/* csum_add - add len bytes to a ones' complement sum (RFC 1071) */
static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *b = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	return sum;
}

/* csum_fold - the final 16-bit checksum, network order */
static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* A TCP header without options (the kernel's struct tcphdr has bitfields). */
struct tcp_seg {
	uint16_t sport, dport;	/* network order */
	uint32_t seq, ack;	/* network order */
	uint8_t off;		/* data offset << 4 */
	uint8_t flags;
	uint16_t win, sum, urg;	/* network order */
} __attribute__((packed));

static int raw_tcp4_on(int fd, uint32_t src_be, uint16_t sport, uint32_t dst_be, uint16_t dport,
		       uint8_t flags, uint32_t seq, uint32_t ack);

/* raw_tcp4 - send one forged IPv4 TCP segment src:sport -> dst:dport with these flags
 * and numbers (host order); 0 or -errno */
static int raw_tcp4(const char *src, uint16_t sport, const char *dst, uint16_t dport,
		    uint8_t flags, uint32_t seq, uint32_t ack)
{
	struct in_addr s, d;

	if (inet_pton(AF_INET, src, &s) != 1 || inet_pton(AF_INET, dst, &d) != 1)
		return -EINVAL;
	return raw_tcp4_on(-1, s.s_addr, sport, d.s_addr, dport, flags, seq, ack);
}

/* raw_tcp4_on - raw_tcp4 with addresses in network order, on raw socket fd (-1: a
 * socket of its own) */
static int raw_tcp4_on(int fd, uint32_t src_be, uint16_t sport, uint32_t dst_be, uint16_t dport,
		       uint8_t flags, uint32_t seq, uint32_t ack)
{
	struct {
		struct iphdr ip;
		struct tcp_seg tcp;
	} __attribute__((packed)) pkt;
	struct {
		uint32_t saddr, daddr;
		uint8_t zero, proto;
		uint16_t len;
	} __attribute__((packed)) pseudo;
	struct sockaddr_in to = { .sin_family = AF_INET };
	bool own = fd < 0;
	int err = 0;

	memset(&pkt, 0, sizeof(pkt));
	pkt.ip.saddr = src_be;
	pkt.ip.daddr = dst_be;
	pkt.ip.version = 4;
	pkt.ip.ihl = 5;
	pkt.ip.ttl = 64;
	pkt.ip.protocol = IPPROTO_TCP;
	pkt.ip.tot_len = htons(sizeof(pkt));
	pkt.tcp.sport = htons(sport);
	pkt.tcp.dport = htons(dport);
	pkt.tcp.seq = htonl(seq);
	pkt.tcp.ack = htonl(ack);
	pkt.tcp.off = (sizeof(pkt.tcp) / 4) << 4;
	pkt.tcp.flags = flags;
	pkt.tcp.win = htons(65535);
	pseudo = (typeof(pseudo)){ pkt.ip.saddr, pkt.ip.daddr, 0, IPPROTO_TCP, htons(sizeof(pkt.tcp)) };
	pkt.tcp.sum = csum_fold(csum_add(csum_add(0, &pseudo, sizeof(pseudo)), &pkt.tcp,
					 sizeof(pkt.tcp)));
	pkt.ip.check = csum_fold(csum_add(0, &pkt.ip, sizeof(pkt.ip)));
	to.sin_addr.s_addr = pkt.ip.daddr;
	if (own)
		fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (fd < 0)
		return -errno;
	if (sendto(fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)sizeof(pkt))
		err = -errno;
	if (own)
		close(fd);
	return err;
}

/*
 * A client that holds its handshakes (a raw socket in the test's namespace). Its
 * address SLOW_CLIENT is on no interface: the server's SYN-ACKs to it leave by the
 * veth SLOW_SERVER_DEV (a static neighbour entry points at the peer SLOW_CLIENT_DEV),
 * which has no address and does not forward, so nothing answers them; a packet
 * socket on SLOW_CLIENT_DEV reads them. The client then completes each handshake
 * (the final ACK) whenever it likes.
 */
#define SLOW_SERVER "10.77.0.1"
#define SLOW_CLIENT "10.77.0.5"
#define SLOW_SERVER_DEV "slowsrv"
#define SLOW_CLIENT_DEV "slowcli"
#define SLOW_CLIENT_MAC "02:00:00:00:77:05"
#define SLOW_MAX 16

struct slow_client {
	int pfd;			/* AF_PACKET on SLOW_CLIENT_DEV */
	int n;
	uint16_t sport[SLOW_MAX];	/* host order */
	uint32_t seq[SLOW_MAX];		/* our ISN */
	uint32_t isn[SLOW_MAX];		/* the server's, from its SYN-ACK; 0 not seen */
};

/* slow_setup - the veth pair, the server address, the neighbour; the packet socket */
static void slow_setup(struct itest_env *env, struct slow_client *c)
{
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP) };

	memset(c, 0, sizeof(*c));
	if (itest_ip("-n", env->netns, "link", "add", SLOW_CLIENT_DEV, "address", SLOW_CLIENT_MAC,
		     "type", "veth", "peer", "name", SLOW_SERVER_DEV, NULL) ||
	    itest_ip("-n", env->netns, "addr", "add", SLOW_SERVER "/24", "dev", SLOW_SERVER_DEV,
		     NULL) ||
	    itest_ip("-n", env->netns, "link", "set", SLOW_CLIENT_DEV, "up", NULL) ||
	    itest_ip("-n", env->netns, "link", "set", SLOW_SERVER_DEV, "up", NULL) ||
	    itest_ip("-n", env->netns, "neigh", "replace", SLOW_CLIENT, "lladdr", SLOW_CLIENT_MAC,
		     "dev", SLOW_SERVER_DEV, "nud", "permanent", NULL))
		ITEST_SKIP("cannot make the veth pair for the slow client");
	ll.sll_ifindex = (int)if_nametoindex(SLOW_CLIENT_DEV);
	c->pfd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_IP));
	if (!ll.sll_ifindex || c->pfd < 0 || bind(c->pfd, (struct sockaddr *)&ll, sizeof(ll)))
		fail_msg("packet socket on %s: %s", SLOW_CLIENT_DEV, strerror(errno));
}

/* slow_syn - send one SYN from SLOW_CLIENT:sport to SLOW_SERVER:port */
static void slow_syn(struct slow_client *c, uint16_t sport, uint16_t port)
{
	assert_true(c->n < SLOW_MAX);
	c->sport[c->n] = sport;
	c->seq[c->n] = 0x10000000u * (uint32_t)(c->n + 1);
	if (raw_tcp4(SLOW_CLIENT, sport, SLOW_SERVER, port, TH_SYN, c->seq[c->n], 0))
		fail_msg("raw SYN: %s", strerror(errno));
	c->n++;
}

/* slow_read_synacks - read SYN-ACKs until every SYN has one or timeout_ms pass; how many */
static int slow_read_synacks(struct slow_client *c, int timeout_ms)
{
	long long end = itest_now_ms() + timeout_ms;
	int have = 0;

	while (have < c->n && itest_now_ms() < end) {
		uint8_t buf[256];
		struct pollfd p = { .fd = c->pfd, .events = POLLIN };
		const struct tcp_seg *t;
		ssize_t len;
		size_t ihl;

		if (poll(&p, 1, 50) <= 0)
			continue;
		len = recv(c->pfd, buf, sizeof(buf), 0);
		if (len < (ssize_t)sizeof(struct iphdr) || buf[9] != IPPROTO_TCP)
			continue;
		ihl = (size_t)(buf[0] & 0xf) * 4;
		if ((size_t)len < ihl + sizeof(*t))
			continue;
		t = (const struct tcp_seg *)(buf + ihl);
		if ((t->flags & (TH_SYN | TH_ACK)) != (TH_SYN | TH_ACK))
			continue;
		for (int i = 0; i < c->n; i++)
			if (ntohs(t->dport) == c->sport[i] && !c->isn[i] &&
			    ntohl(t->ack) == c->seq[i] + 1) {
				c->isn[i] = ntohl(t->seq);
				have++;
			}
	}
	return have;
}

/* slow_ack - complete handshake i (the final ACK) */
static void slow_ack(struct slow_client *c, int i, uint16_t port)
{
	if (raw_tcp4(SLOW_CLIENT, c->sport[i], SLOW_SERVER, port, TH_ACK, c->seq[i] + 1,
		     c->isn[i] + 1))
		fail_msg("raw ACK: %s", strerror(errno));
}

/* established_to - TCP sockets in ESTABLISHED with local address addr:port (this
 * namespace's /proc/net/tcp): the server's side of the completed handshakes */
static int established_to(const char *addr, uint16_t port)
{
	char want[32], line[512];
	struct in_addr a;
	FILE *f;
	int n = 0;

	if (inet_pton(AF_INET, addr, &a) != 1)
		return -1;
	snprintf(want, sizeof(want), "%08X:%04X", a.s_addr, port);
	f = fopen("/proc/net/tcp", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char local[64], remote[64], st[8];

		if (sscanf(line, " %*s %63s %63s %7s", local, remote, st) == 3 && !strcmp(local, want) &&
		    !strcmp(st, "01"))
			n++;
	}
	fclose(f);
	return n;
}

/* forge_all - the segments that banned whoever they named before bpfwrap waited for the
 * handshake: SYN, bare ACK, RST, FIN and SYN-ACK from a spoofed source */
static void forge_all(const char *src, const char *dst, uint16_t port)
{
	static const uint8_t flags[] = { TH_SYN, TH_ACK, TH_RST, TH_FIN | TH_ACK, TH_SYN | TH_ACK };

	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (raw_tcp4(src, (uint16_t)(41000 + i), dst, port, flags[i], 1000u * (uint32_t)i + 1,
			     flags[i] & TH_ACK ? 777 : 0))
			fail_msg("raw socket: cannot send a forged segment: %s", strerror(errno));
}

/* expect_connect - one connection attempt with the wanted outcome, else fail with both */
static void expect_connect(struct itest_env *env, const char *what, const char *src, uint16_t port,
			   int want)
{
	int rc = itest_tcp_connect(AF_INET, src, "127.0.0.1", port,
				   want == 0 ? ITEST_ALLOW_TIMEOUT_MS : ITEST_DENY_TIMEOUT_MS);

	if (rc != want) {
		fprintf(stderr, "itest: bpfwrap said:\n%s\n", env->bw[0].log);
		fail_msg("%s: tcp %s -> 127.0.0.1:%u: got %s, want %s", what, src, port,
			 itest_outcome(rc), itest_outcome(want));
	}
}

/* test_trap_scan_bans_then_expires - a 20-port scan bans the scanner from a real service
 * for the trap's 2 s; other clients are untouched; the ban then expires */
static void test_trap_scan_bans_then_expires(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char out[4096];
	long long banned_at;
	int refused;

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "2000-2019/tcp : ALL EXCEPT 127.0.0.9 : trap 2s\n", NULL,
		      NULL);
	expect_connect(env, "before the scan", "127.0.0.6", HOLD_PORT, 0);
	refused = scan("127.0.0.6", 2000, 2019);
	banned_at = itest_now_ms();
	if (refused != 20)
		fail_msg("scan of 20 trap ports: got %d answered at once, want 20 (a handshake, then "
			 "refused while banned)", refused);
	if (itest_bpfwrap_wait(&env->bw[0], "trap: 127.0.0.6 banned for 2 s", 2000))
		fail_msg("log: got \"%s\", want a line \"trap: 127.0.0.6 banned for 2 s\"",
			 env->bw[0].log);
	expect_connect(env, "scanner after the scan", "127.0.0.6", HOLD_PORT, -ETIMEDOUT);
	expect_connect(env, "another client", "127.0.0.5", HOLD_PORT, 0);
	/* an excepted client can touch the trap without a ban */
	scan("127.0.0.9", 2000, 2000);
	expect_connect(env, "excepted client after touching the trap", "127.0.0.9", HOLD_PORT, 0);
	if (run_cmd(env, "bans", NULL, out, sizeof(out)) != 0 || !strstr(out, "127.0.0.6") ||
	    !strstr(out, "1 ban(s)"))
		fail_msg("bpfwrap bans: got \"%s\", want 127.0.0.6 and \"1 ban(s)\"", out);
	while (itest_now_ms() < banned_at + 2300)
		itest_sleep_ms(50);
	expect_connect(env, "scanner after the ban expired", "127.0.0.6", HOLD_PORT, 0);
}

/* test_unban_lifts_ban - a ban until removed holds, and survives the agent exiting and a
 * restart with another --max-bans (the table is replaced, the ban copied), until
 * `bpfwrap unban` removes it */
static void test_unban_lifts_ban(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char out[4096];
	int rc;

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "2222/tcp : ALL : trap forever\n", NULL, NULL);
	trap_hit(env, AF_INET, "127.0.0.6", "127.0.0.1", 2222);
	expect_connect(env, "banned client", "127.0.0.6", HOLD_PORT, -ETIMEDOUT);
	/* bans are pinned: the agent exiting changes nothing */
	rc = itest_bpfwrap_stop(&env->bw[0], SIGTERM);
	if (rc != 0)
		fail_msg("bpfwrap run exit status: got %d, want 0", rc);
	expect_connect(env, "banned client, agent gone", "127.0.0.6", HOLD_PORT, -ETIMEDOUT);
	if (run_cmd(env, "bans", NULL, out, sizeof(out)) != 0 || !strstr(out, "127.0.0.6") ||
	    !strstr(out, "never") || !strstr(out, "trap_hits=1"))
		fail_msg("bpfwrap bans: got \"%s\", want 127.0.0.6 expiring never, trap_hits=1", out);
	/* a restarted agent adopts the pinned bans, also into tables of another size */
	start_guarded(env, ALLOW_ALL, "", "2222/tcp : ALL : trap forever\n", "--max-bans", "8");
	if (!strstr(env->bw[0].log, "bans: 1 kept in the new ban tables (8 entries each)"))
		fail_msg("restart with --max-bans 8: got \"%s\", want \"bans: 1 kept in the new ban "
			 "tables (8 entries each)\"", env->bw[0].log);
	expect_connect(env, "banned client, agent restarted", "127.0.0.6", HOLD_PORT, -ETIMEDOUT);
	rc = run_cmd(env, "unban", "127.0.0.0/24", out, sizeof(out));
	if (rc != 0 || !strstr(out, "unbanned 1 address"))
		fail_msg("bpfwrap unban 127.0.0.0/24: got status %d \"%s\", want 0 \"unbanned 1\"", rc,
			 out);
	expect_connect(env, "after unban", "127.0.0.6", HOLD_PORT, 0);
	rc = run_cmd(env, "unban", "127.0.0.6", out, sizeof(out));
	if (rc != 1)
		fail_msg("unban without a ban: got status %d, want 1", rc);
}

/* test_detach_removes_guard - `bpfwrap detach` takes the guard away with the rest: the pin
 * directory is gone and a banned client connects again */
static void test_detach_removes_guard(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char out[4096];
	int rc;

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "2222/tcp : ALL : trap forever\n", "--reject", NULL);
	trap_hit(env, AF_INET, "127.0.0.6", "127.0.0.1", 2222);
	rc = itest_tcp_connect(AF_INET, "127.0.0.6", "127.0.0.1", HOLD_PORT, 1000);
	if (rc != -ECONNREFUSED)
		fail_msg("banned client under --reject: got %s, want connection refused",
			 itest_outcome(rc));
	rc = itest_bpfwrap_stop(&env->bw[0], SIGTERM);
	assert_int_equal(rc, 0);
	rc = run_cmd(env, "detach", NULL, out, sizeof(out));
	if (rc != 0 || access(env->pin_dir, F_OK) == 0)
		fail_msg("bpfwrap detach: got status %d, pin dir %s, want 0 and gone (\"%s\")", rc,
			 access(env->pin_dir, F_OK) ? "gone" : "still there", out);
	expect_connect(env, "banned client after detach", "127.0.0.6", HOLD_PORT, 0);
}

/* test_per_source_caps_exactly - per_source 3: three held connections, the fourth refused
 * while they are open, another client unaffected; closing one lets one more in */
static void test_per_source_caps_exactly(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	int fds[3], rc, other;

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "echod : ALL : per_source 3\n", NULL, NULL);
	for (int i = 0; i < 3; i++) {
		fds[i] = hold("127.0.0.5", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
		if (fds[i] < 0)
			fail_msg("connection %d of 3: got %s, want connected", i + 1,
				 itest_outcome(fds[i]));
	}
	rc = hold("127.0.0.5", HOLD_PORT, ITEST_DENY_TIMEOUT_MS);
	hold_close(rc);
	if (rc != -ETIMEDOUT)
		fail_msg("connection 4 with 3 open: got %s, want dropped", itest_outcome(rc));
	other = hold("127.0.0.7", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	if (other < 0)
		fail_msg("another client: got %s, want connected", itest_outcome(other));
	if (itest_bpfwrap_wait(&env->bw[0], "per_source 3 refused connect from 127.0.0.5", 2000))
		fail_msg("log: got \"%s\", want \"per_source 3 refused connect from 127.0.0.5\"",
			 env->bw[0].log);
	hold_close(fds[0]);
	itest_sleep_ms(200);	/* holdd sees the reset and closes its end */
	rc = hold("127.0.0.5", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	if (rc < 0)
		fail_msg("after closing one of 3: got %s, want connected", itest_outcome(rc));
	hold_close(rc);
	hold_close(fds[1]);
	hold_close(fds[2]);
	hold_close(other);
}

/* test_instances_caps_total - instances 2 across clients */
static void test_instances_caps_total(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	int a, b, c;

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "echod : ALL : instances 2\n", NULL, NULL);
	a = hold("127.0.0.2", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	b = hold("127.0.0.3", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	c = hold("127.0.0.4", HOLD_PORT, ITEST_DENY_TIMEOUT_MS);
	hold_close(c);
	if (a < 0 || b < 0 || c != -ETIMEDOUT)
		fail_msg("instances 2: got %s, %s, %s, want connected, connected, dropped",
			 itest_outcome(a < 0 ? a : 0), itest_outcome(b < 0 ? b : 0),
			 itest_outcome(c < 0 ? c : 0));
	hold_close(a);
	itest_sleep_ms(200);
	c = hold("127.0.0.4", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	if (c < 0)
		fail_msg("instances 2 after one closed: got %s, want connected", itest_outcome(c));
	hold_close(b);
	hold_close(c);
}

/* test_cps_rate_and_burst - cps 2/2: two at once pass, the third is refused (reject: at
 * once), after half a second one more passes */
static void test_cps_rate_and_burst(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	long long t0;
	int rc[3];

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "echod : ALL : cps 2/2 : reject\n", NULL, NULL);
	t0 = itest_now_ms();
	for (int i = 0; i < 3; i++)
		rc[i] = itest_tcp_connect(AF_INET, "127.0.0.5", "127.0.0.1", HOLD_PORT, 300);
	if (rc[0] || rc[1] || rc[2] != -ECONNREFUSED)
		fail_msg("cps 2/2, three at once: got %s, %s, %s, want connected, connected, "
			 "connection refused", itest_outcome(rc[0]), itest_outcome(rc[1]),
			 itest_outcome(rc[2]));
	while (itest_now_ms() < t0 + 600)
		itest_sleep_ms(20);
	expect_connect(env, "cps 2/2 after 600 ms", "127.0.0.5", HOLD_PORT, 0);
}

/* test_reject_tcp_udp - --reject: a denied TCP client gets connection refused at once, a
 * denied UDP client ICMP port unreachable; allowed clients work; a per-line `drop` keeps
 * the timeout */
static void test_reject_tcp_udp(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	struct itest_server *udp;
	struct sockaddr_storage s, d;
	socklen_t slen, dlen;
	long long t0, took;
	char c;
	int rc, fd;

	start_holdd(env, "echod", HOLD_PORT);
	udp = start_udp(env, "echod");
	start_guarded(env, "echod: 127.0.0.5\n", "ALL: ALL\n", "echod : 127.0.0.8 : drop\n",
		      "--reject", NULL);
	t0 = itest_now_ms();
	rc = itest_tcp_connect(AF_INET, "127.0.0.7", "127.0.0.1", HOLD_PORT, 1000);
	took = itest_now_ms() - t0;
	if (rc != -ECONNREFUSED || took > REFUSE_FAST_MS)
		fail_msg("denied tcp client: got %s after %lld ms, want connection refused within "
			 "%d ms", itest_outcome(rc), took, REFUSE_FAST_MS);
	expect_connect(env, "allowed tcp client", "127.0.0.5", HOLD_PORT, 0);
	expect_connect(env, "denied client, line says drop", "127.0.0.8", HOLD_PORT, -ETIMEDOUT);
	if (itest_bpfwrap_wait(&env->bw[0], "refused connect from 127.0.0.7", 2000))
		fail_msg("log: got \"%s\", want \"refused connect from 127.0.0.7\"", env->bw[0].log);

	/* UDP: a connected socket learns of the ICMP port unreachable */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(itest_sockaddr(AF_INET, "127.0.0.7", 0, &s, &slen), 0);
	assert_int_equal(itest_sockaddr(AF_INET, "127.0.0.1", UDP_PORT, &d, &dlen), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&s, slen), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&d, dlen), 0);
	assert_int_equal(send(fd, "denied", 6, 0), 6);
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		poll(&p, 1, 500);
		rc = recv(fd, &c, 1, MSG_DONTWAIT) < 0 ? -errno : 0;
	}
	close(fd);
	if (rc != -ECONNREFUSED)
		fail_msg("denied udp client: got %s, want connection refused (ICMP unreachable)",
			 itest_outcome(rc));
	assert_int_equal(itest_udp_send(AF_INET, "127.0.0.5", "127.0.0.1", UDP_PORT, "allowed"), 0);
	if (!itest_server_saw(udp, "recv 127.0.0.5 allowed", 2000))
		fail_msg("udp server: got \"%s\", want \"recv 127.0.0.5 allowed\"", udp->buf);
	if (strstr(udp->buf, "denied"))
		fail_msg("udp server: got \"%s\", want nothing from 127.0.0.7", udp->buf);
}

/* test_ipv6_reject_trap_unban - IPv6: reject mode, a trap port ban (refused at once under
 * --reject), `bans` and `unban` of an IPv6 prefix */
static void test_ipv6_reject_trap_unban(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	struct itest_server_opts o = {
		.type = SOCK_STREAM, .family = AF_INET6, .addr = "fd00::1", .port = 8081, .v6only = 1,
		.comm = "echod",
	};
	struct itest_server *srv;
	char out[4096];
	long long t0, took;
	int rc;

	if (itest_server_start(env, &o, &srv))
		fail_msg("server on [fd00::1]:8081: got no \"ready\", want it running");
	/* [v6]/128, not [v6]: the kernel decides those alone (no ASK) */
	start_guarded(env, "echod: [fd00::2]/128 [fd00::4]/128\n", "ALL: ALL\n",
		      "2000/tcp : ALL EXCEPT [fd00::2] : trap 60s\n", "--reject", NULL);
	t0 = itest_now_ms();
	rc = itest_tcp_connect(AF_INET6, "fd00::3", "fd00::1", 8081, 1000);
	took = itest_now_ms() - t0;
	if (rc != -ECONNREFUSED || took > REFUSE_FAST_MS)
		fail_msg("denied v6 client: got %s after %lld ms, want connection refused within %d ms",
			 itest_outcome(rc), took, REFUSE_FAST_MS);
	rc = itest_tcp_connect(AF_INET6, "fd00::4", "fd00::1", 8081, ITEST_ALLOW_TIMEOUT_MS);
	if (rc)
		fail_msg("allowed v6 client before the trap: got %s, want connected", itest_outcome(rc));
	trap_hit(env, AF_INET6, "fd00::4", "fd00::1", 2000);
	rc = itest_tcp_connect(AF_INET6, "fd00::4", "fd00::1", 8081, 1000);
	if (rc != -ECONNREFUSED)
		fail_msg("banned v6 client under --reject: got %s, want connection refused",
			 itest_outcome(rc));
	rc = itest_tcp_connect(AF_INET6, "fd00::2", "fd00::1", 2000, 300);
	rc = itest_tcp_connect(AF_INET6, "fd00::2", "fd00::1", 8081, ITEST_ALLOW_TIMEOUT_MS);
	if (rc)
		fail_msg("excepted v6 client after touching the trap: got %s, want connected",
			 itest_outcome(rc));
	if (run_cmd(env, "bans", NULL, out, sizeof(out)) != 0 || !strstr(out, "fd00::4") ||
	    !strstr(out, "1 ban(s)"))
		fail_msg("bpfwrap bans: got \"%s\", want fd00::4 and \"1 ban(s)\"", out);
	rc = run_cmd(env, "unban", "[fd00::]/64", out, sizeof(out));
	if (rc != 0 || !strstr(out, "unbanned 1 address"))
		fail_msg("unban [fd00::]/64: got status %d \"%s\", want 0 \"unbanned 1\"", rc, out);
	rc = itest_tcp_connect(AF_INET6, "fd00::4", "fd00::1", 8081, ITEST_ALLOW_TIMEOUT_MS);
	if (rc)
		fail_msg("v6 client after unban: got %s, want connected", itest_outcome(rc));
}

/* test_revoke_on_reload - --revoke: a reload that denies a connected client closes its
 * connection (and logs it); an allowed client's connection stays */
static void test_revoke_on_reload(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	int a, b, err;

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, "echod: 127.0.0.5 127.0.0.6\n", "ALL: ALL\n", "", "--revoke", NULL);
	a = hold("127.0.0.5", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	b = hold("127.0.0.6", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	if (a < 0 || b < 0)
		fail_msg("before the reload: got %s, %s, want both connected",
			 itest_outcome(a < 0 ? a : 0), itest_outcome(b < 0 ? b : 0));
	if (itest_write_file(env->allow, "echod: 127.0.0.6\n"))
		fail_msg("cannot rewrite hosts.allow");
	kill(env->bw[0].pid, SIGHUP);
	if (itest_bpfwrap_wait(&env->bw[0], "revoked: echod: closed 127.0.0.1:8080 <- 127.0.0.5",
			       3000))
		fail_msg("log: got \"%s\", want \"revoked: echod: closed 127.0.0.1:8080 <- "
			 "127.0.0.5\"", env->bw[0].log);
	err = closed_by_peer(a, 1000);
	if (err != ECONNRESET)
		fail_msg("denied client's connection: got %s, want reset", err ? strerror(err) : "open");
	err = closed_by_peer(b, 200);
	if (err)
		fail_msg("allowed client's connection: got %s, want still open", strerror(err));
	hold_close(a);
	hold_close(b);
}

/* test_revoke_on_ban - --revoke: a client that hits a trap loses its open connections */
static void test_revoke_on_ban(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	int a, b, err;

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "2000/tcp : ALL : trap 60s\n", "--revoke", NULL);
	a = hold("127.0.0.6", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	b = hold("127.0.0.5", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	if (a < 0 || b < 0)
		fail_msg("before the ban: got %s, %s, want both connected",
			 itest_outcome(a < 0 ? a : 0), itest_outcome(b < 0 ? b : 0));
	scan("127.0.0.6", 2000, 2000);
	err = closed_by_peer(a, 2000);
	if (err != ECONNRESET)
		fail_msg("banned client's connection: got %s, want reset", err ? strerror(err) : "open");
	if (itest_bpfwrap_wait(&env->bw[0], "(client banned)", 2000))
		fail_msg("log: got \"%s\", want a \"revoked ... (client banned)\" line", env->bw[0].log);
	err = closed_by_peer(b, 200);
	if (err)
		fail_msg("other client's connection: got %s, want still open", strerror(err));
	hold_close(a);
	hold_close(b);
}

/* test_extensions_errors_refused - on reload a broken extensions file is refused (naming
 * file:line:col) and the rules in force stay; a good one replaces them; at start-up a
 * broken file stops bpfwrap */
static void test_extensions_errors_refused(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char ext[PATH_MAX];
	int fds[2], rc;

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "echod : ALL : per_source 1\n", NULL, NULL);
	snprintf(ext, sizeof(ext), "%s/bpfwrap.conf", env->dir);
	if (itest_write_file(ext, "echod : ALL : per_source 0\n"))
		fail_msg("cannot rewrite the extensions file");
	kill(env->bw[0].pid, SIGHUP);
	if (itest_bpfwrap_wait(&env->bw[0], "bpfwrap.conf:1:15: error: bad per_source '0'", 3000))
		fail_msg("log: got \"%s\", want \"bpfwrap.conf:1:15: error: bad per_source '0'\"",
			 env->bw[0].log);
	fds[0] = hold("127.0.0.5", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	fds[1] = hold("127.0.0.5", HOLD_PORT, ITEST_DENY_TIMEOUT_MS);
	hold_close(fds[0]);
	hold_close(fds[1]);
	if (fds[0] < 0 || fds[1] != -ETIMEDOUT)
		fail_msg("per_source 1 kept in force: got %s, %s, want connected, dropped",
			 itest_outcome(fds[0] < 0 ? fds[0] : 0), itest_outcome(fds[1] < 0 ? fds[1] : 0));
	/* a good file replaces the rules in force */
	if (itest_write_file(ext, "echod : ALL : per_source 2\n"))
		fail_msg("cannot rewrite the extensions file");
	kill(env->bw[0].pid, SIGHUP);
	if (itest_bpfwrap_wait(&env->bw[0], "extensions: 1 line(s) in force", 3000))
		fail_msg("log: got \"%s\", want \"extensions: 1 line(s) in force\"", env->bw[0].log);
	fds[0] = hold("127.0.0.5", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	fds[1] = hold("127.0.0.5", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	rc = hold("127.0.0.5", HOLD_PORT, ITEST_DENY_TIMEOUT_MS);
	hold_close(fds[0]);
	hold_close(fds[1]);
	hold_close(rc);
	if (fds[0] < 0 || fds[1] < 0 || rc != -ETIMEDOUT)
		fail_msg("per_source 2 after the reload: got %s, %s, %s, want connected, connected, "
			 "dropped", itest_outcome(fds[0] < 0 ? fds[0] : 0),
			 itest_outcome(fds[1] < 0 ? fds[1] : 0), itest_outcome(rc < 0 ? rc : 0));
	rc = itest_bpfwrap_stop(&env->bw[0], SIGTERM);
	assert_int_equal(rc, 0);
	/* at start-up a broken file is fatal */
	if (itest_write_file(ext, "echod : ALL : per_source 0\n"))
		fail_msg("cannot rewrite the extensions file");
	{
		const char *extra[] = { "--extensions", ext, NULL };

		rc = itest_bpfwrap_start(env, &env->bw[0], NULL, extra);
		assert_int_equal(rc, 0);
		if (itest_bpfwrap_wait(&env->bw[0], "not loaded", 5000))
			fail_msg("start with a broken file: got \"%s\", want \"not loaded\"",
				 env->bw[0].log);
		rc = itest_bpfwrap_stop(&env->bw[0], SIGTERM);
		if (rc != 1)
			fail_msg("start with a broken file: got exit status %d, want 1", rc);
	}
}

/* test_trap_needs_handshake - forged SYN, ACK, RST, FIN and SYN-ACK naming an address ban
 * nobody (counted); a client that completes the handshake is banned; a full ban table
 * (--max-bans 1) refuses the next ban and keeps the first */
static void test_trap_needs_handshake(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char out[4096];

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "2000/tcp : ALL : trap 1h\n", "--max-bans", "1");
	forge_all("127.0.0.77", "127.0.0.1", 2000);
	itest_sleep_ms(300);
	if (run_cmd(env, "bans", NULL, out, sizeof(out)) != 0 || !strstr(out, "0 ban(s)") ||
	    strstr(out, "trap_packets=0 "))
		fail_msg("bpfwrap bans after forged segments: got \"%s\", want \"0 ban(s)\" and "
			 "trap_packets counted", out);
	expect_connect(env, "the address forged segments named", "127.0.0.77", HOLD_PORT, 0);
	trap_hit(env, AF_INET, "127.0.0.6", "127.0.0.1", 2000);
	expect_connect(env, "a client that completed a trap handshake", "127.0.0.6", HOLD_PORT,
		       -ETIMEDOUT);
	/* the table holds one ban: the next proven client is refused a ban, counted */
	if (!answered(itest_tcp_connect(AF_INET, "127.0.0.8", "127.0.0.1", 2000, 1000)))
		fail_msg("second trap client: got no answer, want the handshake");
	itest_sleep_ms(300);
	if (run_cmd(env, "bans", NULL, out, sizeof(out)) != 0 || !strstr(out, "127.0.0.6") ||
	    !strstr(out, "1 ban(s)") || !strstr(out, "trap_hits=2") ||
	    !strstr(out, "bans_refused=1"))
		fail_msg("bpfwrap bans with --max-bans 1: got \"%s\", want 127.0.0.6, \"1 ban(s)\", "
			 "trap_hits=2, bans_refused=1", out);
	expect_connect(env, "trap client whose ban did not fit", "127.0.0.8", HOLD_PORT, 0);
	expect_connect(env, "first ban, kept", "127.0.0.6", HOLD_PORT, -ETIMEDOUT);
}

/* test_trap_daemon_needs_handshake - a trap on a daemon name: a forged SYN to its port bans
 * nobody; a completed handshake bans (with bpfwrap, never with the daemon) */
static void test_trap_daemon_needs_handshake(void **state)
{
	struct itest_env *env = ITEST_ENV(state);

	start_holdd(env, "echod", HOLD_PORT);
	start_holdd(env, "trapd", 9100);
	start_guarded(env, ALLOW_ALL, "", "trapd : ALL : trap 1h\n", NULL, NULL);
	forge_all("127.0.0.77", "127.0.0.1", 9100);
	itest_sleep_ms(300);
	expect_connect(env, "the address a forged SYN to trapd named", "127.0.0.77", HOLD_PORT, 0);
	trap_hit(env, AF_INET, "127.0.0.6", "127.0.0.1", 9100);
	expect_connect(env, "a client that completed a handshake with trapd", "127.0.0.6", HOLD_PORT,
		       -ETIMEDOUT);
}

/* test_udp_trap_unproven_opt_in - a datagram to a UDP trap bans nobody (its source is never
 * proven) unless the line says `unproven` */
static void test_udp_trap_unproven_opt_in(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char out[4096];

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "",
		      "69/udp : ALL : trap 1h\n5069/udp : ALL : trap 1h : unproven\n", NULL, NULL);
	assert_int_equal(itest_udp_send(AF_INET, "127.0.0.7", "127.0.0.1", 69, "x"), 0);
	itest_sleep_ms(300);
	expect_connect(env, "after a datagram to a UDP trap", "127.0.0.7", HOLD_PORT, 0);
	assert_int_equal(itest_udp_send(AF_INET, "127.0.0.7", "127.0.0.1", 5069, "x"), 0);
	if (itest_bpfwrap_wait(&env->bw[0], "trap: 127.0.0.7 banned for 3600 s (port 5069/udp",
			       BAN_WAIT_MS) ||
	    !strstr(env->bw[0].log, "unproven source"))
		fail_msg("log: got \"%s\", want \"trap: 127.0.0.7 banned ... (port 5069/udp ... "
			 "unproven source ...\"", env->bw[0].log);
	expect_connect(env, "after a datagram to an unproven UDP trap", "127.0.0.7", HOLD_PORT,
		       -ETIMEDOUT);
	if (run_cmd(env, "bans", NULL, out, sizeof(out)) != 0 || !strstr(out, "(unproven)") ||
	    !strstr(out, "unproven_bans=1"))
		fail_msg("bpfwrap bans: got \"%s\", want an \"(unproven)\" ban, unproven_bans=1",
			 out);
	if (run_cmd(env, "unban", "127.0.0.7", out, sizeof(out)) != 0)
		fail_msg("unban of an unproven ban: got \"%s\", want it removed", out);
	expect_connect(env, "after unban", "127.0.0.7", HOLD_PORT, 0);
}

/* hold_n - n connections from src to HOLD_PORT, all wanted in; fail if one is not */
static void hold_n(int *fds, int n, const char *src, const char *what)
{
	for (int i = 0; i < n; i++) {
		fds[i] = hold(src, HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
		if (fds[i] < 0)
			fail_msg("%s: connection %d of %d: got %s, want connected", what, i + 1, n,
				 itest_outcome(fds[i]));
	}
}

/* test_counts_die_with_the_guard - the leak of issue 16: instances 3, three connections
 * held, bpfwrap restarted without --extensions (the guard's programs go), the
 * connections closed meanwhile, bpfwrap started again with them: a count kept from the
 * first run said 3 and refused everything. Counts live as long as the programs that
 * keep them, and a new guard recounts the connections still open. */
static void test_counts_die_with_the_guard(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const char *ext = "echod : ALL : instances 3\n";
	int fds[3], rc;

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", ext, NULL, NULL);
	hold_n(fds, 3, "127.0.0.5", "instances 3");
	assert_int_equal(itest_bpfwrap_stop(&env->bw[0], SIGTERM), 0);
	start_plain(env);
	for (int i = 0; i < 3; i++)
		hold_close(fds[i]);
	itest_sleep_ms(300);	/* holdd sees the resets and closes its ends */
	assert_int_equal(itest_bpfwrap_stop(&env->bw[0], SIGTERM), 0);
	start_guarded(env, ALLOW_ALL, "", ext, NULL, NULL);
	kill(env->bw[0].pid, SIGHUP);
	itest_sleep_ms(300);
	rc = hold("127.0.0.5", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	hold_close(rc);
	if (rc < 0)
		fail_msg("instances 3 after the connections closed while no guard ran: got %s, want "
			 "connected (no count left over)", itest_outcome(rc));
	/* recount: two held across a restart without and one with the guard still count */
	hold_n(fds, 2, "127.0.0.5", "before the restarts");
	assert_int_equal(itest_bpfwrap_stop(&env->bw[0], SIGTERM), 0);
	start_plain(env);
	assert_int_equal(itest_bpfwrap_stop(&env->bw[0], SIGTERM), 0);
	start_guarded(env, ALLOW_ALL, "", "echod : ALL : instances 2\n", NULL, NULL);
	rc = hold("127.0.0.6", HOLD_PORT, ITEST_DENY_TIMEOUT_MS);
	hold_close(rc);
	if (rc != -ETIMEDOUT)
		fail_msg("instances 2 with 2 connections from before the restarts: got %s, want "
			 "dropped (they are recounted)", itest_outcome(rc));
	hold_close(fds[0]);
	itest_sleep_ms(300);
	rc = hold("127.0.0.6", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	if (rc < 0)
		fail_msg("instances 2 after one recounted connection closed: got %s, want connected",
			 itest_outcome(rc));
	hold_close(rc);
	hold_close(fds[1]);
}

/* test_slow_handshakes_counted - per_source 2: ten SYNs from one client pass (nothing is
 * established yet), their handshakes completed afterwards: only two establish (the limit
 * is checked again on the ACK that completes a handshake) */
static void test_slow_handshakes_counted(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	struct slow_client c;
	int got, n;

	start_holdd_at(env, "echod", "0.0.0.0", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "echod : ALL : per_source 2\n", NULL, NULL);
	slow_setup(env, &c);
	for (int i = 0; i < 10; i++) {
		slow_syn(&c, (uint16_t)(42000 + i), HOLD_PORT);
		itest_sleep_ms(30);
	}
	got = slow_read_synacks(&c, 3000);
	if (got != 10)
		fail_msg("SYN-ACKs for 10 held handshakes: got %d, want 10", got);
	for (int i = 0; i < 10; i++)
		slow_ack(&c, i, HOLD_PORT);
	itest_sleep_ms(500);
	n = established_to(SLOW_SERVER, HOLD_PORT);
	close(c.pfd);
	if (n != 2)
		fail_msg("per_source 2, 10 handshakes completed late: got %d established, want 2", n);
}

/* stop_last_server - kill (SIGKILL) and reap the server started last; teardown then
 * leaves it alone */
static void stop_last_server(struct itest_env *env)
{
	struct itest_server *srv = &env->servers[env->n_servers - 1];
	int status;

	assert_true(env->n_servers > 0 && srv->pid > 0);
	kill(srv->pid, SIGKILL);
	waitpid(srv->pid, &status, 0);
	srv->pid = 0;
}

/* test_port_owner_cleared - a guarded trap daemon bound 9100 and exited; an unrelated
 * service (outside the guarded cgroup) that binds 9100 later is not hit by the daemon's
 * trap: its client connects to it and is not banned */
static void test_port_owner_cleared(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	struct sockaddr_storage ss;
	socklen_t len;
	char out[4096];
	int lfd, c, one = 1;

	start_holdd(env, "echod", HOLD_PORT);
	start_holdd(env, "trapd", 9100);
	start_guarded(env, ALLOW_ALL, "", "trapd : ALL : trap 1h\n", NULL, NULL);
	stop_last_server(env);	/* trapd and its port 9100 are gone */
	itest_sleep_ms(100);
	/* the test process is not in the guarded cgroup: an unrelated service */
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(lfd >= 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(itest_sockaddr(AF_INET, "127.0.0.1", 9100, &ss, &len), 0);
	if (bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 8))
		fail_msg("unrelated service on 9100: %s", strerror(errno));
	expect_connect(env, "client of an unrelated service on trapd's old port", "127.0.0.6", 9100,
		       0);
	c = accept(lfd, NULL, NULL);
	close(lfd);
	if (c < 0)
		fail_msg("unrelated service: got no connection (%s), want the client's",
			 strerror(errno));
	close(c);
	itest_sleep_ms(200);
	if (run_cmd(env, "bans", NULL, out, sizeof(out)) != 0 || !strstr(out, "0 ban(s)"))
		fail_msg("bpfwrap bans: got \"%s\", want \"0 ban(s)\"", out);
	expect_connect(env, "that client on a guarded service", "127.0.0.6", HOLD_PORT, 0);
}

/* test_status_says_extensions_refused - a refused extensions reload shows in `status`
 * (not "last reload: ok"), with the file's error; a good file then clears it; status
 * shows the extensions' counters */
static void test_status_says_extensions_refused(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char ext[PATH_MAX], out[16384];

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "echod : ALL : per_source 1\n", NULL, NULL);
	snprintf(ext, sizeof(ext), "%s/bpfwrap.conf", env->dir);
	if (itest_write_file(ext, "echod : ALL : per_source 0\n"))
		fail_msg("cannot rewrite the extensions file");
	kill(env->bw[0].pid, SIGHUP);
	if (itest_bpfwrap_wait(&env->bw[0], "not loaded", 3000))
		fail_msg("log: got \"%s\", want \"not loaded\"", env->bw[0].log);
	itest_sleep_ms(100);
	if (run_cmd(env, "status", NULL, out, sizeof(out)) != 0 || strstr(out, "last reload: ok") ||
	    !strstr(out, "bpfwrap.conf:1:15: error: bad per_source '0'"))
		fail_msg("status after a refused extensions reload: got \"%s\", want no \"last reload: "
			 "ok\" and \"bpfwrap.conf:1:15: error: bad per_source '0'\"", out);
	if (itest_write_file(ext, "echod : ALL : per_source 2\n"))
		fail_msg("cannot rewrite the extensions file");
	kill(env->bw[0].pid, SIGHUP);
	if (itest_bpfwrap_wait(&env->bw[0], "extensions: 1 line(s) in force", 3000))
		fail_msg("log: got \"%s\", want \"extensions: 1 line(s) in force\"", env->bw[0].log);
	itest_sleep_ms(100);
	if (run_cmd(env, "status", NULL, out, sizeof(out)) != 0 || !strstr(out, "last reload: ok") ||
	    strstr(out, "bad per_source") || !strstr(out, "extensions: refused_banned=0 trap_hits=0"))
		fail_msg("status after a good reload: got \"%s\", want \"last reload: ok\" and the "
			 "line \"extensions: refused_banned=0 trap_hits=0 ...\"", out);
}

/* test_per_source_v6_prefix - per_source counts an IPv6 client per /64 by default (one
 * host has 2^64 addresses), per the line's source_prefix when it says so */
static void test_per_source_v6_prefix(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	char ext[PATH_MAX];
	int a, b, c;

	start_holdd_at(env, "echod", "::", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "echod : ALL : per_source 1\n", NULL, NULL);
	a = hold_to(AF_INET6, "fd00::2", "fd00::1", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	b = hold_to(AF_INET6, "fd00::3", "fd00::1", HOLD_PORT, ITEST_DENY_TIMEOUT_MS);
	hold_close(b);
	if (a < 0 || b != -ETIMEDOUT)
		fail_msg("per_source 1 from fd00::2 then fd00::3 (one /64): got %s, %s, want "
			 "connected, dropped", itest_outcome(a < 0 ? a : 0), itest_outcome(b < 0 ? b : 0));
	/* IPv4 stays per address */
	b = hold("127.0.0.5", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	c = hold("127.0.0.6", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	if (b < 0 || c < 0)
		fail_msg("per_source 1 from 127.0.0.5 and 127.0.0.6: got %s, %s, want both connected",
			 itest_outcome(b < 0 ? b : 0), itest_outcome(c < 0 ? c : 0));
	hold_close(b);
	hold_close(c);
	hold_close(a);
	/* source_prefix: IPv6 per address, IPv4 per /24 */
	snprintf(ext, sizeof(ext), "%s/bpfwrap.conf", env->dir);
	if (itest_write_file(ext, "echod : ALL : per_source 1 : source_prefix v4/24 v6/128\n"))
		fail_msg("cannot rewrite the extensions file");
	kill(env->bw[0].pid, SIGHUP);
	if (itest_bpfwrap_wait(&env->bw[0], "extensions: 1 line(s) in force", 3000))
		fail_msg("log: got \"%s\", want a second \"extensions: 1 line(s) in force\"",
			 env->bw[0].log);
	itest_sleep_ms(300);	/* the connections above are closed and uncounted */
	a = hold_to(AF_INET6, "fd00::2", "fd00::1", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	b = hold_to(AF_INET6, "fd00::3", "fd00::1", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	c = hold("127.0.0.5", HOLD_PORT, ITEST_ALLOW_TIMEOUT_MS);
	if (a < 0 || b < 0 || c < 0)
		fail_msg("source_prefix v6/128: fd00::2, fd00::3, 127.0.0.5: got %s, %s, %s, want all "
			 "connected", itest_outcome(a < 0 ? a : 0), itest_outcome(b < 0 ? b : 0),
			 itest_outcome(c < 0 ? c : 0));
	hold_close(a);
	hold_close(b);
	a = hold("127.0.0.6", HOLD_PORT, ITEST_DENY_TIMEOUT_MS);
	hold_close(a);
	hold_close(c);
	if (a != -ETIMEDOUT)
		fail_msg("source_prefix v4/24: 127.0.0.6 while 127.0.0.5 holds one: got %s, want "
			 "dropped", itest_outcome(a < 0 ? a : 0));
}

/* cpu_ms - user + system CPU time of a process, ms (-1 unknown) */
static long long cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (long long)(ut + st) * 1000 / sysconf(_SC_CLK_TCK);
}

/* test_trap_spoofed_flood - a forever ban, then more spoofed SYNs to a trap port, each
 * from another address, than a ban table holds: nobody is banned, the forever ban
 * stays, everything is counted, services still answer */
static void test_trap_spoofed_flood(void **state)
{
	struct itest_env *env = ITEST_ENV(state);
	const uint32_t n = GUARD_BANS_MAX + GUARD_BANS_MAX / 8;
	long long t0, cpu0, took, cpu;
	char out[4096];
	const char *p;
	uint32_t dst = htonl(INADDR_LOOPBACK);
	int fd;

	start_holdd(env, "echod", HOLD_PORT);
	start_guarded(env, ALLOW_ALL, "", "2000/tcp : ALL EXCEPT 127.0.0.5 : trap forever\n", NULL,
		      NULL);
	trap_hit(env, AF_INET, "127.0.0.6", "127.0.0.1", 2000);
	fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	assert_true(fd >= 0);
	t0 = itest_now_ms();
	cpu0 = cpu_ms(env->bw[0].pid);
	for (uint32_t i = 0; i < n; i++)	/* 127.1.0.0 and up: each SYN another source */
		if (raw_tcp4_on(fd, htonl(0x7f010000u + i), (uint16_t)(1024 + i % 60000), dst, 2000,
				TH_SYN, i, 0))
			fail_msg("forged SYN %u: %s", i, strerror(errno));
	took = itest_now_ms() - t0;
	close(fd);
	itest_sleep_ms(500);
	cpu = cpu_ms(env->bw[0].pid) - cpu0;
	printf("# info: %u spoofed SYNs to a trap port in %lld ms; bpfwrap used %lld ms CPU\n", n,
	       took, cpu);
	if (run_cmd(env, "bans", NULL, out, sizeof(out)) != 0 || !strstr(out, "1 ban(s)") ||
	    !strstr(out, "127.0.0.6"))
		fail_msg("bpfwrap bans after the flood: got \"%s\", want only 127.0.0.6", out);
	p = strstr(out, "trap_packets=");
	if (!p || strtoull(p + strlen("trap_packets="), NULL, 10) < n)
		fail_msg("bpfwrap bans: got \"%s\", want trap_packets >= %u (the flood)", out, n);
	expect_connect(env, "forever ban after the flood", "127.0.0.6", HOLD_PORT, -ETIMEDOUT);
	expect_connect(env, "another client after the flood", "127.0.0.5", HOLD_PORT, 0);
}

/* main - every case, or those matching the pattern in argv[1] (cmocka's filter) */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		ITEST_CASE(test_trap_needs_handshake),
		ITEST_CASE(test_trap_daemon_needs_handshake),
		ITEST_CASE(test_udp_trap_unproven_opt_in),
		ITEST_CASE(test_trap_scan_bans_then_expires),
		ITEST_CASE(test_unban_lifts_ban),
		ITEST_CASE(test_detach_removes_guard),
		ITEST_CASE(test_per_source_caps_exactly),
		ITEST_CASE(test_instances_caps_total),
		ITEST_CASE(test_cps_rate_and_burst),
		ITEST_CASE(test_reject_tcp_udp),
		ITEST_CASE(test_ipv6_reject_trap_unban),
		ITEST_CASE(test_revoke_on_reload),
		ITEST_CASE(test_revoke_on_ban),
		ITEST_CASE(test_extensions_errors_refused),
		ITEST_CASE(test_counts_die_with_the_guard),
		ITEST_CASE(test_slow_handshakes_counted),
		ITEST_CASE(test_port_owner_cleared),
		ITEST_CASE(test_status_says_extensions_refused),
		ITEST_CASE(test_per_source_v6_prefix),
		ITEST_CASE(test_trap_spoofed_flood),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
