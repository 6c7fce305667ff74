//go:build unix

package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crashFlushEvery is the flush interval of the kill -9 test.
const crashFlushEvery = 200 * time.Millisecond

// greyCacheLoad is the crash helper's load: greylist sightings through a
// GreyCache flushed every crashFlushEvery, and every 20th a white entry.
// "G key" is printed after a sighting was answered, "W key" after a white
// entry was acknowledged.
func greyCacheLoad(b *Bolt) {
	ctx := context.Background()
	c := NewGreyCache(b)
	go c.Run(ctx, crashFlushEvery, func(err error) { fmt.Println("error:", err) })
	fmt.Println("ready")
	for i := 0; ; i++ {
		key := "tuple-" + strconv.Itoa(i)
		if _, _, err := c.Greylist(ctx, key, "c", time.Now(), testParams); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		fmt.Println("G", key)
		if i%20 == 0 {
			wk := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
			if _, err := c.Refresh(ctx, wk, "crash", "test", time.Now(), time.Hour); err != nil {
				fmt.Println("error:", err)
				os.Exit(2)
			}
			fmt.Println("W", wk)
		}
	}
}

// kill -9 under load: every acknowledged white entry is on disk, and the
// greylist sightings lost are only those of the last flush interval (plus
// the flush that was running and scheduling slack).
func TestGreyCacheCrash(t *testing.T) {
	path := t.TempDir() + "/g.db"
	cmd, lines := startCrashHelper(t, path, "greycache")
	waitReady(t, lines)
	seen := map[string]time.Time{}
	var whites []string
	stop := time.After(3 * time.Second)
read:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("helper exited")
			}
			if strings.HasPrefix(l, "error:") {
				t.Fatalf("helper: %s", l)
			}
			k, v, _ := strings.Cut(l, " ")
			if k == "W" {
				whites = append(whites, v)
			} else {
				seen[v] = time.Now()
			}
		case <-stop:
			break read
		}
	}
	killed := time.Now()
	kill(t, cmd)
	b := reopenChecked(t, path)
	ctx := context.Background()
	for _, w := range whites {
		if _, err := b.Get(ctx, White, w); err != nil {
			t.Errorf("acknowledged white entry %s lost: %v", w, err)
		}
	}
	// The window: one flush interval, plus a flush in progress and the
	// test's own reading delay on a loaded machine.
	window := crashFlushEvery + time.Second
	lost, tooOld := 0, 0
	var oldestLost time.Duration
	for k, at := range seen {
		if _, err := b.Get(ctx, Grey, k); err == nil {
			continue
		}
		lost++
		age := killed.Sub(at)
		oldestLost = max(oldestLost, age)
		if age > window {
			tooOld++
		}
	}
	t.Logf("%d sightings, %d white entries acknowledged; %d sightings lost, the oldest %v before the kill (window %v)",
		len(seen), len(whites), lost, oldestLost.Round(time.Millisecond), window)
	if len(whites) == 0 || len(seen) < 100 {
		t.Fatalf("too little load: %d sightings, %d white", len(seen), len(whites))
	}
	if tooOld > 0 {
		t.Errorf("%d sightings lost that were older than the window %v", tooOld, window)
	}
}
