/*
 * fail2ban.h - fail2ban's stock tcpwrapper filter as a POSIX ERE, for the
 * tests that check bpfwrap's log lines with it (tests/unit/test_logger.c,
 * tests/integration/test_agent.c). Data only: nothing here can fail.
 */
#ifndef BPFWRAP_TESTS_FAIL2BAN_H
#define BPFWRAP_TESTS_FAIL2BAN_H

/*
 * fail2ban's stock tcpwrapper filter (config/filter.d/tcpwrapper.conf with
 * common.conf's [lt_file] __prefix_line, fail2ban/fail2ban on GitHub):
 *   failregex = ^%(__prefix_line)srefused connect from \S+ \(<HOST>\)
 * converted by hand to POSIX ERE: (?:...) -> (...), \S -> [^[:space:]],
 * \s -> [[:space:]], \d -> [0-9], [\[\(] -> [[(], [\]\)] -> [])]; <HOST> as
 * its ip4 | ip6 | dns alternatives. fail2ban removes the leading date first
 * (datepattern {^LN-BEG}), so the lines given to it here start after the date.
 */
static const char fail2ban_tcpwrapper_ere[] =
	"^(\\[\\])?[[:space:]]*"
	"(<[^.]+\\.[^.]+>[[:space:]]+)?"				/* bsd verbose */
	"([^[:space:]]+[[:space:]]+)?"					/* hostname */
	"(kernel:[[:space:]]?\\[ *[0-9]+\\.[0-9]+\\]:?[[:space:]]+)?"
	"(@vserver_[^[:space:]]+[[:space:]]+)?"
	"(((\\[[0-9]+\\])?:[[:space:]]+[[(]?[^[:space:]]*(\\([^[:space:]]+\\))?[])]?:?"
	"|[[(]?[^[:space:]]*(\\([^[:space:]]+\\))?[])]?:?(\\[[0-9]+\\])?:?)[[:space:]]+)?"
	"(\\[ID [0-9]+ [^[:space:]]+\\][[:space:]]+)?"
	"refused connect from [^[:space:]]+ \\("
	"((::f{4,6}:)?([0-9]{1,3}(\\.[0-9]{1,3}){3})"			/* HOST: ip4 */
	"|\\[?([0-9a-fA-F:]*:[0-9a-fA-F:.]*)\\]?"			/* ip6 */
	"|([A-Za-z0-9_.^-]*[A-Za-z0-9_]))"				/* dns */
	"\\)";

#endif /* BPFWRAP_TESTS_FAIL2BAN_H */
