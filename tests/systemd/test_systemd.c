/*
 * test_systemd.c - the real-systemd level: Debian 12 booted with systemd in
 * systemd-nspawn (private network), the package from `make deb` installed in
 * it as an admin would, the real OpenSSH sshd, and bpfwrap.service driven
 * with systemctl: started after and before sshd, restarts of ssh, a reboot,
 * socket activation, the journal line, a fail2ban-style ban and unban, status.
 *
 * What a case asserts is what a client sees at the TCP level: a client the
 * policy denies never gets a connection established (its SYN is dropped or
 * reset); an allowed one gets sshd's "SSH-2.0-" banner. Debian's sshd still
 * checks hosts.allow/hosts.deny itself (libwrap) after accepting, and logs
 * "refused connect" from its per-connection child: a missing banner or such a
 * line therefore proves nothing about bpfwrap, an established connection
 * does; the journal case wants the line with the PID of sshd's main process.
 *
 * Needs root (tests/run.sh runs it only as root, and then it must run: any
 * missing piece is a failure, not a skip). The root file system is built once
 * by scripts/systemd-rootfs.sh and cached; the package is build/deb/bpfwrap_V_amd64.deb
 * (make deb) or $BPFWRAP_DEB. BPFWRAP_SYSTEMD_RESTARTS sets the number of
 * ssh restarts of the restart case (default 100). The container, cgroups,
 * bpffs and work directory are removed at the end (ctr.h, SAFETY).
 */
#include <glob.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>

#include <cmocka.h>

#include "ctr.h"

#define ALLOWED "127.0.0.5"
#define DENIED "127.0.0.9"
#define OTHER "127.0.0.7"	/* named by no rule: default allow */
#define SSH_CG "system.slice/ssh.service"

static bool booted;		/* the container is up and the package installed */
static char out[CTR_OUT_MAX];

/* evidence - print bpfwrap's status and journal, and sshd's state, for a failure report */
static void evidence(const char *why)
{
	static char ev[CTR_OUT_MAX];

	printf("# --- evidence (%s) ---\n", why);
	ctr_sh(ev, sizeof(ev), 20000,
	       "echo '$ bpfwrap status'; bpfwrap status 2>&1 | head -40;"
	       "echo '$ systemctl status bpfwrap ssh ssh.socket'; "
	       "systemctl --no-pager --lines=0 status bpfwrap ssh ssh.socket 2>&1 | grep -E '●|Active:|Main PID|CGroup' ;"
	       "echo '$ journalctl -u bpfwrap -n 15'; journalctl --no-pager -o short -u bpfwrap -n 15 2>&1;"
	       "echo '$ journalctl -t sshd -n 8'; journalctl --no-pager -o short -t sshd -n 8 2>&1");
	for (char *line = strtok(ev, "\n"); line; line = strtok(NULL, "\n"))
		printf("#   %s\n", line);
}

/* must_sh - run a command inside; fail the case with its output if it exits non-zero */
#define must_sh(timeout_ms, ...)                                                              \
	do {                                                                                  \
		int rc_ = ctr_sh(out, sizeof(out), timeout_ms, __VA_ARGS__);                  \
		if (rc_ != 0) {                                                               \
			char cmd_[512];                                                       \
			snprintf(cmd_, sizeof(cmd_), __VA_ARGS__);                            \
			evidence("command failed");                                           \
			fail_msg("in the container: `%s`: got exit %d, want 0; it said:\n%s", \
				 cmd_, rc_, out);                                             \
		}                                                                             \
	} while (0)

/* need_container - fail (not skip) a case when the container could not be set up */
static void need_container(void)
{
	if (!booted)
		fail_msg("the container is not running (see test_boot_and_install's failure)");
}

/* set_policy - hosts.allow, hosts.deny and the cgroups line of /etc/default/bpfwrap */
static void set_policy(const char *allow, const char *deny, const char *cgroups)
{
	char def[512];

	assert_int_equal(ctr_write("/etc/hosts.allow", allow), 0);
	assert_int_equal(ctr_write("/etc/hosts.deny", deny), 0);
	snprintf(def, sizeof(def), "# written by tests/systemd/test_systemd.c\nBPFWRAP_CGROUPS=\"%s\"\n",
		 cgroups);
	assert_int_equal(ctr_write("/etc/default/bpfwrap", def), 0);
}

