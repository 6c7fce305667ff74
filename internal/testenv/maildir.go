package testenv

import (
	"bytes"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Message is one message a backend instance delivered into its maildir.
type Message struct {
	Path    string      // the maildir file
	Raw     []byte      // the whole file, as delivered
	Header  mail.Header // parsed header (nil if the message did not parse)
	Body    []byte      // everything after the header
	ModTime time.Time

	// Convenience copies of common header fields.
	From, To, Subject, MessageID string
	// Set by Postfix's virtual(8) delivery agent: the envelope sender and
	// the envelope recipient.
	ReturnPath, DeliveredTo string
}

// readMaildir returns the messages in dir/new and dir/cur, oldest first.
// virtual(8) writes into tmp/ and renames into new/, so every file seen
// here is complete.
func readMaildir(dir string) ([]Message, error) {
	var msgs []Message
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			p := filepath.Join(dir, sub, e.Name())
			raw, err := os.ReadFile(p)
			if err != nil {
				if os.IsNotExist(err) { // moved new -> cur meanwhile
					continue
				}
				return nil, err
			}
			m := Message{Path: p, Raw: raw}
			if fi, err := e.Info(); err == nil {
				m.ModTime = fi.ModTime()
			}
			if pm, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
				m.Header = pm.Header
				m.Body, _ = io.ReadAll(pm.Body)
				m.From = pm.Header.Get("From")
				m.To = pm.Header.Get("To")
				m.Subject = pm.Header.Get("Subject")
				m.MessageID = pm.Header.Get("Message-Id")
				m.ReturnPath = pm.Header.Get("Return-Path")
				m.DeliveredTo = pm.Header.Get("Delivered-To")
			}
			msgs = append(msgs, m)
		}
	}
	sort.SliceStable(msgs, func(i, j int) bool {
		if !msgs[i].ModTime.Equal(msgs[j].ModTime) {
			return msgs[i].ModTime.Before(msgs[j].ModTime)
		}
		return filepath.Base(msgs[i].Path) < filepath.Base(msgs[j].Path)
	})
	return msgs, nil
}
