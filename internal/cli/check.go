package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/feedback"
	"github.com/greypit/greypit/internal/handoff"
	"github.com/greypit/greypit/internal/lists"
	"github.com/greypit/greypit/internal/policy"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/traps"
)

// certWarn is how close to its expiry the certificate makes check warn.
const certWarn = 14 * 24 * time.Hour

// check is `greypit check`: what an operator runs before a start or a
// SIGHUP (as `postfix check` or `nginx -t`). It loads the configuration and
// every file it names the way serve does, reports every problem at once,
// and exits non-zero if there is one. It opens nothing for writing and
// listens nowhere; the store and the backend are only looked at, and their
// state (a running daemon holding the file, a backend that is down) is a
// warning, not a problem, as serve copes with both.
func check(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("check: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := cf.load()
	if err != nil {
		return err // every config problem, each naming its key
	}
	name := cf.path
	if name == "" {
		name = "the built-in defaults"
	}
	var problems int
	ok := func(what, detail string) { fmt.Fprintf(stdout, "ok       %-10s %s\n", what, detail) }
	warn := func(what, detail string) { fmt.Fprintf(stdout, "warning  %-10s %s\n", what, detail) }
	bad := func(what string, err error) {
		problems++
		fmt.Fprintf(stdout, "PROBLEM  %-10s %v\n", what, err)
	}
	ok("config", name)

	if ls, err := lists.NewSetFiles(listFiles(cfg)); err != nil {
		bad("lists", err)
	} else {
		counts := ls.Counts()
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
		}
		ok("lists", strings.Join(parts, ", ")+" prefixes")
	}
	if len(cfg.Traps.Files) > 0 {
		if f, err := traps.LoadFiles(cfg.Traps.Files); err != nil {
			bad("traps", err)
		} else {
			ok("traps", fmt.Sprintf("%d addresses from %d files", f.Len(), len(cfg.Traps.Files)))
		}
	}
	if len(cfg.Candidates.Protected) > 0 {
		if _, err := feedback.LoadProtected(cfg.Candidates.Protected); err != nil {
			bad("protected", err)
		} else {
			ok("protected", strings.Join(cfg.Candidates.Protected, ", "))
		}
	}
	if cfg.Policy.Listen != "" {
		if w, err := policy.LoadWhitelist(cfg.Policy.WhitelistClients, cfg.Policy.WhitelistRecipients); err != nil {
			bad("policy", err)
		} else {
			ok("policy", fmt.Sprintf("whitelists: %d entries", w.Len()))
		}
	}
	if cfg.SMTP.TLSCert != "" {
		checkCert(cfg, time.Now(), ok, warn, bad)
	}
	if db, closeASN, err := openASN(cfg); err != nil {
		bad("asn_db", err)
	} else if db != nil {
		closeASN()
		ok("asn_db", cfg.Networks.ASNDB)
	}
	if _, err := newDNSBL(cfg, slog.New(slog.DiscardHandler)); err != nil {
		bad("dnsbl", err)
	}
	if _, err := loadBigSenders(cfg); err != nil {
		bad("bigsenders", err)
	}
	checkStore(cfg, ok, warn, bad)
	checkBackend(cfg, ok, warn)

	if problems > 0 {
		return fmt.Errorf("check: %d problem(s) in %s", problems, name)
	}
	return nil
}

// checkCert loads the STARTTLS key pair and warns before it expires.
func checkCert(cfg *config.Config, now time.Time, ok, warn func(string, string), bad func(string, error)) {
	pair, err := tls.LoadX509KeyPair(cfg.SMTP.TLSCert, cfg.SMTP.TLSKey)
	if err != nil {
		bad("tls", fmt.Errorf("smtp.tls_cert/smtp.tls_key: %w", err))
		return
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		bad("tls", fmt.Errorf("smtp.tls_cert: %w", err))
		return
	}
	detail := fmt.Sprintf("%s, valid until %s", strings.Join(leaf.DNSNames, " "), leaf.NotAfter.UTC().Format(time.DateOnly))
	switch {
	case now.After(leaf.NotAfter):
		warn("tls", "expired: "+detail+" (senders that verify will not use STARTTLS)")
	case leaf.NotAfter.Sub(now) < certWarn:
		warn("tls", "expires soon: "+detail)
	default:
		ok("tls", detail)
	}
}

// checkStore looks at the store without writing: the bolt file read-only
// (a running daemon's lock is reported, not a problem), Redis by a ping.
func checkStore(cfg *config.Config, ok, warn func(string, string), bad func(string, error)) {
	if cfg.Store.Backend == config.StoreRedis {
		st, err := openStore(cfg, time.Second)
		if err != nil {
			bad("store", err)
			return
		}
		defer st.Close()
		ctx, cancel := context.WithTimeout(context.Background(), cfg.Store.RedisTimeout.Duration+time.Second)
		defer cancel()
		if r, isRedis := st.(*store.Redis); isRedis {
			if err := r.Ping(ctx); err != nil {
				warn("store", fmt.Sprintf("redis does not answer (store.unreachable = %q applies): %v", cfg.Store.Unreachable, err))
				return
			}
		}
		ok("store", "redis "+strings.Join(cfg.Store.RedisAddrs, " "))
		return
	}
	path := cfg.Store.Path
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := writableDir(path); err != nil {
			bad("store", fmt.Errorf("store.path: %w", err))
			return
		}
		ok("store", path+" (created at the first start)")
		return
	}
	b, err := store.OpenBolt(path, store.BoltOptions{ReadOnly: true, Timeout: 200 * time.Millisecond})
	switch {
	case errors.Is(err, store.ErrLocked):
		ok("store", path+" (in use by a running greypit)")
	case err != nil:
		bad("store", fmt.Errorf("store.path: %w", err))
	default:
		b.Close()
		ok("store", path)
	}
}

// writableDir reports whether path's directory exists (or can be made)
// and takes a new file, as serve's first start will need.
func writableDir(path string) error {
	dir := path[:max(strings.LastIndexByte(path, '/'), 0)]
	if dir == "" {
		dir = "."
	}
	for d := dir; ; {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", d)
			}
			f, err := os.CreateTemp(d, ".greypit-check-")
			if err != nil {
				return err
			}
			f.Close()
			return os.Remove(f.Name())
		}
		i := strings.LastIndexByte(d, '/')
		if i <= 0 {
			return nil // nothing of it exists: serve creates it from /
		}
		d = d[:i]
	}
}

// checkBackend opens a backend session as a hand-off does (PROXY v2
// header or XCLIENT, greeting, EHLO) and lists the extensions greypit
// would offer. A backend that is down, or refuses the hand-off, is only a
// warning: serve starts anyway, and white hosts get 421 and grey retries
// 451 until it answers.
func checkBackend(cfg *config.Config, ok, warn func(string, string)) {
	caps := &handoff.Capabilities{MaxSize: cfg.SMTP.MaxMessageSize}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Backend.ConnectTimeout.Duration+2*cfg.Backend.ReplyTimeout.Duration)
	defer cancel()
	addr := fmt.Sprintf("%s (%s)", cfg.Backend.Address, cfg.Backend.Handoff)
	if err := caps.Probe(ctx, newDialer(cfg)); err != nil {
		warn("backend", fmt.Sprintf("%s: %v (greypit starts anyway; senders get 4xx until it answers)", addr, err))
		return
	}
	ok("backend", fmt.Sprintf("%s: offers %s", addr, strings.Join(caps.Lines(), " ")))
}