/* reset - bpfwrap stopped, disabled and detached; ssh.socket off; ssh.service enabled and stopped */
static void reset(void)
{
	need_container();
	ctr_sh(out, sizeof(out), 60000,
	       "systemctl disable --now bpfwrap.service ssh.socket >/dev/null 2>&1;"
	       "systemctl stop ssh.service >/dev/null 2>&1; bpfwrap detach >/dev/null 2>&1;"
	       "systemctl reset-failed >/dev/null 2>&1; systemctl enable ssh.service >/dev/null 2>&1; true");
	set_policy("sshd: " ALLOWED "\n", "sshd: " DENIED "\n", "--cgroup " SSH_CG "=sshd");
}

/* wait_listening - wait until something listens on 127.0.0.1:22 inside; 0 or -ETIMEDOUT */
static int wait_listening(int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (now_ms() < deadline) {
		if (ctr_sh(out, sizeof(out), 10000, "ss -Hltn 'sport = :22' | grep -q LISTEN") == 0)
			return 0;
		sleep_ms(100);
	}
	return -ETIMEDOUT;
}

/* start_bpfwrap - systemctl enable --now bpfwrap, as the documentation says */
static void start_bpfwrap(void)
{
	must_sh(90000, "systemctl enable --now bpfwrap.service 2>&1");
	must_sh(10000, "systemctl is-active bpfwrap.service");
}

/* expect - one probe from src has the wanted outcome class (banner / not established) */
static void expect(const char *src, bool want_in, const char *context)
{
	enum probe_result r = probe(src);
	bool in = r == PROBE_BANNER || r == PROBE_NO_BANNER;

	if (r == PROBE_ERROR || in != want_in || (want_in && r != PROBE_BANNER)) {
		evidence(context);
		fail_msg("%s: a connect from %s to sshd got \"%s\", want %s", context, src, probe_names[r],
			 want_in ? "sshd's banner" : "no connection (dropped or reset)");
	}
}

