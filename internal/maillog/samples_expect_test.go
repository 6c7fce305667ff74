package maillog

// expected holds, per sample file, the outcome of each line in order: the
// events it gives, or "ignored: " and why. The comments quote the line.
var expected = map[string][]string{
	"postfix-grok-patterns-test-messages.tsv": {
		"ignored: Postfix daemon not followed (anvil)",                                                                 // 1: Jan  2 03:04:05 mx postfix/anvil[4242]: statistics: max cache size 1 a
		"ignored: Postfix daemon not followed (anvil)",                                                                 // 2: Jan  2 03:04:05 mx postfix/anvil[4242]: statistics: max connection cou
		"ignored: Postfix daemon not followed (anvil)",                                                                 // 3: Jan  2 03:04:05 mx postfix/anvil[4242]: statistics: max connection rat
		"ignored: Postfix daemon not followed (anvil)",                                                                 // 4: Jan  2 03:04:05 mx postfix/anvil[4242]: statistics: max connection cou
		"ignored: Postfix daemon not followed (anvil)",                                                                 // 5: Jan  2 03:04:05 mx postfix/anvil[4242]: statistics: max connection rat
		"ignored: Postfix daemon not followed (anvil)",                                                                 // 6: Jan  2 03:04:05 mx postfix/anvil[4242]: statistics: max connection cou
		"ignored: Postfix daemon not followed (anvil)",                                                                 // 7: Jan  2 03:04:05 mx postfix/anvil[4242]: statistics: max connection rat
		"ignored: Postfix daemon not followed (anvil)",                                                                 // 8: Jan  2 03:04:05 mx postfix/anvil[4242]: statistics: max connection cou
		"ignored: Postfix daemon not followed (anvil)",                                                                 // 9: Jan  2 03:04:05 mx postfix/anvil[4242]: statistics: max connection rat
		"ignored: Postfix daemon not followed (bounce)",                                                                // 10: Jan  2 03:04:05 mx postfix/bounce[4242]: 17CCA8044: sender non-deliver
		"ignored: Postfix daemon not followed (bounce)",                                                                // 11: Jan  2 03:04:05 mx postfix/bounce[4242]: 65AFB8B5: sender delivery sta
		"ignored: Postfix daemon not followed (bounce)",                                                                // 12: Jan  2 03:04:05 mx postfix/bounce[4242]: 264FE1A18: sender delay notif
		"ignored: Postfix daemon not followed (bounce)",                                                                // 13: Jan  2 03:04:05 mx postfix/bounce[4242]: 482E4404AC8: postmaster non-d
		"ignored: remembered: message id → queue id",                                                                   // 14: Jan  2 03:04:05 mx postfix/cleanup[4242]: 0F5383D: message-id=<544D252
		"ignored: empty message id",                                                                                    // 15: Jan  2 03:04:05 mx postfix/cleanup[4242]: 4104E3D: message-id=<>
		"ignored: not a reject",                                                                                        // 16: Jan  2 03:04:05 mx postfix/cleanup[4242]: 4104E3D: milter-header-redir
		"spam client=61.238.241.86 source=follow:postfix-milter",                                                       // 17: Jan  2 03:04:05 mx postfix/cleanup[4242]: 4104E3D: milter-reject: END-
		"ignored: not a reject",                                                                                        // 18: Jan  2 03:04:05 mx postfix/cleanup[4242]: warning: dict_ldap_get_value
		"ignored: not a reject",                                                                                        // 19: Jan  2 03:04:05 mx postfix/cleanup[4242]: D8B07E3DB6: warning: header
		"ignored: not a reject",                                                                                        // 20: Jan  2 03:04:05 mx postfix/cleanup[4242]: D95341E50350: info: header S
		"ignored: not a reject",                                                                                        // 21: Jan  2 03:04:05 mx postfix/cleanup[4242]: 413E164734: info: header Con
		"ignored: not a reject",                                                                                        // 22: Jan  2 03:04:05 mx postfix/cleanup[4242]: 48rT2v1hQrz1J0N: prepend: he
		"ignored: empty message id",                                                                                    // 23: Jan  2 03:04:05 mx postfix/cleanup[4242]: ADD961003206D: message-id==?
		"ignored: empty message id",                                                                                    // 24: Jan  2 03:04:05 mx postfix/cleanup[4242]: 246884008A: message-id==?utf
		"ignored: not a reject",                                                                                        // 25: Jan  2 03:04:05 mx postfix/cleanup[4242]: warning: 9BECF3F19D: sender_
		"ignored: no syslog or rspamd log header",                                                                      // 26: ehlo=2 starttls=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=5/7
		"ignored: no syslog or rspamd log header",                                                                      // 27: helo=1 ehlo=1/2 quit=1 commands=3/4
		"ignored: no syslog or rspamd log header",                                                                      // 28: helo=1 mail=2 rcpt=1 data=1 rset=1 quit=1 commands=7
		"ignored: no syslog or rspamd log header",                                                                      // 29: helo=1 quit=1 unknown=0/2 commands=2/4
		"ignored: no syslog or rspamd log header",                                                                      // 30: helo=1 auth=0/1 quit=1 commands=2/3
		"ignored: no syslog or rspamd log header",                                                                      // 31: 0.2/0.02/0.04/3.3
		"ignored: Postfix daemon not followed (discard)",                                                               // 32: Jan  2 03:04:05 mx postfix/discard[4242]: 25F2E5E061: to=<george.desan
		"ignored: Postfix daemon not followed (dnsblog)",                                                               // 33: Jan  2 03:04:05 mx postfix/dnsblog[4242]: addr 61.238.241.86 listed by
		"ignored: Postfix daemon not followed (dnsblog)",                                                               // 34: Jan  2 03:04:05 mx postfix/dnsblog[4242]: addr 2607:f8b0:4003:c01::23a
		"ignored: Postfix daemon not followed (dnsblog)",                                                               // 35: Jan  2 03:04:05 mx postfix/dnsblog[4242]: warning: dnsblog_query: look
		"ignored: Postfix daemon not followed (error)",                                                                 // 36: Jan  2 03:04:05 mx postfix/error[4242]: 2DC5552A34: to=<user@yahoo.com
		"ignored: Postfix daemon not followed (error)",                                                                 // 37: Jan  2 03:04:05 mx postfix/error[4242]: 3E29030F8637E: to=<user@yahoo.
		"ignored: Postfix daemon not followed (lmtp)",                                                                  // 38: Jan  2 03:04:05 mx postfix/lmtp[4242]: 7EE668039: to=<admin@example.co
		"ignored: Postfix daemon not followed (local)",                                                                 // 39: Jan  2 03:04:05 mx postfix/local[4242]: 2A22C263F6: to=user@hostname.e
		"ignored: Postfix daemon not followed (local)",                                                                 // 40: Jan  2 03:04:05 mx postfix/local[4242]: 892A0205B6: to=ghdsgfhdslfh@lo
		"ignored: Postfix daemon not followed (local)",                                                                 // 41: Jan  2 03:04:05 mx postfix/local[4242]: warning: dict_nis_init: NIS do
		"ignored: Postfix daemon not followed (master)",                                                                // 42: Jan  2 03:04:05 mx postfix/master[4242]: daemon started -- version 2.1
		"ignored: Postfix daemon not followed (master)",                                                                // 43: Jan  2 03:04:05 mx postfix/master[4242]: terminating on signal 15
		"ignored: Postfix daemon not followed (master)",                                                                // 44: Jan  2 03:04:05 mx postfix/master[4242]: reload -- version 2.11.0, con
		"ignored: Postfix daemon not followed (master)",                                                                // 45: Jan  2 03:04:05 mx postfix/master[4242]: warning: process /usr/local/l
		"ignored: Postfix daemon not followed (pickup)",                                                                // 46: Jan  2 03:04:05 mx postfix/pickup[4242]: D2FAE20586: uid=0 from=<fail2
		"ignored: Postfix daemon not followed (pipe)",                                                                  // 47: Jan  2 03:04:05 mx postfix/pipe[4242]: 0F5383D: to=<tom@example.com>,
		"ignored: Postfix daemon not followed (pipe)",                                                                  // 48: Jan  2 03:04:05 mx postfix/pipe[4242]: 153053D: to=<tom@example.com>,
		"ignored: Postfix daemon not followed (pipe)",                                                                  // 49: Jan  2 03:04:05 mx postfix/pipe[4242]: 95ECE24E0: to=<tom@example.com>
		"ignored: Postfix daemon not followed (pipe)",                                                                  // 50: Jan  2 03:04:05 mx postfix/pipe[4242]: 2F6C83D: to=<user@example.org>,
		"ignored: Postfix daemon not followed (postdrop)",                                                              // 51: Jan  2 03:04:05 mx postfix/postdrop[4242]: warning: uid=0: File too la
		"ignored: Postfix daemon not followed (postmap)",                                                               // 52: Jan  2 03:04:05 mx postfix/postmap[4242]: warning: /etc/postfix/conf.d
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 53: Jan  2 03:04:05 mx postfix/postscreen[4242]: cache btree:/var/lib/post
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 54: Jan  2 03:04:05 mx postfix/postscreen[4242]: CONNECT from [61.238.241.
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 55: Jan  2 03:04:05 mx postfix/postscreen[4242]: DISCONNECT [216.81.72.72]
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 56: Jan  2 03:04:05 mx postfix/postscreen[4242]: PASS OLD [61.238.241.86]:
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 57: Jan  2 03:04:05 mx postfix/postscreen[4242]: PASS OLD [2604:8d00:0:1::
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 58: Jan  2 03:04:05 mx postfix/postscreen[4242]: PASS NEW [2607:f8b0:4003:
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 59: Jan  2 03:04:05 mx postfix/postscreen[4242]: WHITELISTED [61.238.241.8
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 60: Jan  2 03:04:05 mx postfix/postscreen[4242]: BLACKLISTED [61.238.241.8
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 61: Jan  2 03:04:05 mx postfix/postscreen[4242]: WHITELIST VETO [61.238.24
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 62: Jan  2 03:04:05 mx postfix/postscreen[4242]: PREGREET 6 after 1.2 from
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 63: Jan  2 03:04:05 mx postfix/postscreen[4242]: DNSBL rank 3 for [111.73.
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 64: Jan  2 03:04:05 mx postfix/postscreen[4242]: HANGUP after 63 from [111
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 65: Jan  2 03:04:05 mx postfix/postscreen[4242]: HANGUP after 0 from [66.5
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 66: Jan  2 03:04:05 mx postfix/postscreen[4242]: COMMAND TIME LIMIT from [
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 67: Jan  2 03:04:05 mx postfix/postscreen[4242]: COMMAND TIME LIMIT from [
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 68: Jan  2 03:04:05 mx postfix/postscreen[4242]: COMMAND TIME LIMIT from [
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 69: Jan  2 03:04:05 mx postfix/postscreen[4242]: COMMAND TIME LIMIT from [
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 70: Jan  2 03:04:05 mx postfix/postscreen[4242]: COMMAND TIME LIMIT from [
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 71: Jan  2 03:04:05 mx postfix/postscreen[4242]: COMMAND TIME LIMIT from [
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 72: Jan  2 03:04:05 mx postfix/postscreen[4242]: COMMAND COUNT LIMIT from
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 73: Jan  2 03:04:05 mx postfix/postscreen[4242]: COMMAND LENGTH LIMIT from
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 74: Jan  2 03:04:05 mx postfix/postscreen[4242]: NON-SMTP COMMAND from [93
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 75: Jan  2 03:04:05 mx postfix/postscreen[4242]: NOQUEUE: reject: CONNECT
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 76: Jan  2 03:04:05 mx postfix/postscreen[4242]: NOQUEUE: reject: CONNECT
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 77: Jan  2 03:04:05 mx postfix/postscreen[4242]: COMMAND PIPELINING from [
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 78: Jan  2 03:04:05 mx postfix/postscreen[4242]: BARE NEWLINE from [88.208
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 79: Jan  2 03:04:05 mx postfix/postscreen[4242]: NOQUEUE: reject: RCPT fro
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 80: Jan  2 03:04:05 mx postfix/postscreen[4242]: NOQUEUE: reject: RCPT fro
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 81: Jan  2 03:04:05 mx postfix/postscreen[4242]: warning: getpeername: Tra
		"ignored: postscreen event (greypit screens clients itself)",                                                   // 82: Jan  2 03:04:05 mx postfix/postscreen[4242]: ALLOWLIST VETO [61.238.24
		"ignored: Postfix daemon not followed (postsuper)",                                                             // 83: Jan  2 03:04:05 mx postfix/postsuper[4242]: D4F2023DB: removed
		"ignored: Postfix daemon not followed (postsuper)",                                                             // 84: Jan  2 03:04:05 mx postfix/postsuper[4242]: D4F2023DB: requeued
		"ignored: Postfix daemon not followed (postsuper)",                                                             // 85: Jan  2 03:04:05 mx postfix/postsuper[4242]: D4F2023DB: placed on hold
		"ignored: Postfix daemon not followed (postsuper)",                                                             // 86: Jan  2 03:04:05 mx postfix/postsuper[4242]: D4F2023DB: released from h
		"ignored: Postfix daemon not followed (postsuper)",                                                             // 87: Jan  2 03:04:05 mx postfix/postsuper[4242]: Deleted: 115 messages
		"ignored: Postfix daemon not followed (postsuper)",                                                             // 88: Jan  2 03:04:05 mx postfix/postsuper[4242]: Requeued: 1 message
		"ignored: Postfix daemon not followed (postsuper)",                                                             // 89: Jan  2 03:04:05 mx postfix/postsuper[4242]: Placed on hold: 67 message
		"ignored: Postfix daemon not followed (postsuper)",                                                             // 90: Jan  2 03:04:05 mx postfix/postsuper[4242]: Released from hold: 13 mes
		"ignored: Postfix daemon not followed (qmgr)",                                                                  // 91: Jan  2 03:04:05 mx postfix/qmgr[4242]: 0F5383D: removed
		"ignored: Postfix daemon not followed (qmgr)",                                                                  // 92: Jan  2 03:04:05 mx postfix/qmgr[4242]: 0F5383D: from=<owner-postfix-us
		"ignored: Postfix daemon not followed (qmgr)",                                                                  // 93: Jan  2 03:04:05 mx postfix/qmgr[4242]: warning: bounce_queue_lifetime
		"ignored: Postfix daemon not followed (qmgr)",                                                                  // 94: Jan  2 03:04:05 mx postfix/qmgr[4242]: 585BC3F: from=<>, status=expire
		"ignored: Postfix daemon not followed (qmgr)",                                                                  // 95: Jan  2 03:04:05 mx postfix/qmgr[4242]: 66C15648577B: from=<uvnhbl@yaho
		"ignored: Postfix daemon not followed (qmgr)",                                                                  // 96: Jan  2 03:04:05 mx postfix/qmgr[4242]: ED06590130AA1C9D6D862: skipped,
		"ignored: no syslog or rspamd log header",                                                                      // 97: 1.example.com.si[private/dovecot-lmtp]
		"ignored: Postfix daemon not followed (scache)",                                                                // 98: Jan  2 03:04:05 mx postfix/scache[4242]: statistics: domain lookup hit
		"ignored: Postfix daemon not followed (scache)",                                                                // 99: Jan  2 03:04:05 mx postfix/scache[4242]: statistics: start interval De
		"ignored: Postfix daemon not followed (scache)",                                                                // 100: Jan  2 03:04:05 mx postfix/scache[4242]: statistics: address lookup hi
		"ignored: Postfix daemon not followed (scache)",                                                                // 101: Jan  2 03:04:05 mx postfix/scache[4242]: statistics: max simultaneous
		"ignored: Postfix daemon not followed (script)",                                                                // 102: Jan  2 03:04:05 mx postfix/script[4242]: warning: symlink leaves direc
		"ignored: Postfix daemon not followed (sendmail)",                                                              // 103: Jan  2 03:04:05 mx postfix/sendmail[4242]: fatal: root(0): message fil
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 104: Jan  2 03:04:05 mx postfix/smtp[4242]: 7EE668039: to=<admin@example.co
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 105: Jan  2 03:04:05 mx postfix/smtp[4242]: 0D9633D: to=<jos@example.com>,
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 106: Jan  2 03:04:05 mx postfix/smtp[4242]: Untrusted TLS connection establ
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 107: Jan  2 03:04:05 mx postfix/smtp[4242]: Untrusted TLS connection establ
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 108: Jan  2 03:04:05 mx postfix/smtp[4242]: connect to intern.nl[194.109.6.
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 109: Jan  2 03:04:05 mx postfix/smtp[4242]: B99FE3D: lost connection with m
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 110: Jan  2 03:04:05 mx postfix/smtp[4242]: connect to mail2.crabruzzo.it[2
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 111: Jan  2 03:04:05 mx postfix/smtp[4242]: Trusted TLS connection establis
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 112: Jan  2 03:04:05 mx postfix/smtp[4242]: Verified TLS connection establi
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 113: Jan  2 03:04:05 mx postfix/smtp[4242]: AD6E41CDC05C: to=<admin@example
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 114: Jan  2 03:04:05 mx postfix/smtp[4242]: 4E74613FE76: to=<redacted@gmail
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 115: Jan  2 03:04:05 mx postfix/smtp[4242]: warning: problem talking to ser
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 116: Jan  2 03:04:05 mx postfix/smtp[4242]: ED59C3D: host mail2.example.com
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 117: Jan  2 03:04:05 mx postfix/smtp[4242]: 1234ABCDEF: host relay.example.
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 118: Jan  2 03:04:05 mx postfix/smtp[4242]: 78D6B41: conversation with mx00
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 119: Jan  2 03:04:05 mx postfix/smtp[4242]: 644D53D: host gmail-smtp-in.l.g
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 120: Jan  2 03:04:05 mx postfix/smtp[4242]: 2690D8044: host mta7.am0.yahood
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 121: Jan  2 03:04:05 mx postfix/smtp[4242]: connect to aspmx.l.google.com[2
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 122: Jan  2 03:04:05 mx postfix/smtp[4242]: A0E85200BD: to=<whatever-user@l
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 123: Jan  2 03:04:05 mx postfix/smtp[4242]: certificate verification failed
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 124: Jan  2 03:04:05 mx postfix/smtp[4242]: certificate verification failed
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 125: Jan  2 03:04:05 mx postfix/smtp[4242]: SSL_connect error to mail.examp
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 126: Jan  2 03:04:05 mx postfix/smtp[4242]: SSL_connect error to mail.examp
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 127: Jan  2 03:04:05 mx postfix/smtp[4242]: B0ADE20FC7: enabling PIX workar
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 128: Jan  2 03:04:05 mx postfix/smtp[4242]: D0F29603B4: SASL authentication
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 129: Jan  2 03:04:05 mx postfix/smtp[4242]: 745137AA: lost connection with
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 130: Jan  2 03:04:05 mx postfix/smtp[4242]: 40197AA: host mg2.egov.bg[213.9
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 131: Jan  2 03:04:05 mx postfix/smtp[4242]: Untrusted TLS connection establ
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 132: Jan  2 03:04:05 mx postfix/smtp[4242]: Trusted TLS connection establis
		"ignored: not a reject",                                                                                        // 133: Jan  2 03:04:05 mx postfix/smtpd[4242]: connect from 061238241086.stat
		"ignored: not a reject",                                                                                        // 134: Jan  2 03:04:05 mx postfix/smtpd[4242]: disconnect from 061238241086.s
		"ignored: remembered: queue id → client",                                                                       // 135: Jan  2 03:04:05 mx postfix/smtpd[4242]: 4104E3D: client=061238241086.s
		"trap_candidate client=61.238.241.86 address=toernooicommissie@example.com source=follow:postfix-unknown-user", // 136: Jan  2 03:04:05 mx postfix/smtpd[4242]: NOQUEUE: reject: RCPT from 061
		"ignored: not a reject",                                                                                        // 137: Jan  2 03:04:05 mx postfix/smtpd[4242]: lost connection after STARTTLS
		"ignored: not a reject",                                                                                        // 138: Jan  2 03:04:05 mx postfix/smtpd[4242]: warning: hostname exemple.com
		"ignored: not a reject",                                                                                        // 139: Jan  2 03:04:05 mx postfix/smtpd[4242]: timeout after CONNECT from unk
		"ignored: policy reject, not an unknown user or a content verdict",                                             // 140: Jan  2 03:04:05 mx postfix/smtpd[4242]: NOQUEUE: reject: RCPT from unk
		"ignored: policy reject, not an unknown user or a content verdict",                                             // 141: Jan  2 03:04:05 mx postfix/smtpd[4242]: NOQUEUE: reject: RCPT from new
		"ignored: not a reject",                                                                                        // 142: Jan  2 03:04:05 mx postfix/smtpd[4242]: Anonymous TLS connection estab
		"ignored: not a reject",                                                                                        // 143: Jan  2 03:04:05 mx postfix/smtpd[4242]: lost connection after DATA (77
		"ignored: not a reject",                                                                                        // 144: Jan  2 03:04:05 mx postfix/smtpd[4242]: lost connection after UNKNOWN
		"ignored: not a reject",                                                                                        // 145: Jan  2 03:04:05 mx postfix/smtpd[4242]: lost connection after RSET fro
		"ignored: not a reject",                                                                                        // 146: Jan  2 03:04:05 mx postfix/smtpd[4242]: timeout after END-OF-MESSAGE f
		"ignored: not a reject",                                                                                        // 147: Jan  2 03:04:05 mx postfix/smtpd[4242]: improper command pipelining af
		"ignored: not a reject",                                                                                        // 148: Jan  2 03:04:05 mx postfix/smtpd[4242]: lost connection after DATA (0
		"ignored: policy reject, not an unknown user or a content verdict",                                             // 149: Jan  2 03:04:05 mx postfix/smtpd[4242]: NOQUEUE: reject: VRFY from unk
		"ignored: VRFY probe, not a delivery attempt",                                                                  // 150: Jan  2 03:04:05 mx postfix/smtpd[4242]: NOQUEUE: reject: VRFY from unk
		"ignored: not a reject",                                                                                        // 151: Jan  2 03:04:05 mx postfix/smtpd[4242]: SSL_accept error from unknown[
		"ignored: not a reject",                                                                                        // 152: Jan  2 03:04:05 mx postfix/smtpd[4242]: proxy-accept: END-OF-MESSAGE:
		"ignored: reject without a reply code",                                                                         // 153: Jan  2 03:04:05 mx postfix/smtpd[4242]: proxy-reject: END-OF-MESSAGE:
		"ignored: proxy-reject without a queue id: client unknown",                                                     // 154: Jan  2 03:04:05 mx postfix/smtpd[4242]: proxy-reject: END-OF-MESSAGE:
		"ignored: not a reject",                                                                                        // 155: Jan  2 03:04:05 mx postfix/smtpd[4242]: SSL_accept error from unknown[
		"ignored: not a reject",                                                                                        // 156: Jan  2 03:04:05 mx postfix/smtpd[4242]: SSL_accept error from ssl-tool
		"ignored: not a reject",                                                                                        // 157: Jan  2 03:04:05 mx postfix/smtpd[4242]: SSL_accept error from eu-smtp-
		"ignored: action discard is not a reject",                                                                      // 158: Jan  2 03:04:05 mx postfix/smtpd[4242]: NOQUEUE: discard: MAIL from cc
		"ignored: action filter is not a reject",                                                                       // 159: Jan  2 03:04:05 mx postfix/smtpd[4242]: NOQUEUE: filter: RCPT from unk
		"ignored: not a reject",                                                                                        // 160: Jan  2 03:04:05 mx postfix/smtpd[4242]: disconnect from unknown[72.10.
		"ignored: not a reject",                                                                                        // 161: Jan  2 03:04:05 mx postfix/smtpd[4242]: warning: ec2-3-84-57-208.compu
		"ignored: policy reject, not an unknown user or a content verdict",                                             // 162: Jan  2 03:04:05 mx postfix/smtpd[4242]: NOQUEUE: reject: RCPT from 061
		"ignored: reject_warning is a dry run, nothing was rejected",                                                   // 163: Jan  2 03:04:05 mx postfix/smtpd[4242]: NOQUEUE: reject_warning: RCPT
		"ignored: not a reject",                                                                                        // 164: Jan  2 03:04:05 mx postfix/smtpd[4242]: disconnect from unknown[unknow
		"ignored: not a reject",                                                                                        // 165: Jan  2 03:04:05 mx postfix/smtpd[4242]: lost connection after BDAT fro
		"ignored: not a reject",                                                                                        // 166: Jan  2 03:04:05 mx postfix/smtpd[4242]: disconnect from example.net[15
		"ignored: not a reject",                                                                                        // 167: Jan  2 03:04:05 mx postfix/smtpd[4242]: disconnect from unknown[93.188
		"ignored: not a reject",                                                                                        // 168: Jan  2 03:04:05 mx postfix/smtpd[4242]: bare <LF> received after CONNE
		"ignored: not a reject",                                                                                        // 169: Jan  2 03:04:05 mx postfix/smtpd[4242]: Anonymous TLS connection estab
		"ignored: temporary (4xx) reject, not a verdict",                                                               // 170: Jan  2 03:04:05 mx postfix/smtpd[4242]: NOQUEUE: milter-reject: RCPT f
		"ignored: not a reject",                                                                                        // 171: Jan  2 03:04:05 mx postfix/smtpd[4242]: discarding EHLO keywords: CHUN
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 172: Jan  2 03:04:05 mx postfix/smtp[4242]: 7EE668039: to=<user@example.com
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 173: Jan  2 03:04:05 mx postfix/smtp[4242]: 7EE668039: to=<user@example.com
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 174: Jan  2 03:04:05 mx postfix/smtp[4242]: 7EE668039: to=<user@example.com
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 175: Jan  2 03:04:05 mx postfix/smtp[4242]: 7EE668039: to=<user@example.com
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 176: Jan  2 03:04:05 mx postfix/smtp[4242]: 7EE668039: to=<user@example.com
		"ignored: Postfix daemon not followed (smtp)",                                                                  // 177: Jan  2 03:04:05 mx postfix/smtp[4242]: 7EE668039: to=<user@example.com
		"ignored: no syslog or rspamd log header",                                                                      // 178: dane
		"ignored: no syslog or rspamd log header",                                                                      // 179: dane:none
		"ignored: no syslog or rspamd log header",                                                                      // 180: may?
		"ignored: no syslog or rspamd log header",                                                                      // 181: dane/requiretls
		"ignored: no syslog or rspamd log header",                                                                      // 182: dane/requiretls?
		"ignored: no syslog or rspamd log header",                                                                      // 183: dane/!requiretls:nostarttls
		"ignored: Postfix daemon not followed (tlsmgr)",                                                                // 184: Jan  2 03:04:05 mx postfix/tlsmgr[4242]: warning: request to update ta
		"ignored: Postfix daemon not followed (tlsproxy)",                                                              // 185: Jan  2 03:04:05 mx postfix/tlsproxy[4242]: DISCONNECT [82.118.17.142]:
		"ignored: Postfix daemon not followed (tlsproxy)",                                                              // 186: Jan  2 03:04:05 mx postfix/tlsproxy[4242]: CONNECT from [82.118.17.142
		"ignored: Postfix daemon not followed (trivial-rewrite)",                                                       // 187: Jan  2 03:04:05 mx postfix/trivial-rewrite[4242]: warning: virtual_ali
		"ignored: Postfix daemon not followed (trivial-rewrite)",                                                       // 188: Jan  2 03:04:05 mx postfix/trivial-rewrite[4242]: warning: dict_ldap_l
		"ignored: Postfix daemon not followed (verify)",                                                                // 189: Jan  2 03:04:05 mx postfix/verify[4242]: cache lmdb:/var/lib/postfix/v
		"ignored: Postfix daemon not followed (verify)",                                                                // 190: Jan  2 03:04:05 mx postfix/verify[4242]: cache ???????????????????????
		"ignored: Postfix daemon not followed (virtual)",                                                               // 191: Jan  2 03:04:05 mx postfix/virtual[4242]: B657F2DB195D: to=<postmaster
	},
	"crowdsec-postfix-logs.log": {
		"ignored: not a reject", // 1: May 11 04:02:36 host1 postfix/smtpd[26897]: warning: unknown[192.168.1
		"ignored: policy reject, not an unknown user or a content verdict", // 2: May 11 04:02:37 host1 postfix/smtpd[26897]: NOQUEUE: reject: RCPT from
		"ignored: policy reject, not an unknown user or a content verdict", // 3: 2024-08-26T01:33:38.572449+00:00 machine postfix/smtpd[60203]: NOQUEUE
		"ignored: policy reject, not an unknown user or a content verdict", // 4: 2024-08-25T12:31:56.154748+00:00 machine postfix/smtpd[3887453]: NOQUE
		"ignored: policy reject, not an unknown user or a content verdict", // 5: Jun 04 22:24:28 machine postfix/smtpd[3967801]: NOQUEUE: reject: RCPT
		"ignored: not a reject", // 6: 2024-10-31T12:38:21.817327+00:00 machine postfix/submission/smtpd[2634
		"ignored: not a reject", // 7: 2025-02-27T07:14:47.545612+00:00 machine postfix/submission/smtpd[4791
	},
	"crowdsec-postscreen-logs.log": {
		"ignored: postscreen event (greypit screens clients itself)", // 1: Oct 25 04:24:59 test postfix/postscreen[22244]: PREGREET 16 after 2.6
		"ignored: postscreen event (greypit screens clients itself)", // 2: Jul 12 15:59:44 mail postfix/postscreen[1120148]: PREGREET 47 after 0
	},
	"crowdsec-postfix-honeypot-users.log": {
		"ignored: not a reject", // 1: May  6 09:25:41 mail postfix/smtps/smtpd[16997]: warning: unknown[203.
		"ignored: not a reject", // 2: May  6 09:30:12 mail postfix/smtps/smtpd[17001]: warning: unknown[203.
		"ignored: not a reject", // 3: May  6 09:35:55 mail postfix/smtps/smtpd[17005]: warning: unknown[203.
		"ignored: not a reject", // 4: May  6 09:40:22 mail postfix/smtps/smtpd[17009]: warning: unknown[203.
		"ignored: not a reject", // 5: May  6 09:45:30 mail postfix/smtps/smtpd[17013]: warning: unknown[203.
		"ignored: not a reject", // 6: May  6 09:50:15 mail postfix/smtps/smtpd[17017]: warning: unknown[203.
		"ignored: not a reject", // 7: May  6 09:55:00 mail postfix/smtps/smtpd[17021]: warning: unknown[203.
		"ignored: not a reject", // 8: May  6 10:00:00 mail postfix/smtps/smtpd[17025]: warning: unknown[203.
		"ignored: not a reject", // 9: May  6 10:05:00 mail postfix/smtps/smtpd[17029]: warning: unknown[203.
	},
	"crowdsec-amavis.log": {
		"ignored: amavis INFECTED verdict is not spam", // 1: Feb 23 04:55:57 mrelmx42 amavis[4051607]: (4051607-09) Blocked INFECTE
	},
	"rspamd-faq-sample.log": {
		"ignored: rspamd line without a verdict",         // 1: 2016-03-18 15:15:01 #29588(normal) <b120f6>; task; accept_socket: acce
		"ignored: remembered: message id → queue id",     // 2: 2016-03-18 15:15:01 #29588(normal) <b120f6>; task; rspamd_message_pars
		"ignored: rspamd action no action is not reject", // 3: 2016-03-18 15:15:01 #29588(normal) <b120f6>; task; rspamd_task_write_l
	},
	"joins.log": {
		"ignored: remembered: queue id → client",                                                                // 1: Dec  1 10:00:01 mx postfix/smtpd[2001]: 3F1A2B4C5D: client=mail.exampl
		"ignored: remembered: message id → queue id",                                                            // 2: Dec  1 10:00:01 mx postfix/cleanup[2002]: 3F1A2B4C5D: message-id=<2026
		"ignored: SpamAssassin verdict without message id (acted on at its result: line)",                       // 3: Dec  1 10:00:02 mx spamd[3001]: spamd: identified spam (12.3/5.0) for
		"spam client=192.0.2.25 source=follow:spamassassin",                                                     // 4: Dec  1 10:00:02 mx spamd[3001]: spamd: result: Y 12 - BAYES_99,URIBL_B
		"ignored: SpamAssassin clean message (ham from logs is not acted on)",                                   // 5: Dec  1 10:00:03 mx spamd[3001]: spamd: clean message (-0.1/5.0) for no
		"ignored: SpamAssassin result: not spam",                                                                // 6: Dec  1 10:00:03 mx spamd[3001]: spamd: result: . 0 - ALL_TRUSTED scant
		"ignored: message id not seen on a Postfix cleanup line: client address unknown",                        // 7: Dec  1 10:00:04 mx spamd[3001]: spamd: result: Y 9 - GTUBE scantime=0.
		"ignored: remembered: queue id → client",                                                                // 8: Dec  1 10:00:05 mx postfix/smtpd[2001]: 7C8D9E0F12: client=unknown[200
		"spam client=2001:db8::25 source=follow:rspamd",                                                         // 9: 2026-12-01T10:00:06.000000+00:00 mx rspamd[4001]: <8ae27d>; proxy; rsp
		"spam client=198.51.100.77 source=follow:rspamd",                                                        // 10: 2026-12-01T10:00:07.000000+00:00 mx rspamd[4001]: <8ae27e>; proxy; rsp
		"ignored: rspamd action soft reject is not reject",                                                      // 11: 2026-12-01T10:00:08.000000+00:00 mx rspamd[4001]: <8ae27f>; proxy; rsp
		"ignored: remembered: queue id → client",                                                                // 12: Dec  1 10:00:09 mx postfix/smtpd[2003]: 5E6F7A8B9C: client=bad.example
		"spam client=203.0.113.9 source=follow:postfix-proxy",                                                   // 13: Dec  1 10:00:09 mx postfix/smtpd[2003]: 5E6F7A8B9C: proxy-reject: END-
		"trap_candidate client=198.51.100.3 address=nobody.here@example.org source=follow:postfix-unknown-user", // 14: Dec  1 10:00:10 mx postfix/smtpd[2004]: NOQUEUE: reject: RCPT from unk
		"trap_candidate client=198.51.100.3 address=ghost@example.org source=follow:postfix-unknown-user",       // 15: Dec  1 10:00:11 mx postfix/smtpd[2004]: NOQUEUE: reject: RCPT from unk
		"ignored: client address unknown",                                                                       // 16: Dec  1 10:00:12 mx postfix/smtpd[2004]: NOQUEUE: reject: RCPT from unk
		"ignored: policy reject, not an unknown user or a content verdict",                                      // 17: Dec  1 10:00:13 mx postfix/smtpd[2004]: NOQUEUE: reject: RCPT from unk
		"ignored: not a reject",                                                                                 // 18: Dec  1 10:00:14 mx postfix/smtpd[2004]: NOQUEUE: reject: RCPT from unk
		"ignored: no syslog or rspamd log header",                                                               // 19: garbage without a header
		"spam client=192.0.2.80 source=follow:postfix-milter",                                                   // 20: Dec  1 10:00:15 mx postfix/smtpd[2005]: 4D5E6F7A8B: milter-reject: END
		"ignored: reject_warning is a dry run, nothing was rejected",                                            // 21: Dec  1 10:00:16 mx postfix/smtpd[2005]: NOQUEUE: reject_warning: RCPT
		"spam client=203.0.113.44 source=follow:amavis",                                                         // 22: Dec  1 10:00:17 mx amavis[5001]: (05001-01) Blocked SPAM {DiscardedInb
		"spam client=127.0.0.33 source=follow:postfix-checks",                                                   // 23: Dec  1 10:00:18 mx postfix/cleanup[2006]: 6A7B8C9D0E: reject: header S
		"ignored: temporary (4xx) reject, not a verdict",                                                        // 24: Dec  1 10:00:19 mx postfix/cleanup[2006]: 6A7B8C9D0F: reject: body Cli
		"ignored: not a reject",                                                                                 // 25: Dec  1 10:00:20 mx postfix/cleanup[2006]: 6A7B8C9D10: warning: header
	},
}
