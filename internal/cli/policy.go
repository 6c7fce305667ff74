package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/greylist"
	"github.com/greypit/greypit/internal/policy"
	"github.com/greypit/greypit/internal/store"
	"github.com/greypit/greypit/internal/traps"
)

// policyCmd is `greypit policy`: the policy server alone (no SMTP
// listener), configured by greypit's config and/or postgrey's flags, and
// `greypit policy import-postgrey`.
func policyCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "import-postgrey" {
		return importPostgrey(args[1:], stdin, stdout, stderr)
	}
	// postgrey's --flags are translated into -set overrides; greypit's own
	// -config and -set come first in any order.
	own, pg := policy.SplitArgs(args)
	fs := newFlagSet("policy", stderr)
	var cf configFlags
	cf.register(fs)
	if err := fs.Parse(own); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("policy: unexpected argument %q", fs.Arg(0))
	}
	sets, err := policy.PostgreyFlags(pg)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	cf.sets = append(sets, cf.sets...) // explicit -set wins over a flag
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if cfg.Policy.Listen == "" {
		return errors.New("policy: policy.listen is empty: set it (-set policy.listen=127.0.0.1:10023) or pass --inet/--unix")
	}
	return run(cfg, cf, stderr, false)
}

// listenPolicy opens policy.listen: an absolute path is a unix socket
// (a stale socket file is replaced; anything else there is an error),
// anything else a TCP address.
func listenPolicy(addr string) (net.Listener, error) {
	if !filepath.IsAbs(addr) {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(addr); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", addr)
		}
		if c, err := net.Dial("unix", addr); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another policy server is listening", addr)
		}
		os.Remove(addr)
	}
	ln, err := net.Listen("unix", addr)
	if err != nil {
		return nil, err
	}
	// Postfix's smtpd runs as another user; postgrey's default mode is 0666.
	if err := os.Chmod(addr, 0o666); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// newPolicyServer builds the policy server on the front line's classifier,
// store and greylist settings (grey), with postgrey's privacy option.
func newPolicyServer(cfg *config.Config, log *slog.Logger, c *classify.Classifier, st store.Store, grey *greylist.Greylister, tc *traps.Checker) (*policy.Server, error) {
	wl, err := loadWhitelist(cfg, log)
	if err != nil {
		return nil, err
	}
	set := policySettings(cfg, grey, tc)
	s := &policy.Server{
		Config:     set.Config,
		Log:        log,
		Classifier: c,
		Store:      st,
		Greylist:   set.Greylist,
		Traps:      tc,
	}
	s.Reload(set)
	s.Whitelist.Store(wl)
	return s, nil
}

// policySettings are the policy server's settings of cfg, on the front
// line's greylist settings (grey) with postgrey's privacy option.
func policySettings(cfg *config.Config, grey *greylist.Greylister, tc *traps.Checker) *policy.Settings {
	p := &cfg.Policy
	g := *grey
	g.Privacy = p.Privacy
	return &policy.Settings{
		Config: policy.Config{
			GreylistAction:  p.GreylistAction,
			GreylistText:    p.GreylistText,
			BlackAction:     p.BlackAction,
			XGreylistHeader: p.XGreylistHeader,
			Hostname:        cfg.SMTP.Hostname,
			Version:         Version,
			AutoWhitelist:   p.AutoWhitelistClient,
			WhiteTTL:        cfg.Greylist.WhiteTTL.Duration,
			IdleTimeout:     policy.DefaultIdleTimeout,
			MaxConns:        policy.DefaultMaxConns,
		},
		Greylist: &g,
		Traps:    tc,
	}
}

func loadWhitelist(cfg *config.Config, log *slog.Logger) (*policy.Whitelist, error) {
	wl, err := policy.LoadWhitelist(cfg.Policy.WhitelistClients, cfg.Policy.WhitelistRecipients)
	if err != nil {
		return nil, fmt.Errorf("policy.whitelist_clients/whitelist_recipients: %w", err)
	}
	for _, w := range wl.Warnings {
		log.Warn("policy whitelist line skipped", "line", w)
	}
	return wl, nil
}