/* test_boot_and_install - boot the cached tree, dpkg -i the package: installed, neither enabled nor started */
static void test_boot_and_install(void **state)
{
	char base[PATH_MAX], deb[PATH_MAX], cmd[PATH_MAX * 2], st[256];
	const char *env = getenv("BPFWRAP_DEB");
	long long t0 = now_ms(), t;
	glob_t g;
	int r;

	if (geteuid() != 0)
		fail_msg("needs root (tests/run.sh runs this level only as root)");
	if (env && *env) {
		snprintf(deb, sizeof(deb), "%s", env);
	} else {
		if (glob("build/deb/bpfwrap_*_amd64.deb", 0, NULL, &g) != 0 || g.gl_pathc != 1)
			fail_msg("no single build/deb/bpfwrap_*_amd64.deb in %s: `make deb` first "
				 "(make test does; its output says why it failed)", getcwd(base, sizeof(base)));
		snprintf(deb, sizeof(deb), "%s", g.gl_pathv[0]);
		globfree(&g);
	}
	if (access(deb, R_OK))
		fail_msg("package %s: %s", deb, strerror(errno));
	{
		char *argv[] = { "scripts/systemd-rootfs.sh", NULL };

		r = run_argv(argv, out, sizeof(out), 1800000);
	}
	if (r != 0)
		fail_msg("scripts/systemd-rootfs.sh: exit %d:\n%s", r, out);
	/* the last line is the directory; earlier lines (a fresh build) are reports */
	while (*out && out[strlen(out) - 1] == '\n')
		out[strlen(out) - 1] = '\0';
	{
		char *last = strrchr(out, '\n');

		snprintf(base, sizeof(base), "%s", last ? last + 1 : out);
	}
	t = now_ms();
	printf("# root file system %s in %.1f s\n", base, (t - t0) / 1000.0);
	if ((r = ctr_prepare(base)) < 0)
		fail_msg("preparing the container: %s", strerror(-r));
	if ((r = ctr_spawn()) < 0 || (r = ctr_wait_booted(st, sizeof(st))) < 0) {
		char tail[8192];
		char *argv[] = { "tail", "-n", "30", ctr.console, NULL };

		run_argv(argv, tail, sizeof(tail), 5000);
		fail_msg("booting the container: %s; console:\n%s", strerror(-r), tail);
	}
	printf("# booted (%s) in %.1f s, container PID 1 is host PID %d\n", st, (now_ms() - t) / 1000.0,
	       (int)ctr.init);

	snprintf(cmd, sizeof(cmd), "%s/root/bpfwrap.deb", ctr.root);
	{
		char *argv[] = { "cp", deb, cmd, NULL };

		assert_int_equal(run_argv(argv, out, sizeof(out), 30000), 0);
	}
	must_sh(120000, "dpkg -i /root/bpfwrap.deb 2>&1");
	printf("# dpkg -i %s: ok\n", deb);
	booted = true;
	/* the package does not enable or start the unit */
	ctr_sh(out, sizeof(out), 10000, "systemctl is-enabled bpfwrap.service");
	if (strncmp(out, "disabled", 8))
		fail_msg("after dpkg -i: systemctl is-enabled bpfwrap says '%s', want disabled", out);
	ctr_sh(out, sizeof(out), 10000, "systemctl is-active bpfwrap.service");
	if (strncmp(out, "inactive", 8))
		fail_msg("after dpkg -i: systemctl is-active bpfwrap says '%s', want inactive", out);
	if (ctr_sh(out, sizeof(out), 10000, "test ! -e /sys/fs/bpf/bpfwrap") != 0)
		fail_msg("after dpkg -i: /sys/fs/bpf/bpfwrap exists: something started bpfwrap");
	/* the files, and the unit runs the packaged binary */
	must_sh(10000, "test -x /usr/sbin/bpfwrap && test -f /usr/share/man/man8/bpfwrap.8.gz && "
		       "test -f /usr/share/doc/bpfwrap/copyright && test -f /usr/share/doc/bpfwrap/changelog.gz");
	must_sh(10000, "grep -q '^ExecStart=/usr/sbin/bpfwrap run ' /lib/systemd/system/bpfwrap.service");
	must_sh(10000, "dpkg-query -W -f='${Conffiles}' bpfwrap | grep -q ' /etc/default/bpfwrap '");
	must_sh(30000, "out=$(systemd-analyze verify --man=no bpfwrap.service 2>&1); "
		       "echo \"$out\"; ! echo \"$out\" | grep -q bpfwrap");
	(void)state;
}

/* test_started_after_sshd - sshd runs, then `systemctl enable --now bpfwrap`: sshd rules decide */
static void test_started_after_sshd(void **state)
{
	reset();
	must_sh(60000, "systemctl start ssh.service");
	assert_int_equal(wait_listening(15000), 0);
	start_bpfwrap();
	expect(ALLOWED, true, "bpfwrap started after sshd, allowed client");
	expect(DENIED, false, "bpfwrap started after sshd, denied client");
	expect(OTHER, true, "bpfwrap started after sshd, client no rule names");
	(void)state;
}

/* test_deny_all_allows_listed - hosts.deny `ALL: ALL`: only the client hosts.allow names for sshd gets in */
static void test_deny_all_allows_listed(void **state)
{
	reset();
	set_policy("sshd: " ALLOWED "\n", "ALL: ALL\n", "--cgroup " SSH_CG "=sshd");
	must_sh(60000, "systemctl start ssh.service");
	assert_int_equal(wait_listening(15000), 0);
	start_bpfwrap();
	expect(ALLOWED, true, "ALL: ALL in hosts.deny, client allowed for sshd");
	expect(DENIED, false, "ALL: ALL in hosts.deny, other client");
	(void)state;
}

