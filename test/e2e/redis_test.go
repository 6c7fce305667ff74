package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/greypit/greypit/internal/testenv"
)

// redisSets points a greypit at a shared Redis.
func redisSets(r *testenv.Redis, more ...string) []string {
	return append([]string{"store.backend=redis", fmt.Sprintf("store.redis_addrs=[%q]", r.Addr()),
		"store.redis_timeout=500ms"}, more...)
}

// Two MX hosts (two greypit processes, two SMTP ports) share one Redis: a
// first try at A is greylisted, the retry at B after the pass delay is
// delivered to the real Postfix backend, and the host is then white at A
// too; a black entry added with `greypit db` at one host is seen by the
// other, and `greypit db` on a host whose daemon is down uses Redis itself.
func TestRedisTwoHosts(t *testing.T) {
	r := testenv.StartRedis(t)
	pf := backend(t, testenv.ModeProxy)
	a := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: redisSets(r)})
	b := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: redisSets(r)})

	passGreylist(t, a, "127.0.0.41", "rita@example.test")
	if res := b.swaks("127.0.0.41", "rita@example.test", "retry at MX B"); res.Code != 0 {
		t.Fatalf("retry at B:\n%s", res)
	}
	msgs := pf.WaitMessages(t, 1, 20*time.Second)
	if !strings.Contains(string(msgs[0].Raw), "Subject: retry at MX B") {
		t.Fatalf("delivered message:\n%s", msgs[0].Raw)
	}
	if v := b.WaitVerdicts(1); !strings.Contains(v[0], "path=grey") || !strings.Contains(v[0], "outcome=handoff") {
		t.Errorf("B's verdict: %s", v[0])
	}
	// B's delivery made the host white for A as well.
	if res := a.swaks("127.0.0.41", "rita@example.test", "white at MX A"); res.Code != 0 {
		t.Fatalf("white host at A:\n%s", res)
	}
	if v := a.WaitVerdicts(2); !strings.Contains(v[1], "path=white") {
		t.Errorf("A's second verdict: %s", v[1])
	}

	if out, code := a.DB("add", "-type", "black", "-reason", "seen at A", "127.0.0.42"); code != 0 {
		t.Fatalf("db add at A: %s", out)
	}
	if out, code := b.DB("why", "127.0.0.42"); code != 0 || !strings.Contains(out, "BLACK") || !strings.Contains(out, "seen at A") {
		t.Fatalf("db why at B (exit %d):\n%s", code, out)
	}
	c := testenv.DialSMTP(t, "127.0.0.42:0", b.Addr)
	c.Close()
	b.WaitLog(regexpMust(`msg=verdict .*client=127\.0\.0\.42 .*path=black`), 20*time.Second)

	// With A's daemon gone, `greypit db` at A talks to Redis itself: it
	// sees B's white entry and its delete reaches B.
	a.Stop()
	if out, code := a.DB("list", "-type", "white"); code != 0 || !strings.Contains(out, "127.0.0.41") {
		t.Fatalf("db list at A without its daemon (exit %d):\n%s", code, out)
	}
	if out, code := a.DB("del", "-type", "black", "127.0.0.42"); code != 0 {
		t.Fatalf("db del at A without its daemon: %s", out)
	}
	if out, code := b.DB("why", "127.0.0.42"); code != 0 || strings.Contains(out, "BLACK") {
		t.Fatalf("db why at B after the delete (exit %d):\n%s", code, out)
	}
}

// greyAttempt makes one raw SMTP attempt up to RCPT and returns the RCPT
// reply line; errors come back as text so goroutines can report them.
func greyAttempt(local, server, rcpt string) (string, error) {
	send, err := greyMail(local, server)
	if err != nil {
		return "", err
	}
	return send(rcpt)
}

// greyMail opens a raw SMTP session from local and sends EHLO and MAIL;
// the function it returns sends RCPT, returns its reply line and ends the
// session.
func greyMail(local, server string) (func(rcpt string) (string, error), error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", server)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	read := func() (string, error) {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return "", err
			}
			if len(l) < 4 || l[3] != '-' {
				return strings.TrimRight(l, "\r\n"), nil
			}
		}
	}
	if _, err := read(); err != nil { // banner, after greet_wait
		c.Close()
		return nil, err
	}
	for _, cmd := range []string{"EHLO client.example.org", "MAIL FROM:<bulk@example.org>"} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		if _, err := read(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return func(rcpt string) (string, error) {
		defer c.Close()
		fmt.Fprintf(c, "RCPT TO:<%s>\r\n", rcpt)
		reply, err := read()
		fmt.Fprintf(c, "QUIT\r\n")
		return reply, err
	}, nil
}

