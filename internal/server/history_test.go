package server_test

import (
	"testing"
	"time"

	"github.com/greypit/greypit/internal/store"
)

// Every session's outcome reaches the history, as its verdict line says.
func TestHistory(t *testing.T) {
	evs := make(chan store.Event, 10)
	next := func() store.Event {
		t.Helper()
		select {
		case e := <-evs:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no history event")
		}
		return store.Event{}
	}
	f := newFixture(t, config{block: "127.0.0.0/8\n", history: func(e store.Event) { evs <- e }})
	before := time.Now()
	c := f.dial(t)
	c.expect(554, "5.7.1", hostname+" Service refused: listed in local block list")
	c.expectEOF()
	if e := next(); e.Client != "127.0.0.1" || e.Path != "black" || e.Outcome != "rejected" || e.Time.Before(before) || e.Trap {
		t.Errorf("black session: %+v", e)
	}

	f = newFixture(t, config{history: func(e store.Event) { evs <- e }})
	c = f.dial(t)
	c.expect(220, "", "")
	c.cmd("QUIT", 221, "", "")
	if e := next(); e.Path != "grey" || e.Outcome != "quit" || e.Tarpit != 0 {
		t.Errorf("grey session: %+v", e)
	}
}