/* test_status_shows_attachment - `bpfwrap status` names the service's cgroup and counts the deny rule */
static void test_status_shows_attachment(void **state)
{
	static char st[CTR_OUT_MAX];
	char *line;
	unsigned long before = 0, after = 0;

	reset();
	must_sh(60000, "systemctl start ssh.service");
	assert_int_equal(wait_listening(15000), 0);
	start_bpfwrap();
	must_sh(10000, "bpfwrap status 2>&1");
	snprintf(st, sizeof(st), "%s", out);
	printf("# bpfwrap status:\n");
	for (char *l = st, *e; *l; l = e + 1) {
		e = strchrnul(l, '\n');
		printf("#   %.*s\n", (int)(e - l), l);
		if (!*e)
			break;
	}
	line = strstr(st, "attached:");
	if (!line || !strstr(line, "/system.slice/ssh.service"))
		fail_msg("bpfwrap status: no 'attached:' line with system.slice/ssh.service:\n%s", st);
	line = strstr(st, "/etc/hosts.deny:1");
	if (line) {
		while (line > st && line[-1] != '\n')
			line--;
		before = strtoul(line, NULL, 10);
	}
	probe(DENIED);
	must_sh(10000, "bpfwrap status 2>&1");
	line = strstr(out, "/etc/hosts.deny:1");
	if (line) {
		while (line > out && line[-1] != '\n')
			line--;
		after = strtoul(line, NULL, 10);
	}
	if (after <= before) {
		evidence("status");
		fail_msg("bpfwrap status: the decisions of /etc/hosts.deny:1 (sshd: %s) went from %lu to %lu "
			 "after a connect from %s, want one more:\n%s", DENIED, before, after, DENIED, out);
	}
	(void)state;
}

/* test_journal_refused_line - the journal has `sshd[MAINPID]: refused connect from DENIED` */
static void test_journal_refused_line(void **state)
{
	char since[64], pid[32], want[128];
	long long deadline;
	bool found = false;

	reset();
	must_sh(60000, "systemctl start ssh.service");
	assert_int_equal(wait_listening(15000), 0);
	start_bpfwrap();
	must_sh(10000, "systemctl show -p MainPID --value ssh.service");
	snprintf(pid, sizeof(pid), "%.*s", (int)strcspn(out, "\n"), out);
	must_sh(10000, "date +@%%s");
	snprintf(since, sizeof(since), "%.*s", (int)strcspn(out, "\n"), out);
	probe(DENIED);
	snprintf(want, sizeof(want), "sshd[%s]: refused connect from %s", pid, DENIED);
	deadline = now_ms() + 5000;
	while (!found && now_ms() < deadline) {
		ctr_sh(out, sizeof(out), 10000, "journalctl --no-pager -o short -t sshd --since %s", since);
		found = strstr(out, want) != NULL;
		if (!found)
			sleep_ms(250);
	}
	if (!found) {
		evidence("journal");
		fail_msg("journal: no line '%s' (sshd's main PID is %s) within 5 s; journalctl -t sshd has:\n%s",
			 want, pid, out);
	}
	(void)state;
}

/* test_started_before_sshd - bpfwrap first (the cgroup does not exist yet), then sshd: enforced from its start */
static void test_started_before_sshd(void **state)
{
	struct prober pr;
	struct probe_counts c;
	char st[64], cb[256];
	long long deadline;

	memset(&c, 0, sizeof(c));
	reset();
	ctr_sh(out, sizeof(out), 10000, "systemctl enable bpfwrap.service 2>&1");
	ctr_sh(out, sizeof(out), 10000, "systemctl start --no-block bpfwrap.service 2>&1");
	/* its start job done, whatever the outcome (it may wait for the cgroup, or fail) */
	deadline = now_ms() + 10000;
	do {
		sleep_ms(200);
		ctr_sh(st, sizeof(st), 10000, "systemctl is-active bpfwrap.service");
	} while (!strncmp(st, "activating", 10) && now_ms() < deadline);
	printf("# bpfwrap before sshd: %.*s", (int)strcspn(st, "\n"), st);
	ctr_sh(out, sizeof(out), 10000, "journalctl --no-pager -o cat -u bpfwrap -n 3");
	printf(" (%.*s)\n", (int)strcspn(out, "\n"), out);
	/* a denied client knocking all the time sshd starts */
	assert_int_equal(prober_start(&pr, DENIED, 200, 0, 5, 60000, 100000), 0);
	ctr_sh(out, sizeof(out), 60000, "systemctl start ssh.service 2>&1");
	wait_listening(15000);
	sleep_ms(2000);
	assert_int_equal(prober_stop(&pr, &c), 0);
	printf("# denied client while sshd started: %s\n", counts_str(&c, cb, sizeof(cb)));
	if (c.n[PROBE_BANNER] + c.n[PROBE_NO_BANNER]) {
		evidence("bpfwrap before sshd");
		fail_msg("bpfwrap started before sshd: the denied client %s got %u connections established "
			 "while sshd started (%s)", DENIED, c.n[PROBE_BANNER] + c.n[PROBE_NO_BANNER],
			 counts_str(&c, cb, sizeof(cb)));
	}
	expect(DENIED, false, "bpfwrap started before sshd, denied client");
	expect(ALLOWED, true, "bpfwrap started before sshd, allowed client");
	(void)state;
}

