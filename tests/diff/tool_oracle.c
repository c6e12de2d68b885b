/*
 * tool_oracle.c - decide queries with the real libwrap (Debian's libwrap0),
 * the reference that `bpfwrap match --batch` must agree with.
 *
 * Usage: tool_oracle [-v] [--fork-each] [--allow FILE] [--deny FILE] < queries
 *        tool_oracle [-v] [--fork-each] --dirs DIR...
 *
 * Each stdin line is one query, `DAEMON CLIENT_ADDR CLIENT_NAME USER
 * SERVER_ADDR`, blank-separated; `-` means "not supplied" (libwrap then sees
 * "unknown"). For each query one line `allow` or `deny` is printed, in order.
 * A file not given on the command line is a missing file (empty). With
 * --dirs, each DIR/queries is decided against DIR/hosts.allow and
 * DIR/hosts.deny and the answers go to DIR/oracle.out (one process for many
 * policies: process start-up dominates in sanitizer builds).
 *
 * Isolation. libwrap is decided in child processes, never in this one:
 * option functions change process state (umask, nice, setenv, setgid) and
 * some would exec or exit. A child sets libwrap's `dry_run`, which makes the
 * option functions only check their arguments (spawn, aclexec and twist do
 * not run; nice, linger, keepalive, group and setuid do not act). No socket
 * addresses are given to request_init(), so there is no DNS or ident lookup.
 * stdin/stdout of a child are /dev/null.
 *
 * Forking costs about a millisecond per query on a VM (copy-on-write page
 * faults), so by default one child (a worker) decides up to WORKER_MAX
 * queries in a row, and before each query puts back everything a previous
 * query can have changed: libwrap's globals (dry_run, resident,
 * rfc931_timeout, severities), the umask, and the file descriptors that
 * libwrap leaks when an option error longjmps out of table_match() with the
 * table still open. If a query changed what cannot be put back (uid, gid,
 * groups, nice value, environment), the worker stops after that query and a
 * fresh one continues. A worker that crashes costs that one query (printed
 * as `error`); a fresh worker continues with the next. --fork-each uses one
 * child per query instead (slow; the differential test checks that both
 * modes agree).
 *
 * Errors: a malformed query line, or a query whose child does not finish
 * (it crashed, or libwrap took more than QUERY_SECONDS), prints `error` for that query and a message on stderr, and the exit
 * status is 1; usage errors exit 2. With -v, libwrap's own syslog messages
 * go to stderr, prefixed by the query number.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <tcpd.h>

/* A query libwrap has not decided in this long is stopped and reported as an
 * error (its glob matching backtracks: exponential in the `*`s of a pattern). */
#define QUERY_SECONDS 20

/* Not in tcpd.h, but exported by libwrap.so and used by its own programs. */
extern int hosts_access_verbose;

/* libwrap wants the two logging levels defined by the program (tcpd does). */
int allow_severity = LOG_INFO;
int deny_severity = LOG_WARNING;

#define QUERY_FIELDS 5
#define WORKER_MAX 2000		/* queries per worker: bounds libwrap's leaks */
#define MAX_GROUPS 256

/* How a worker ended (its exit status). */
enum { WORKER_DONE = 0, WORKER_STATE_CHANGED = 20, WORKER_SETUP_FAILED = 21 };

struct query {
	char *line;			/* as read, for messages */
	char *field[QUERY_FIELDS];	/* NULL field[0]: malformed line */
};

static bool verbose;
static unsigned long query_no;		/* 1-based, for messages */

/*
 * Debian builds libwrap with _FORTIFY_SOURCE, so its tcpd_warn()/tcpd_jump()
 * reach syslog through __vsyslog_chk (and __syslog_chk). Defining them here
 * interposes them for the library: with -v the messages go to stderr, else
 * they are dropped (there is no /dev/log on a test box anyway).
 */
void __vsyslog_chk(int prio, int flag, const char *fmt, va_list ap);
void __syslog_chk(int prio, int flag, const char *fmt, ...);

/* vlog_message - print one libwrap log message to stderr when verbose */
static void vlog_message(const char *fmt, va_list ap)
{
	if (!verbose)
		return;
	fprintf(stderr, "oracle: query %lu: libwrap: ", query_no);
	vfprintf(stderr, fmt, ap); /* glibc handles libwrap's %m */
	fputc('\n', stderr);
}

/* __vsyslog_chk - libwrap's logging, redirected (see above) */
void __vsyslog_chk(int prio, int flag, const char *fmt, va_list ap)
{
	vlog_message(fmt, ap);
}