// Many first attempts of one tuple (one /24, sender and recipient) at two
// hosts at once: all are deferred, and the one grey entry they share
// counted every attempt, so none was lost to a race.
func TestRedisConcurrentGreylist(t *testing.T) {
	r := testenv.StartRedis(t)
	pf := backend(t, testenv.ModeProxy)
	a := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: redisSets(r)})
	b := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: redisSets(r)})
	const per = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*per)
	for i := range 2 * per {
		g := []*Greypit{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply, err := greyAttempt(fmt.Sprintf("127.0.3.%d", 10+i), g.Addr, "many@example.test")
			if err == nil && !strings.HasPrefix(reply, "451 4.7.1") {
				err = fmt.Errorf("RCPT reply %q, want 451 4.7.1", reply)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	out, code := a.DB("list", "-type", "grey", "-json")
	if code != 0 {
		t.Fatalf("db list: %s", out)
	}
	var entries []struct {
		Key   string `json:"key"`
		Count int    `json:"count"`
	}
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var e struct {
			Key   string `json:"key"`
			Count int    `json:"count"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("db list line %q: %v", l, err)
		}
		entries = append(entries, e)
	}
	if len(entries) != 1 || entries[0].Count != 2*per {
		t.Fatalf("grey entries %+v, want one with count %d", entries, 2*per)
	}
}

// Redis stopped in the middle: a host with store.unreachable = "tempfail"
// answers 451 4.3.0 (the client keeps the message), one with "open" hands
// the recipient to Postfix without greylisting; with Redis back both
// greylist again.
func TestRedisUnreachable(t *testing.T) {
	r := testenv.StartRedis(t)
	pf := backend(t, testenv.ModeProxy)
	tf := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: redisSets(r)})
	op := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: redisSets(r, "store.unreachable=open")})

	if reply, err := greyAttempt("127.0.0.51", tf.Addr, "una@example.test"); err != nil || !strings.HasPrefix(reply, "451 4.7.1") {
		t.Fatalf("with Redis up: %q, %v; want 451 4.7.1", reply, err)
	}
	r.Stop()
	if reply, err := greyAttempt("127.0.0.52", tf.Addr, "una@example.test"); err != nil || !strings.HasPrefix(reply, "451 4.3.0") {
		t.Fatalf("tempfail host with Redis down: %q, %v; want 451 4.3.0", reply, err)
	}
	res := op.swaks("127.0.0.53", "una@example.test", "store down, open")
	if res.Code != 0 {
		t.Fatalf("open host with Redis down:\n%s", res)
	}
	msgs := pf.WaitMessages(t, 1, 20*time.Second)
	if !strings.Contains(string(msgs[0].Raw), "Subject: store down, open") {
		t.Fatalf("delivered:\n%s", msgs[0].Raw)
	}
	op.WaitLog(regexpMust(`passing \(store.unreachable = open\)`), 5*time.Second)

	r.Start()
	for _, g := range []*Greypit{tf, op} {
		// The pool redials on the next command; a bounded number of
		// tries covers a connection that died with the old server.
		var reply string
		for range 5 {
			var err error
			if reply, err = greyAttempt("127.0.0.54", g.Addr, "back@example.test"); err == nil && strings.HasPrefix(reply, "451 4.7.1") {
				break
			}
		}
		if !strings.HasPrefix(reply, "451 4.7.1") {
			t.Fatalf("after Redis restart at %s: %q; want greylisting (451 4.7.1)", g.Addr, reply)
		}
	}
}

// Redis paused (SIGSTOP: a partition, connections hang instead of being
// refused): each store call gives up after store.redis_timeout, so a grey
// recipient gets 451 4.3.0 in bounded time and no session hangs; after
// SIGCONT greylisting works again.
func TestRedisPartition(t *testing.T) {
	r := testenv.StartRedis(t)
	pf := backend(t, testenv.ModeProxy)
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: redisSets(r)})
	if reply, err := greyAttempt("127.0.0.61", g.Addr, "part@example.test"); err != nil || !strings.HasPrefix(reply, "451 4.7.1") {
		t.Fatalf("with Redis up: %q, %v", reply, err)
	}
	r.Pause()
	start := time.Now()
	reply, err := greyAttempt("127.0.0.62", g.Addr, "part@example.test")
	took := time.Since(start)
	r.Resume()
	if err != nil || !strings.HasPrefix(reply, "451 4.3.0") {
		t.Fatalf("with Redis paused: %q, %v (after %v); want 451 4.3.0", reply, err, took)
	}
	t.Logf("451 4.3.0 after %v with redis_timeout 500ms", took.Round(time.Millisecond))
	var after string
	for range 5 {
		if after, err = greyAttempt("127.0.0.63", g.Addr, "part@example.test"); err == nil && strings.HasPrefix(after, "451 4.7.1") {
			break
		}
	}
	if !strings.HasPrefix(after, "451 4.7.1") {
		t.Fatalf("after SIGCONT: %q, %v; want greylisting", after, err)
	}
}

// Redis Sentinel failover under a running greypit: a master, a replica
// and three sentinels; greypit writes white entries with WAIT 1
// (store.redis_wait_replicas). The master is killed (SIGKILL): until the
// sentinels promote the replica, grey recipients get 451 4.3.0
// (store.unreachable = tempfail), never 250; then greylisting works again
// within a bounded time, and the host made white before the kill is
// still white.
func TestRedisSentinelFailover(t *testing.T) {
	f := testenv.StartFailover(t, "mx", 1, 3)
	pf := backend(t, testenv.ModeProxy)
	addrs := make([]string, 0, len(f.Sentinels))
	for _, a := range f.SentinelAddrs() {
		addrs = append(addrs, fmt.Sprintf("%q", a))
	}
	g := startGreypit(t, greypitOpts{backend: pf.Addr(), sets: []string{"store.backend=redis",
		"store.redis_addrs=[" + strings.Join(addrs, ",") + "]", "store.redis_sentinel_master=mx",
		"store.redis_timeout=1s", "store.redis_wait_replicas=1", "store.redis_wait_timeout=500ms"}})

	passGreylist(t, g, "127.0.0.71", "fo@example.test")
	if res := g.swaks("127.0.0.71", "fo@example.test", "before the failover"); res.Code != 0 {
		t.Fatalf("retry before the failover:\n%s", res)
	}
	pf.WaitMessages(t, 1, 20*time.Second)

	// A session classified while the master was up sends RCPT right
	// after the kill: its greylist call fails before any promotion (the
	// sentinels wait 1s to call the master down).
	rcpt, err := greyMail("127.0.0.72", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	f.Master.Stop() // SIGKILL
	killed := time.Now()
	if reply, err := rcpt("fo@example.test"); err != nil || !strings.HasPrefix(reply, "451 4.3.0") {
		t.Fatalf("RCPT right after the kill: %q, %v; want 451 4.3.0", reply, err)
	}
	tempfails := 1
	for {
		reply, err := greyAttempt("127.0.0.72", g.Addr, "fo@example.test")
		if err != nil {
			t.Fatalf("attempt during the failover: %v", err)
		}
		if strings.HasPrefix(reply, "451 4.7.1") {
			break // greylisting again
		}
		if !strings.HasPrefix(reply, "451 4.3.0") {
			t.Fatalf("RCPT reply during the failover %q; want 451 4.3.0 (tempfail) or 451 4.7.1", reply)
		}
		tempfails++
		if time.Since(killed) > 40*time.Second {
			t.Fatalf("still 451 4.3.0 %v after the master was killed", time.Since(killed).Round(time.Second))
		}
	}
	t.Logf("greylisting again %v after the kill; %d tempfailed attempts in between", time.Since(killed).Round(time.Millisecond), tempfails)
	if res := g.swaks("127.0.0.71", "fo@example.test", "after the failover"); res.Code != 0 {
		t.Fatalf("white host after the failover:\n%s", res)
	}
	msgs := pf.WaitMessages(t, 2, 20*time.Second)
	if !strings.Contains(string(msgs[1].Raw), "Subject: after the failover") {
		t.Fatalf("delivered:\n%s", msgs[1].Raw)
	}
	g.WaitLog(regexpMust(`msg=verdict .*client=127\.0\.0\.71 .*path=white`), 10*time.Second)
}