/* test_restarts_never_admit_denied - N restarts (every 10th stop+start) of ssh while a denied client retries */
static void test_restarts_never_admit_denied(void **state)
{
	const char *env = getenv("BPFWRAP_SYSTEMD_RESTARTS");
	int n = env && atoi(env) > 0 ? atoi(env) : 100, rc;
	struct prober deny[4], allow;
	struct probe_counts d, a;
	char db[256], ab[256];
	long long t0;
	unsigned in;
	enum probe_result before;

	memset(&d, 0, sizeof(d));
	memset(&a, 0, sizeof(a));
	reset();
	/* systemd refuses more than 5 starts in 10 s by default: not what is measured here */
	must_sh(10000, "mkdir -p /etc/systemd/system/ssh.service.d && printf '[Unit]\\nStartLimitIntervalSec=0\\n' "
		       "> /etc/systemd/system/ssh.service.d/bpfwrap-test.conf && systemctl daemon-reload");
	must_sh(60000, "systemctl start ssh.service");
	assert_int_equal(wait_listening(15000), 0);
	start_bpfwrap();
	/* measured even when the denied client gets in already: the figure is the report */
	before = probe(DENIED);
	printf("# before the restarts the denied client got: %s\n", probe_names[before]);
	for (int i = 0; i < 4; i++)
		assert_int_equal(prober_start(&deny[i], DENIED, 150, 0, 1, 1200000, 10000000), 0);
	assert_int_equal(prober_start(&allow, ALLOWED, 500, 1000, 20, 1200000, 10000000), 0);
	t0 = now_ms();
	rc = ctr_sh(out, sizeof(out), 1100000,
		    "i=0; while [ $i -lt %d ]; do i=$((i + 1)); "
		    "if [ $((i %% 10)) -eq 0 ]; then systemctl stop ssh.service && systemctl start ssh.service; "
		    "else systemctl restart ssh.service; fi || { echo \"failed at $i\"; exit 1; }; done; echo \"done $i\"",
		    n);
	for (int i = 0; i < 4; i++)
		prober_stop(&deny[i], &d);
	prober_stop(&allow, &a);
	in = d.n[PROBE_BANNER] + d.n[PROBE_NO_BANNER];
	printf("# %d ssh restarts (%d of them stop+start) in %.1f s: denied client %s -> %u accepted\n", n,
	       n / 10, (now_ms() - t0) / 1000.0, counts_str(&d, db, sizeof(db)), in);
	printf("# allowed client meanwhile: %s\n", counts_str(&a, ab, sizeof(ab)));
	ctr_sh(out, sizeof(out), 10000, "systemctl show -p NRestarts -p MainPID ssh.service | tr '\\n' ' '");
	if (rc != 0)
		fail_msg("the restart loop in the container: exit %d: %s", rc, out);
	if (in) {
		evidence("restarts");
		fail_msg("%d restarts of ssh.service: %u connections of the denied client %s were accepted "
			 "(%s), want 0 (before the restarts it got: %s)", n, in, DENIED,
			 counts_str(&d, db, sizeof(db)), probe_names[before]);
	}
	if (!a.n[PROBE_BANNER])
		fail_msg("the allowed client never got sshd's banner during the restarts (%s): the measure "
			 "says nothing", counts_str(&a, ab, sizeof(ab)));
	expect(DENIED, false, "after the restarts, denied client");
	expect(ALLOWED, true, "after the restarts, allowed client");
	(void)state;
}