/* __syslog_chk - libwrap's logging, redirected (see above) */
void __syslog_chk(int prio, int flag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_message(fmt, ap);
	va_end(ap);
}

/* split_query - cut a copy of a query line into its 5 fields; -1 if malformed */
static int split_query(char *line, char *field[QUERY_FIELDS])
{
	size_t n = 0;
	char *p = line;

	for (;;) {
		p += strspn(p, " \t\r\n");
		if (*p == '\0')
			break;
		if (n == QUERY_FIELDS)
			return -1;
		field[n++] = p;
		p += strcspn(p, " \t\r\n");
		if (*p != '\0')
			*p++ = '\0';
	}
	return n == QUERY_FIELDS ? 0 : -1;
}

/* Process state a query may change, as a fresh child would see it. */
struct pristine {
	int resident, rfc931_timeout, allow_severity, deny_severity;
	mode_t umask;
	uid_t uid, euid;
	gid_t gid, egid;
	int ngroups;
	gid_t groups[MAX_GROUPS];
	int nice;
	char **environ;		/* the array and a copy of its entries */
	char **env_copy;
	size_t n_env;
};

/* env_count - number of environment entries */
static size_t env_count(void)
{
	size_t n = 0;

	while (environ && environ[n])
		n++;
	return n;
}

/* pristine_save - record the state a fresh child starts with */
static int pristine_save(struct pristine *p)
{
	p->resident = resident;
	p->rfc931_timeout = rfc931_timeout;
	p->allow_severity = allow_severity;
	p->deny_severity = deny_severity;
	p->umask = umask(022);
	umask(p->umask);
	p->uid = getuid();
	p->euid = geteuid();
	p->gid = getgid();
	p->egid = getegid();
	p->ngroups = getgroups(MAX_GROUPS, p->groups);
	errno = 0;
	p->nice = getpriority(PRIO_PROCESS, 0);
	p->environ = environ;
	p->n_env = env_count();
	p->env_copy = malloc((p->n_env + 1) * sizeof(char *));
	if (!p->env_copy)
		return -1;
	if (p->n_env)
		memcpy(p->env_copy, environ, p->n_env * sizeof(char *));
	return p->ngroups < 0 || errno ? -1 : 0;
}

/* pristine_restore - put back what one query may have changed and can be put back */
static void pristine_restore(const struct pristine *p, int keep_fd)
{
	dry_run = 1;
	hosts_access_verbose = verbose;
	resident = p->resident;
	rfc931_timeout = p->rfc931_timeout;
	allow_severity = p->allow_severity;
	deny_severity = p->deny_severity;
	umask(p->umask);
	/* tables and /path files left open by a longjmp out of an option error */
	for (int fd = 3; fd < keep_fd; fd++)
		close(fd);
	close_range((unsigned)keep_fd + 1, ~0U, 0);
}

/* pristine_changed - true if a query changed what cannot be put back */
static bool pristine_changed(const struct pristine *p)
{
	gid_t groups[MAX_GROUPS];
	int n = getgroups(MAX_GROUPS, groups);

	errno = 0;
	return getuid() != p->uid || geteuid() != p->euid || getgid() != p->gid ||
	       getegid() != p->egid || n != p->ngroups ||
	       memcmp(groups, p->groups, (size_t)(n > 0 ? n : 0) * sizeof(gid_t)) != 0 ||
	       getpriority(PRIO_PROCESS, 0) != p->nice || errno != 0 ||
	       environ != p->environ || env_count() != p->n_env ||
	       (p->n_env && memcmp(environ, p->env_copy, p->n_env * sizeof(char *)) != 0);
}

/* decide_one - hosts_access() for one query in the current (child) process */
static int decide_one(struct query *q)
{
	static const int keys[QUERY_FIELDS] = {
		RQ_DAEMON, RQ_CLIENT_ADDR, RQ_CLIENT_NAME, RQ_USER, RQ_SERVER_ADDR,
	};
	struct request_info req;

	request_init(&req, 0);
	for (int i = 0; i < QUERY_FIELDS; i++)
		if (strcmp(q->field[i], "-") != 0)
			request_set(&req, keys[i], q->field[i], 0);
	return hosts_access(&req);
}

/*
 * run_worker - child: decide queries from `first` on, one byte per verdict
 * ('A' allow, 'D' deny) to fd `out`; never returns. Stops at a malformed
 * query, after `max` queries, or after a query that changed process state.
 */
