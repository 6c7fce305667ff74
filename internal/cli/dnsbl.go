package cli

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/greypit/greypit/internal/classify"
	"github.com/greypit/greypit/internal/config"
	"github.com/greypit/greypit/internal/dnsbl"
	"github.com/greypit/greypit/internal/dnsx"
)

// newDNSBL builds the DNSBL checker of cfg (nil without dnsbl.sites).
func newDNSBL(cfg *config.Config, log *slog.Logger) (*dnsbl.Checker, error) {
	if len(cfg.DNSBL.Sites) == 0 {
		return nil, nil
	}
	sites, err := dnsbl.ParseSites(cfg.DNSBL.Sites)
	if err != nil {
		return nil, fmt.Errorf("dnsbl.sites: %w", err)
	}
	server, err := dnsx.Server(cfg.DNSBL.Resolver)
	if err != nil {
		return nil, fmt.Errorf("dnsbl.resolver: %w", err)
	}
	return dnsbl.NewChecker(dnsbl.Options{
		Sites:          sites,
		Threshold:      cfg.DNSBL.Threshold,
		AllowThreshold: cfg.DNSBL.AllowThreshold,
		Timeout:        cfg.DNSBL.Timeout.Duration,
		CacheSize:      cfg.DNSBL.CacheSize,
		DNS:            &dnsx.Client{Server: server},
		Log:            log,
	}), nil
}

// addDNSBL gives the classifier the DNSBL checker and the mode.
func addDNSBL(cfg *config.Config, c *classify.Classifier, log *slog.Logger) error {
	chk, err := newDNSBL(cfg, log)
	if err != nil {
		return err
	}
	c.DNSBL = chk
	c.Selective = cfg.Greylist.Mode == config.GreylistSelective
	return nil
}

// resolverFor returns the resolver address SPF and bigsenders use.
func resolverFor(cfg *config.Config) (string, error) {
	s, err := dnsx.Server(cfg.DNSBL.Resolver)
	if err != nil {
		return "", fmt.Errorf("dnsbl.resolver: %w", err)
	}
	return s, nil
}

// listenDNSBL opens the UDP and TCP sockets of greypit's own zone.
func listenDNSBL(cfg *config.Config) (net.PacketConn, net.Listener, error) {
	pc, err := net.ListenPacket("udp", cfg.DNSBL.ServeListen)
	if err != nil {
		return nil, nil, fmt.Errorf("dnsbl.serve_listen: %w", err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return nil, nil, fmt.Errorf("dnsbl.serve_listen: %w", err)
	}
	return pc, ln, nil
}

// printWhyDNSBL adds the DNSBL and big-sender findings to `db why`.
func printWhyDNSBL(d classify.Decision, out io.Writer) {
	if b := d.BigSender; b != nil {
		fmt.Fprintf(out, "  bigsender: %s network %s (from the SPF record of %s; source: %s)\n", b.Provider.Domain, b.Prefix, b.Record, b.Provider.Source)
	}
	r := d.DNSBL
	if r == nil {
		return
	}
	fmt.Fprintf(out, "  dnsbl: score %d\n", r.Score)
	for _, h := range r.Listed {
		txt := ""
		if h.TXT != "" {
			txt = fmt.Sprintf(" %q", h.TXT)
		}
		fmt.Fprintf(out, "  dnsbl listed: %s %s weight %d%s\n", h.Zone, strings.Join(h.Answers, ","), h.Weight, txt)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(out, "  dnsbl skipped: %s: %s\n", s.Zone, s.Why)
	}
}