/* test_reboot_enforced_from_start - both units enabled, reboot: the denied client never gets in during boot */
static void test_reboot_enforced_from_start(void **state)
{
	struct prober pr[2], al;
	struct probe_counts d, a;
	char st[256], db[256], ab[256];
	int rc;
	unsigned in;
	long long t0;

	memset(&d, 0, sizeof(d));
	memset(&a, 0, sizeof(a));
	reset();
	must_sh(60000, "systemctl start ssh.service");
	start_bpfwrap();
	must_sh(10000, "systemctl is-enabled bpfwrap.service ssh.service");
	ctr_sh(out, sizeof(out), 30000, "systemctl reboot 2>&1");
	rc = ctr_wait_exit(CTR_STOP_TIMEOUT_MS);
	if (rc < 0) {
		booted = false;
		fail_msg("systemctl reboot: systemd-nspawn did not exit within %d s", CTR_STOP_TIMEOUT_MS / 1000);
	}
	printf("# reboot: systemd-nspawn exited with %d (133: reboot)\n", rc);
	/* a machine's bpffs is empty after a reboot; the container's must be too */
	assert_int_equal(ctr_fresh_bpffs(), 0);
	t0 = now_ms();
	booted = false;
	if ((rc = ctr_spawn()) < 0)
		fail_msg("booting again: %s", strerror(-rc));
	/* from the moment the container's network exists until well after boot */
	for (int i = 0; i < 2; i++)
		assert_int_equal(prober_start(&pr[i], DENIED, 150, 0, 1, 300000, 10000000), 0);
	assert_int_equal(prober_start(&al, ALLOWED, 500, 1000, 20, 300000, 10000000), 0);
	rc = ctr_wait_booted(st, sizeof(st));
	if (rc == 0) {
		booted = true;
		wait_listening(15000);
		sleep_ms(3000);
	}
	for (int i = 0; i < 2; i++)
		prober_stop(&pr[i], &d);
	prober_stop(&al, &a);
	if (rc < 0)
		fail_msg("the container did not boot again: %s", strerror(-rc));
	in = d.n[PROBE_BANNER] + d.n[PROBE_NO_BANNER];
	printf("# boot to '%s' in %.1f s; denied client during boot: %s -> %u accepted; allowed: %s\n", st,
	       (now_ms() - t0) / 1000.0, counts_str(&d, db, sizeof(db)), in, counts_str(&a, ab, sizeof(ab)));
	if (in) {
		evidence("reboot");
		fail_msg("reboot with bpfwrap and ssh enabled: %u connections of the denied client %s were "
			 "accepted during boot (%s), want 0", in, DENIED, counts_str(&d, db, sizeof(db)));
	}
	must_sh(10000, "systemctl is-active bpfwrap.service ssh.service");
	expect(ALLOWED, true, "after reboot, allowed client");
	expect(DENIED, false, "after reboot, denied client");
	(void)state;
}

/* test_socket_activation - ssh.socket instead of ssh.service: the sshd rules decide */
static void test_socket_activation(void **state)
{
	reset();
	set_policy("sshd: " ALLOWED "\n", "sshd: " DENIED "\n", "--cgroup system.slice/ssh.socket=sshd");
	must_sh(60000, "systemctl disable ssh.service 2>&1 && systemctl enable --now ssh.socket 2>&1");
	assert_int_equal(wait_listening(15000), 0);
	start_bpfwrap();
	expect(ALLOWED, true, "ssh.socket, allowed client");
	expect(DENIED, false, "ssh.socket, denied client");
	expect(OTHER, true, "ssh.socket, client no rule names");
	(void)state;
}

/* test_name_from_systemd - without =NAME the daemon is the program systemd
 * runs for the unit (sshd for ssh.service), also for a listener older than
 * bpfwrap and after a restart */
static void test_name_from_systemd(void **state)
{
	reset();
	set_policy("sshd: " ALLOWED "\n", "sshd: " DENIED "\n", "--cgroup " SSH_CG);
	must_sh(60000, "systemctl start ssh.service");
	assert_int_equal(wait_listening(15000), 0);
	start_bpfwrap();
	expect(ALLOWED, true, "no =NAME, allowed client");
	expect(DENIED, false, "no =NAME, denied client");
	must_sh(60000, "systemctl restart ssh.service");
	assert_int_equal(wait_listening(15000), 0);
	expect(ALLOWED, true, "no =NAME, after a restart, allowed client");
	expect(DENIED, false, "no =NAME, after a restart, denied client");
	(void)state;
}

/* test_service_covers_its_socket - guarding ssh.service guards ssh.socket,
 * the socket unit that starts it, under sshd's name */