static void run_worker(struct query *q, size_t n, size_t first, size_t max, int out)
{
	struct pristine p;
	int devnull;

	devnull = open("/dev/null", O_RDWR);
	if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 || dup2(devnull, STDOUT_FILENO) < 0)
		_exit(WORKER_SETUP_FAILED);
	if (devnull > STDERR_FILENO)
		close(devnull);
	if (out < STDERR_FILENO || pristine_save(&p) < 0)
		_exit(WORKER_SETUP_FAILED);
	for (size_t i = first; i < n && i - first < max && q[i].field[0]; i++) {
		char verdict;

		query_no = i + 1;
		pristine_restore(&p, out);
		alarm(QUERY_SECONDS);	/* a hang becomes an error that says so */
		verdict = decide_one(&q[i]) ? 'A' : 'D';
		alarm(0);
		fflush(stderr);
		if (write(out, &verdict, 1) != 1)
			_exit(WORKER_SETUP_FAILED);
		if (pristine_changed(&p))
			_exit(WORKER_STATE_CHANGED);
	}
	_exit(WORKER_DONE);
}

/*
 * decide_from - fork a worker for queries from `first` on and collect its
 * verdicts into `verdict`; returns how many it decided, or -1 if it could
 * not be started. *failed is set if it died in the middle of a query,
 * *timed_out too if that query took more than QUERY_SECONDS.
 */
static long decide_from(struct query *q, size_t n, size_t first, size_t max, char *verdict,
			bool *failed, bool *timed_out)
{
	int fds[2], status;
	size_t got = 0;
	pid_t pid;

	*failed = false;
	*timed_out = false;
	if (pipe(fds) < 0) {
		fprintf(stderr, "oracle: pipe: %s\n", strerror(errno));
		return -1;
	}
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "oracle: fork: %s\n", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		run_worker(q, n, first, max, fds[1]);
	}
	close(fds[1]);
	for (;;) {
		char buf[512];
		ssize_t r = read(fds[0], buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r && first + got < n; i++)
			verdict[first + got++] = buf[i];
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "oracle: waitpid: %s\n", strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(status) &&
	    (WEXITSTATUS(status) == WORKER_DONE || WEXITSTATUS(status) == WORKER_STATE_CHANGED))
		return (long)got;
	*timed_out = WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM;
	if (*timed_out)
		fprintf(stderr, "oracle: query %zu: libwrap took more than %d s (stopped; the "
			"rest of this policy's queries are errors too)\n", first + got + 1,
			QUERY_SECONDS);
	else if (WIFSIGNALED(status))
		fprintf(stderr, "oracle: query %zu: libwrap child killed by signal %d\n",
			first + got + 1, WTERMSIG(status));
	else
		fprintf(stderr, "oracle: query %zu: libwrap child exited with status %d\n",
			first + got + 1, WEXITSTATUS(status));
	*failed = true;
	return (long)got;
}

/* read_queries - all lines of in; exits on allocation failure */
static struct query *read_queries(FILE *in, size_t *count)
{
	struct query *q = NULL;
	size_t n = 0, cap = 0, linecap = 0;
	char *line = NULL;

	while (getline(&line, &linecap, in) >= 0) {
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			q = realloc(q, cap * sizeof(*q));
			if (!q) {
				fprintf(stderr, "oracle: out of memory\n");
				exit(1);
			}
		}
		q[n].line = strdup(line);
		if (!q[n].line) {
			fprintf(stderr, "oracle: out of memory\n");
			exit(1);
		}
		if (split_query(line, q[n].field) < 0 || !(q[n].field[0] = strdup(q[n].field[0])))
			q[n].field[0] = NULL;
		else
			/* the other fields point into `line`: keep a private copy of each */
			for (int i = 1; i < QUERY_FIELDS; i++)
				if (!(q[n].field[i] = strdup(q[n].field[i]))) {
					fprintf(stderr, "oracle: out of memory\n");
					exit(1);
				}
		n++;
	}
	free(line);
	*count = n;
	return q;
}

/*
 * decide_stream - every query of `in` against the tables, one answer line
 * each to `out`; 0, or 1 if some query got `error` or output failed.
 */
