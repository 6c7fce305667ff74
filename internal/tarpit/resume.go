package tarpit

import "net"

// Resume is the state of an SMTP session that greypit itself was serving
// when it found the host black mid-session (a spamtrap hit): the tarpit
// carries on from there instead of greeting again.
type Resume struct {
	Helo     string // the client's HELO/EHLO name
	HaveMail bool   // a MAIL command was accepted
	From     string // its reverse path
}

func (r *Resume) apply(s *sess) {
	s.out, s.shared = nil, false // the client was greeted already
	s.helo, s.haveMail, s.from = r.Helo, r.HaveMail, r.From
}

// AddResumed takes over c like Add, for a session that is already past
// the greeting: nothing is sent until the client's next command (pending
// is input already read from it), which is answered in the state r.
func (t *Tarpit) AddResumed(c net.Conn, info Info, pending []byte, r Resume) error {
	return t.add(c, info, pending, &r)
}
