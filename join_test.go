package chat

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"
)

// gatedBroker is a Broker whose Link.Join waits for gate, then delivers
// the join at once; it counts the claims.
type gatedBroker struct {
	gate    chan struct{}
	mu      sync.Mutex
	claims  int
	deliver func(Event)
}

func (b *gatedBroker) Open(_ string, deliver func(Event)) (Link, error) {
	b.deliver = deliver
	deliver(Event{Kind: EventSync, Sync: &Snapshot{}})
	return b, nil
}

func (b *gatedBroker) Join(ctx context.Context, name string, p Profile) error {
	b.mu.Lock()
	b.claims++
	b.mu.Unlock()
	select {
	case <-b.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.deliver(Event{Kind: EventJoin, Username: name, Profile: p})
	return nil
}

func (b *gatedBroker) Leave(context.Context, string) error        { return nil }
func (b *gatedBroker) Publish(context.Context, Message) error     { return nil }
func (b *gatedBroker) Close() error                               { return nil }
func (b *gatedBroker) Moderate(context.Context, Moderation) error { return nil }

// TestJoinWaitsForClaim: with a Broker and Authenticate, a second
// connection of a name that the first is still claiming waits for the
// claim and joins the member, without a claim of its own; a connection
// of another name does not wait.
func TestJoinWaitsForClaim(t *testing.T) {
	b := &gatedBroker{gate: make(chan struct{})}
	h := NewHub(Options{
		Broker: b, PingInterval: -1, Logger: slog.New(slog.DiscardHandler),
		Authenticate: func(*http.Request) (Identity, error) { return Identity{}, nil },
	})
	defer h.Close()
	id := &Identity{Name: "alice", Display: "Alice"}
	c1, c2 := newClient(h, nil, nil), newClient(h, nil, nil)
	c1.nc, c2.nc = &recConn{}, &recConn{}
	c1.id, c2.id = id, &Identity{Name: "ALICE", Display: "Alice"}
	type result struct {
		name  string
		first bool
		err   error
	}
	r1, r2 := make(chan result, 1), make(chan result, 1)
	go func() {
		name, first, err := h.join(context.Background(), c1, "alice")
		r1 <- result{name, first, err}
	}()
	// Wait until the first claims the name, the second waits for it.
	waitUntil(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.pending[nameKey("alice")] != nil
	})
	go func() {
		name, first, err := h.join(context.Background(), c2, "ALICE")
		r2 <- result{name, first, err}
	}()
	waitUntil(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.pending[nameKey("alice")].waiting == 1
	})
	close(b.gate)
	if r := <-r1; r != (result{"alice", true, nil}) {
		t.Errorf("first connection: %+v", r)
	}
	if r := <-r2; r != (result{"alice", false, nil}) {
		t.Errorf("second connection: %+v", r)
	}
	h.mu.Lock()
	m := h.members[nameKey("alice")]
	conns := len(m.conns)
	h.mu.Unlock()
	b.mu.Lock()
	claims := b.claims
	b.mu.Unlock()
	if conns != 2 || claims != 1 || m.prof != (Profile{Display: "Alice"}) {
		t.Errorf("member with %d connections, profile %+v, after %d claims; want 2, Alice, 1", conns, m.prof, claims)
	}
	waitWritten(t, h, []*client{c1, c2})
	for i, c := range []*client{c1, c2} {
		if got := c.nc.(*recConn).events(t); len(got) != 3 || got[0] != "join:alice" || got[1] != "users:1" {
			t.Errorf("connection %d: %v, want its join, users and history", i+1, got)
		}
	}
}

// waitUntil polls cond, with a deadline.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(time.Millisecond) // polling, with a deadline
	}
}
