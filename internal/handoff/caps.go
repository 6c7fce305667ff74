package handoff

import (
	"context"
	"net/netip"
	"strconv"
	"sync/atomic"
)

// safeExtensions are the EHLO keywords greypit may offer grey clients.
// After a hand-off the client talks to the backend, so an extension is
// offered only if the backend has it too; CHUNKING is left out because a
// BDAT before the hand-off would have to be buffered by greypit, and AUTH
// does not belong on port 25.
var safeExtensions = []string{"PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"}

// Capabilities tracks which extensions the backend offers.
type Capabilities struct {
	MaxSize int64 // greypit's own message size limit
	ext     atomic.Pointer[map[string]string]
}

// Probe asks the backend for its EHLO keywords and keeps them. On failure
// the previous answer stays in force.
func (c *Capabilities) Probe(ctx context.Context, d *Dialer) error {
	self := netip.AddrPortFrom(netip.IPv6Loopback(), 0)
	bc, err := d.Open(ctx, Client{Addr: self, Local: self, Helo: d.Hostname, ESMTP: true})
	if err != nil {
		return err
	}
	defer bc.Quit()
	ext := bc.Ext
	c.ext.Store(&ext)
	return nil
}

// Lines returns the EHLO lines to advertise. Until a probe succeeded only
// PIPELINING and ENHANCEDSTATUSCODES are offered, which every backend
// honours or ignores harmlessly.
func (c *Capabilities) Lines() []string { return c.LinesFor(c.MaxSize) }

// LinesFor is Lines with maxSize as greypit's own size limit (a reload
// may change it).
func (c *Capabilities) LinesFor(maxSize int64) []string {
	p := c.ext.Load()
	if p == nil {
		return []string{"PIPELINING", "ENHANCEDSTATUSCODES"}
	}
	var out []string
	for _, k := range safeExtensions {
		v, ok := (*p)[k]
		if !ok {
			continue
		}
		if k == "SIZE" {
			size := maxSize
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 && n < size {
				size = n
			}
			k = "SIZE " + strconv.FormatInt(size, 10)
		}
		out = append(out, k)
	}
	return out
}