static void test_service_covers_its_socket(void **state)
{
	reset();
	set_policy("sshd: " ALLOWED "\n", "sshd: " DENIED "\n", "--cgroup " SSH_CG);
	must_sh(60000, "systemctl disable ssh.service 2>&1 && systemctl enable --now ssh.socket 2>&1");
	assert_int_equal(wait_listening(15000), 0);
	start_bpfwrap();
	expect(ALLOWED, true, "ssh.socket through ssh.service, allowed client");
	expect(DENIED, false, "ssh.socket through ssh.service, denied client");
	(void)state;
}

/* test_default_slice - the shipped default (--cgroup system.slice): each unit
 * named after its program, sshd's rules apply to sshd started before
 * bpfwrap; bpfwrap's own cgroup is not guarded */
static void test_default_slice(void **state)
{
	reset();
	set_policy("sshd: " ALLOWED "\n", "sshd: " DENIED "\n", "--cgroup system.slice");
	must_sh(60000, "systemctl start ssh.service");
	assert_int_equal(wait_listening(15000), 0);
	start_bpfwrap();
	expect(ALLOWED, true, "system.slice, allowed client");
	expect(DENIED, false, "system.slice, denied client");
	expect(OTHER, true, "system.slice, client no rule names");
	/* every decision had a daemon name */
	must_sh(10000, "bpfwrap status | grep -q '^no owner: *0 '");
	(void)state;
}

/* wait_probe - probe src until its outcome class is want_in, for up to timeout_ms; ms taken or -1 */
static long long wait_probe(const char *src, bool want_in, int timeout_ms)
{
	long long t0 = now_ms();

	for (int i = 0; i < 100 && now_ms() - t0 < timeout_ms; i++) {
		enum probe_result r = probe(src);

		if (r != PROBE_ERROR && (r == PROBE_BANNER) == want_in &&
		    (want_in || r != PROBE_NO_BANNER))
			return now_ms() - t0;
		sleep_ms(200);
	}
	return -1;
}

/* test_fail2ban_ban_and_unban - `echo ... >> /etc/hosts.deny` bans within seconds, `sed -i` lifts it */
static void test_fail2ban_ban_and_unban(void **state)
{
	long long ms;

	reset();
	must_sh(60000, "systemctl start ssh.service");
	assert_int_equal(wait_listening(15000), 0);
	start_bpfwrap();
	expect(OTHER, true, "before the ban");
	must_sh(10000, "echo 'sshd: " OTHER "' >> /etc/hosts.deny");
	ms = wait_probe(OTHER, false, 5000);
	if (ms < 0) {
		evidence("ban");
		fail_msg("after `echo 'sshd: %s' >> /etc/hosts.deny` the client still got in after 5 s", OTHER);
	}
	printf("# ban in force after %lld ms\n", ms);
	must_sh(10000, "sed -i '/" OTHER "/d' /etc/hosts.deny");
	ms = wait_probe(OTHER, true, 5000);
	if (ms < 0) {
		evidence("unban");
		fail_msg("after `sed -i` removed the ban the client %s was still kept out after 5 s", OTHER);
	}
	printf("# unban in force after %lld ms\n", ms);
	expect(DENIED, false, "after the unban, denied client");
	(void)state;
}

/* teardown - stop the container and remove everything made for it */
static int teardown(void **state)
{
	if (booted)
		ctr_sh(out, sizeof(out), 30000, "systemctl stop bpfwrap.service; bpfwrap detach; true");
	ctr_destroy();
	(void)state;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boot_and_install),
		cmocka_unit_test(test_started_after_sshd),
		cmocka_unit_test(test_deny_all_allows_listed),
		cmocka_unit_test(test_status_shows_attachment),
		cmocka_unit_test(test_journal_refused_line),
		cmocka_unit_test(test_started_before_sshd),
		cmocka_unit_test(test_fail2ban_ban_and_unban),
		cmocka_unit_test(test_socket_activation),
		cmocka_unit_test(test_name_from_systemd),
		cmocka_unit_test(test_service_covers_its_socket),
		cmocka_unit_test(test_default_slice),
		cmocka_unit_test(test_restarts_never_admit_denied),
		cmocka_unit_test(test_reboot_enforced_from_start),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests_name("systemd", tests, NULL, teardown);
}
