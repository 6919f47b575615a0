package chat

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
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
	c1.extra().id, c2.extra().id = id, &Identity{Name: "ALICE", Display: "Alice"}
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
	conns := m.numConns()
	h.mu.Unlock()
	b.mu.Lock()
	claims := b.claims
	b.mu.Unlock()
	if conns != 2 || claims != 1 || m.profile() != (Profile{Display: "Alice"}) {
		t.Errorf("member with %d connections, profile %+v, after %d claims; want 2, Alice, 1", conns, m.profile(), claims)
	}
	waitWritten(t, h, []*client{c1, c2})
	for i, c := range []*client{c1, c2} {
		if got := c.nc.(*recConn).events(t); len(got) != 3 || got[0] != "join:alice" || got[1] != "users:1" {
			t.Errorf("connection %d: %v, want its join, users and history", i+1, got)
		}
	}

	// The first connection goes, then the last: the member stays, local
	// (its messages are this hub's to store), until the broker delivers
	// its leave; the hooks get the first connection's identity.
	if _, last := h.leave(c1); last {
		t.Error("first connection's leave: the member's last")
	}
	left, last := h.leave(c2)
	if !last || left.Display != "Alice" || left.Name != "alice" {
		t.Errorf("last connection's leave: %+v, last %v; want alice, Alice, true", left, last)
	}
	h.mu.Lock()
	m = h.members[nameKey("alice")]
	stays := m != nil && m.numConns() == 0 && m.local()
	h.mu.Unlock()
	if !stays {
		t.Error("the member left before the broker delivered its leave, or is not local")
	}
	b.deliver(Event{Kind: EventLeave, Username: "alice"})
	if got := h.Users(); len(got) != 0 {
		t.Errorf("after the broker's leave: %v", got)
	}
}

// TestMemberConns: a member's connections in the order they came, and
// nothing but the member for one with a single connection and no
// profile.
func TestMemberConns(t *testing.T) {
	h := NewHub(Options{PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	c1, c2, c3 := newClient(h, nil, nil), newClient(h, nil, nil), newClient(h, nil, nil)
	m := &member{name: "alice", key: "alice"}
	m.setProfile(Profile{})
	if m.local() || m.numConns() != 0 || len(m.appendConns(nil)) != 0 {
		t.Error("a member of another hub has connections here")
	}
	m.setLocal(c1)
	if !m.local() || m.numConns() != 1 || m.x != nil {
		t.Errorf("one connection: local %v, %d connections, extra %v; want true, 1, none", m.local(), m.numConns(), m.x)
	}
	m.addConn(c2)
	m.addConn(c3)
	check := func(want ...*client) {
		t.Helper()
		if got := m.appendConns(nil); !slices.Equal(got, want) || m.numConns() != len(want) {
			t.Errorf("connections %v (%d), want %v", got, m.numConns(), want)
		}
	}
	check(c1, c2, c3)
	if !m.dropConn(c2) || m.dropConn(c2) {
		t.Error("dropConn: not once")
	}
	check(c1, c3)
	m.dropConn(c1)
	check(c3)
	m.dropConn(c3)
	check()
	if m.local() {
		t.Error("local without connections, not gone through a broker")
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
