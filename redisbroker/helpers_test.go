package redisbroker

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/redisbroker/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

type redisServer = redistest.Server

func startRedis(t testing.TB) *redisServer { return redistest.Start(t) }

// testOptions are broker options with short timings.
func testOptions(t testing.TB) Options {
	return Options{
		HeartbeatInterval: 50 * time.Millisecond,
		MemberTTL:         250 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newBroker returns a broker on its own client, as a separate process
// would have, closed at the end of the test.
func newBroker(t testing.TB, s *redisServer, opts Options) *Broker {
	b := New(s.Client(), opts)
	t.Cleanup(func() { b.Close() })
	return b
}

// view records what a link delivers, as a hub would apply it.
type view struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
	syncs   int
	users   []string
	profs   map[string]chat.Profile // of users, by name
	msgs    []chat.Message          // every message delivered, in order
	history []chat.Message          // of the last sync
	events  []chat.Event
}

func newView() *view { return &view{changed: make(chan struct{})} }

func (v *view) deliver(e chat.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.events = append(v.events, e)
	switch e.Kind {
	case chat.EventSync:
		v.syncs++
		v.users = append([]string(nil), e.Sync.Users...)
		v.profs = maps.Clone(e.Sync.Profiles)
		v.history = e.Sync.History
	case chat.EventJoin: // as a hub, ignoring joins of members it has
		if !slices.ContainsFunc(v.users, func(u string) bool { return chat.NameKey(u) == chat.NameKey(e.Username) }) {
			v.users = append(v.users, e.Username)
			if e.Profile != (chat.Profile{}) {
				if v.profs == nil {
					v.profs = make(map[string]chat.Profile)
				}
				v.profs[e.Username] = e.Profile
			}
		}
	case chat.EventLeave:
		for i, u := range v.users {
			if u == e.Username {
				v.users = append(v.users[:i:i], v.users[i+1:]...)
				delete(v.profs, u)
				break
			}
		}
	case chat.EventMessage:
		v.msgs = append(v.msgs, e.Message)
	}
	close(v.changed)
	v.changed = make(chan struct{})
}

// wait waits until cond, called with v locked, holds.
func (v *view) wait(t testing.TB, what string, cond func(v *view) bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		v.mu.Lock()
		ok, ch := cond(v), v.changed
		v.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			v.mu.Lock()
			defer v.mu.Unlock()
			t.Fatalf("timed out waiting for %s; users %q, %d messages, %d syncs", what, v.users, len(v.msgs), v.syncs)
		}
	}
}

func (v *view) state() (users []string, msgs []chat.Message, syncs int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.users...), append([]chat.Message(nil), v.msgs...), v.syncs
}

// open opens room on b with a new view, waits for its first sync, and
// closes the link at the end of the test.
func open(t testing.TB, b *Broker, room string) (chat.Link, *view) {
	t.Helper()
	v := newView()
	l, err := b.Open(room, v.deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	v.wait(t, "first sync", func(v *view) bool { return v.syncs > 0 })
	return l, v
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// die stops the link as a killed process would: no more heartbeats,
// deliveries or clean-up.
func (l *link) die() {
	l.closeOnce.Do(func() {
		l.cancel()
		l.psMu.Lock()
		if l.ps != nil {
			l.ps.Close()
		}
		l.psMu.Unlock()
		l.wg.Wait()
		l.b.forget(l)
	})
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}