static int decide_stream(char *allow, char *deny, FILE *in, FILE *out, size_t max)
{
	size_t n, next = 0;
	struct query *q;
	char *verdict;
	int rc = 0;

	hosts_allow_table = allow;
	hosts_deny_table = deny;
	q = read_queries(in, &n);
	verdict = calloc(n + 1, 1);
	if (!verdict) {
		fprintf(stderr, "oracle: out of memory\n");
		exit(1);
	}
	while (next < n) {
		bool failed, timed_out;
		long got;

		if (!q[next].field[0]) {
			fprintf(stderr, "oracle: query %zu: want 5 fields: %s", next + 1, q[next].line);
			verdict[next++] = 'E';
			continue;
		}
		got = decide_from(q, n, next, max, verdict, &failed, &timed_out);
		if (got < 0)
			exit(1);
		next += (size_t)got;
		if (timed_out) {	/* the same policy would hang the next query too */
			while (next < n)
				verdict[next++] = 'E';
		} else if ((failed || got == 0) && next < n) {
			verdict[next++] = 'E';
		}
	}
	for (size_t i = 0; i < n; i++) {
		const char *s = verdict[i] == 'A' ? "allow" : verdict[i] == 'D' ? "deny" : "error";

		if (verdict[i] != 'A' && verdict[i] != 'D')
			rc = 1;
		fprintf(out, "%s\n", s);
	}
	if (ferror(in) || fflush(out) != 0) {
		fprintf(stderr, "oracle: I/O error: %s\n", strerror(errno));
		rc = 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (q[i].field[0])
			for (int k = 0; k < QUERY_FIELDS; k++)
				free(q[i].field[k]);
		free(q[i].line);
	}
	free(q);
	free(verdict);
	return rc;
}

/* decide_dir - DIR/queries against DIR/hosts.allow and DIR/hosts.deny into DIR/oracle.out */
static int decide_dir(const char *dir, size_t max)
{
	char allow[PATH_MAX], deny[PATH_MAX], qpath[PATH_MAX], opath[PATH_MAX];
	FILE *in, *out;
	int rc;

	if (snprintf(allow, sizeof(allow), "%s/hosts.allow", dir) >= (int)sizeof(allow) ||
	    snprintf(deny, sizeof(deny), "%s/hosts.deny", dir) >= (int)sizeof(deny) ||
	    snprintf(qpath, sizeof(qpath), "%s/queries", dir) >= (int)sizeof(qpath) ||
	    snprintf(opath, sizeof(opath), "%s/oracle.out", dir) >= (int)sizeof(opath)) {
		fprintf(stderr, "oracle: path too long: %s\n", dir);
		return 1;
	}
	in = fopen(qpath, "r");
	if (!in) {
		fprintf(stderr, "oracle: %s: %s\n", qpath, strerror(errno));
		return 1;
	}
	out = fopen(opath, "w");
	if (!out) {
		fprintf(stderr, "oracle: %s: %s\n", opath, strerror(errno));
		fclose(in);
		return 1;
	}
	rc = decide_stream(allow, deny, in, out, max);
	fclose(in);
	if (fclose(out) != 0) {
		fprintf(stderr, "oracle: %s: %s\n", opath, strerror(errno));
		rc = 1;
	}
	return rc;
}

/* usage - print how to call the oracle */
static void usage(FILE *out)
{
	fprintf(out, "usage: tool_oracle [-v] [--fork-each] [--allow FILE] [--deny FILE] < queries\n"
		     "       tool_oracle [-v] [--fork-each] --dirs DIR...\n"
		     "query lines: DAEMON CLIENT_ADDR CLIENT_NAME USER SERVER_ADDR ('-' = unknown)\n"
		     "--dirs: DIR/queries against DIR/hosts.allow, DIR/hosts.deny into DIR/oracle.out\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "allow", required_argument, NULL, 'a' },
		{ "deny", required_argument, NULL, 'd' },
		{ "batch", no_argument, NULL, 'b' },
		{ "dirs", no_argument, NULL, 'D' },
		{ "fork-each", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* A path that cannot exist: libwrap treats ENOENT as an empty table. */
	char *allow = "/nonexistent/bpfwrap-oracle/hosts.allow";
	char *deny = "/nonexistent/bpfwrap-oracle/hosts.deny";
	size_t max = WORKER_MAX;
	bool dirs = false;
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "a:d:bDfvh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			allow = optarg;
			break;
		case 'd':
			deny = optarg;
			break;
		case 'b':
			break; /* always batch; accepted for symmetry with bpfwrap */
		case 'D':
			dirs = true;
			break;
		case 'f':
			max = 1;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!dirs) {
		if (optind != argc) {
			usage(stderr);
			return 2;
		}
		return decide_stream(allow, deny, stdin, stdout, max);
	}
	for (int i = optind; i < argc; i++)
		if (decide_dir(argv[i], max) != 0)
			rc = 1;
	return rc;
}
