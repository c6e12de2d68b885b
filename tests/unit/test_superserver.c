/*
 * test_superserver.c - inetd.conf and xinetd configuration into the daemon
 * names tcpd would have seen (user/policy/superserver.c): named cases, each
 * with the services it must yield, printed as got/want on a mismatch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <netinet/in.h>

#include "superserver.h"

/* One expected service: "SERVICE/PROTO:PORT=DAEMON" (PORT 0: from /etc/services). */
struct want {
	const char *text;
};

/* describe - a service as "SERVICE/PROTO:PORT=DAEMON" */
static void describe(const struct superserver_service *s, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s:%u=%s", s->service, s->proto == IPPROTO_UDP ? "udp" : "tcp",
		 s->port, s->daemon);
}

/* expect - the list holds exactly the wanted services, in order */
static void expect(const char *name, const struct superserver_list *l, const char *const *want,
		   size_t n)
{
	char got[256];

	if (l->n != n)
		fail_msg("%s: got %zu services, want %zu", name, l->n, n);
	for (size_t i = 0; i < n; i++) {
		describe(&l->v[i], got, sizeof(got));
		if (strcmp(got, want[i]))
			fail_msg("%s: service %zu: got %s, want %s", name, i, got, want[i]);
	}
}

/* test_inetd - tcpd-wrapped, plain, address-bound, udp; rpc and internal skipped */
static void test_inetd(void **state)
{
	const char *conf =
		"# comment\n"
		"telnet  stream  tcp  nowait  root  /usr/sbin/tcpd  /usr/sbin/in.telnetd\n"
		"ftp\tstream\ttcp6\tnowait\troot\t/usr/sbin/in.ftpd\tin.ftpd -l\n"
		"127.0.0.1:finger stream tcp nowait nobody /usr/sbin/tcpd in.fingerd\n"
		"tftp dgram udp wait nobody /usr/sbin/tcpd /usr/sbin/in.tftpd -s /srv\n"
		"daytime stream tcp nowait root internal\n"
		"rstatd/1-3 dgram rpc/udp wait root /usr/sbin/tcpd rpc.rstatd\n"
		"2323 stream tcp nowait root /usr/local/sbin/mydaemon\n"
		"garbage\n";
	const char *const want[] = {
		"telnet/tcp:0=in.telnetd", "ftp/tcp:0=in.ftpd", "finger/tcp:0=in.fingerd",
		"tftp/udp:0=in.tftpd", "2323/tcp:0=mydaemon",
	};
	struct superserver_list l = {};

	(void)state;
	assert_int_equal(superserver_parse_inetd(conf, &l), 0);
	expect("inetd.conf", &l, want, sizeof(want) / sizeof(want[0]));
	superserver_list_free(&l);
}

/* include_seen - the includedir callback of test_xinetd: remember the dir */
static void include_seen(const char *dir, void *ctx)
{
	snprintf(ctx, 64, "%s", dir);
}

/* test_xinetd - server basename, libwrap wins, internal/redirect by name, disabled skipped */
static void test_xinetd(void **state)
{
	const char *conf =
		"defaults\n{\n\tinstances = 60\n}\n"
		"includedir /etc/xinetd.d\n"
		"service telnet\n{\n\tsocket_type = stream\n\tserver = /usr/sbin/in.telnetd\n}\n"
		"service tftp\n{\n\tsocket_type = dgram\n\tprotocol = udp\n\tserver = /usr/sbin/in.tftpd\n"
		"\tlibwrap = tftpd\n}\n"
		"service echo\n{\n\ttype = INTERNAL\n\tsocket_type = stream\n}\n"
		"service old\n{\n\tdisable = yes\n\tserver = /bin/old\n}\n"
		"service web {\n\tport = 8080\n\tserver = /usr/bin/webd\n\tredirect = 10.0.0.1 80\n}\n";
	const char *const want[] = {
		"telnet/tcp:0=in.telnetd", "tftp/udp:0=tftpd", "echo/tcp:0=echo", "web/tcp:8080=web",
	};
	struct superserver_list l = {};
	char dir[64] = "";

	(void)state;
	assert_int_equal(superserver_parse_xinetd(conf, &l, include_seen, dir), 0);
	expect("xinetd.conf", &l, want, sizeof(want) / sizeof(want[0]));
	if (strcmp(dir, "/etc/xinetd.d"))
		fail_msg("includedir: got \"%s\", want \"/etc/xinetd.d\"", dir);
	superserver_list_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inetd),
		cmocka_unit_test(test_xinetd),
	};

	return cmocka_run_group_tests_name("unit/superserver", tests, NULL, NULL);
}
