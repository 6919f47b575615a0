package chat_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hubchat/chat"
)

// waitMetrics polls the hub's metrics until ok accepts them, and fails
// the test with the last ones if that takes longer than ioTimeout. The
// writers add their counts a batch at a time, after the frames are out,
// so a client may see a frame before it is counted.
func waitMetrics(t *testing.T, h *chat.Hub, what string, ok func(chat.Metrics) bool) chat.Metrics {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		m := h.Metrics()
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: metrics never got there: %+v", what, m)
		}
		time.Sleep(5 * time.Millisecond) // polling, with a deadline
	}
}

// expectError reads c's next frame, which must be an error containing text.
func expectError(t *testing.T, c *conn, text string) {
	t.Helper()
	if f := c.next(); f.Type != "error" || !strings.Contains(f.Error, text) {
		t.Fatalf("got %+v, want an error frame with %q", f, text)
	}
}

// TestMetricsSession: the counters and gauges follow a scripted session,
// and only the counters that should move do.
func TestMetricsSession(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{
		RateLimit:    1e-3, // practically no refill: RateBurst frames each
		RateBurst:    20,
		SendQueue:    16,
		MaxBodyBytes: 1 << 15,
		ReadLimit:    1 << 18,
		OnMessage: func(_ *chat.Hub, _ chat.Identity, m *chat.Message) error {
			if m.Body == "forbidden" {
				return errors.New("not in this room")
			}
			return nil
		},
	})
	h := s.hub
	if m := h.Metrics(); m != (chat.Metrics{Lag: chat.LagHistogram{Bounds: m.Lag.Bounds}}) {
		t.Fatalf("a new hub's metrics are not zero: %+v", m)
	}

	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next() // bob's join
	if m := h.Metrics(); m.Members != 2 || m.Connections != 2 {
		t.Errorf("after two joins: %d members, %d connections", m.Members, m.Connections)
	}

	// Three refused joins.
	expectError(t, s.dial(t, "username=a%09b"), "invalid username")
	expectError(t, s.dial(t, "username=ALICE"), "taken")
	if err := h.Ban(t.Context(), "troll", time.Minute, ""); err != nil {
		t.Fatal(err)
	}
	expectError(t, s.dial(t, "username=troll"), "banned")

	// A public message and a private one: two messages in, four out.
	alice.say("hi")
	for _, c := range []*conn{alice, bob} {
		diff(t, "public message", msg("alice", "hi"), c.next())
	}
	bob.send(map[string]string{"type": "message", "body": "psst", "to": "alice"})
	for _, c := range []*conn{alice, bob} {
		diff(t, "private message", frame{Type: "message", Username: "bob", Body: "psst", To: "alice"}, c.next())
	}
	early := waitMetrics(t, h, "two messages", func(m chat.Metrics) bool { return m.MessagesIn == 2 && m.MessagesOut == 4 })
	if early.Lag.Count() != 4 {
		t.Errorf("Lag counts %d deliveries, want 4", early.Lag.Count())
	}
	if p99 := early.Lag.Quantile(0.99); p99 <= 0 || p99 > early.Lag.Bounds[len(early.Lag.Bounds)-1] {
		t.Errorf("p99 lag = %v", p99)
	}

	// A rejected frame of each cause the session can provoke.
	for _, tc := range []struct {
		typ  int
		data string
		text string
	}{
		{websocket.TextMessage, `{`, "invalid JSON"},
		{websocket.BinaryMessage, `{"type":"message","body":"x"}`, "binary"},
		{websocket.TextMessage, `{"type":"shout"}`, "unknown type"},
		{websocket.TextMessage, `{"type":"join","username":"alice2"}`, "already joined"},
		{websocket.TextMessage, `{"type":"message","body":" "}`, "empty body"},
		{websocket.TextMessage, `{"type":"message","body":"` + strings.Repeat("x", 40000) + `"}`, "too long"},
		{websocket.TextMessage, `{"type":"message","body":"hello?","to":"nobody"}`, "not here"},
		{websocket.TextMessage, `{"type":"message","body":"see","file":"f1"}`, "file sharing is off"},
		{websocket.TextMessage, `{"type":"message","body":"forbidden"}`, "not in this room"},
		{websocket.TextMessage, `{"type":"history","before":"x"}`, "before"},
	} {
		alice.sendRaw(tc.typ, []byte(tc.data))
		expectError(t, alice, tc.text)
	}
	// Muted.
	if err := h.Mute(t.Context(), "alice", time.Minute); err != nil {
		t.Fatal(err)
	}
	alice.say("let me speak")
	expectError(t, alice, "muted")
	if err := h.Unmute(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	// Rate: one frame over the burst.
	rusher := s.joinAs(t, "rusher")
	for range 21 {
		rusher.send(map[string]string{"type": "history", "before": "1"})
	}
	for range 20 {
		if f := rusher.next(); f.Type != "history" {
			t.Fatalf("rusher got %+v, want a page", f)
		}
	}
	expectError(t, rusher, "rate")
	// Kicked.
	if err := h.Kick(t.Context(), "rusher", "spam"); err != nil {
		t.Fatal(err)
	}
	expectError(t, rusher, "kicked by a moderator: spam")
	if code := rusher.closeCode(); code != websocket.ClosePolicyViolation {
		t.Errorf("rusher's close code = %d, want 1008", code)
	}
	// A frame over ReadLimit: rejected, and the connection closed.
	big := s.joinAs(t, "big")
	big.sendRaw(websocket.TextMessage, []byte(`{"type":"message","body":"`+strings.Repeat("x", 1<<18)+`"}`))
	if code := big.closeCode(); code != websocket.CloseMessageTooBig {
		t.Errorf("big's close code = %d, want 1009", code)
	}
	wantRejected := chat.Rejections{Rate: 1, JSON: 2, Type: 2, Body: 2, NoSuchUser: 1, Muted: 1, File: 1, Hook: 1, History: 1, TooBig: 1}
	waitMetrics(t, h, "rejections", func(m chat.Metrics) bool { return m.Rejected == wantRejected })

	// Everyone leaves.
	for _, c := range []*conn{alice, bob} {
		c.ws.Close()
	}
	waitMetrics(t, h, "everyone left", func(m chat.Metrics) bool { return m.Members == 0 && m.Connections == 0 })

	// A client that reads nothing is evicted once its socket buffers and
	// then its SendQueue fill.
	slow := s.joinAs(t, "slow")
	body := strings.Repeat("y", 1<<15)
	for i := 0; h.Metrics().Evictions.Slow == 0; i++ {
		if i == 3000 { // 3000 × 32 KiB: far more than socket buffers hold
			t.Fatal("slow client not evicted")
		}
		if err := h.Post(context.Background(), body); err != nil {
			t.Fatal(err)
		}
	}
	m := waitMetrics(t, h, "slow client gone", func(m chat.Metrics) bool { return m.Members == 0 && m.Connections == 0 })
	_ = slow

	if m.MessagesIn != 2 {
		t.Errorf("MessagesIn = %d, want 2 (Post does not count)", m.MessagesIn)
	}
	// The posts the slow client's socket took count; the write under
	// way when it was evicted, which failed, does not.
	if m.MessagesOut < early.MessagesOut || m.Lag.Count() != m.MessagesOut {
		t.Errorf("MessagesOut = %d, Lag counts %d: want the same, at least %d", m.MessagesOut, m.Lag.Count(), early.MessagesOut)
	}
	if m.BytesOut <= early.BytesOut {
		t.Errorf("BytesOut = %d, no more than after the first messages (%d)", m.BytesOut, early.BytesOut)
	}
	if m.JoinsRefused != 3 {
		t.Errorf("JoinsRefused = %d, want 3", m.JoinsRefused)
	}
	diff(t, "evictions", chat.Evictions{Slow: 1, Kicked: 1, Other: 1}, m.Evictions)
	diff(t, "rejections", wantRejected, m.Rejected)
	if m.BrokerErrors != 0 || m.StoreErrors != 0 {
		t.Errorf("BrokerErrors %d, StoreErrors %d, want none", m.BrokerErrors, m.StoreErrors)
	}
}

// TestMetricsReadTimeout: a member that answers no ping is evicted for
// its read timeout.
func TestMetricsReadTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{PingInterval: 50 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	s.joinAs(t, "mute") // reads nothing more, so answers no ping
	m := waitMetrics(t, s.hub, "read timeout", func(m chat.Metrics) bool { return m.Evictions.ReadTimeout == 1 && m.Members == 0 })
	diff(t, "evictions", chat.Evictions{ReadTimeout: 1}, m.Evictions)
}

// TestMetricsSeveralConnections: a member with two connections is one
// member, two connections, two deliveries of each message, and two
// evictions when kicked.
func TestMetricsSeveralConnections(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{Authenticate: headerAuth})
	alice1 := s.dialAs(t, chat.Identity{Name: "alice"})
	alice1.nextN(3)
	alice2 := s.dialAs(t, chat.Identity{Name: "alice"})
	alice2.nextN(3)
	bob := s.dialAs(t, chat.Identity{Name: "bob"})
	bob.nextN(3)
	bob.say("hello")
	for _, c := range []*conn{alice1, alice2} {
		c.next() // bob's join
	}
	for _, c := range []*conn{alice1, alice2, bob} {
		diff(t, "message", msg("bob", "hello"), c.next())
	}
	m := waitMetrics(t, s.hub, "one message to three connections", func(m chat.Metrics) bool { return m.MessagesOut == 3 })
	if m.Members != 2 || m.Connections != 3 || m.MessagesIn != 1 {
		t.Errorf("%d members, %d connections, %d messages in; want 2, 3, 1", m.Members, m.Connections, m.MessagesIn)
	}
	if err := s.hub.Kick(t.Context(), "alice", ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*conn{alice1, alice2} {
		if code := c.closeCode(); code != websocket.ClosePolicyViolation {
			t.Errorf("alice's close code = %d, want 1008", code)
		}
	}
	m = waitMetrics(t, s.hub, "alice kicked", func(m chat.Metrics) bool { return m.Members == 1 })
	diff(t, "evictions", chat.Evictions{Kicked: 2}, m.Evictions)
}

// failingBefore is a testStore whose reads of older pages fail.
type failingBefore struct{ *testStore }

func (failingBefore) Before(context.Context, string, string, string, int) ([]chat.Message, error) {
	return nil, errors.New("teststore: index on fire")
}

// TestMetricsStoreErrors: failed Appends (every try) and failed reads
// count as store errors; a page that cannot be read is a rejected frame.
func TestMetricsStoreErrors(t *testing.T) {
	t.Parallel()
	st := newTestStore()
	st.failN = 2
	log, _ := newLogRecorder(t)
	s := startServer(t, chat.Options{Store: failingBefore{st}, Logger: log})
	alice := s.joinAs(t, "alice")
	alice.say("hello")
	alice.next()
	waitStored(t, st, "", 1)
	alice.send(map[string]string{"type": "history", "before": "5"})
	expectError(t, alice, "history temporarily unavailable")
	m := waitMetrics(t, s.hub, "store errors", func(m chat.Metrics) bool { return m.StoreErrors == 3 })
	diff(t, "rejections", chat.Rejections{Unavailable: 1}, m.Rejected)
	if m.BrokerErrors != 0 {
		t.Errorf("BrokerErrors = %d", m.BrokerErrors)
	}
}

// failingBroker is a syncBroker whose links cannot publish.
type failingBroker struct{ *syncBroker }

type failingLink struct{ chat.Link }

func (b failingBroker) Open(room string, deliver func(chat.Event)) (chat.Link, error) {
	l, err := b.syncBroker.Open(room, deliver)
	return failingLink{l}, err
}

func (failingLink) Publish(context.Context, chat.Message) error {
	return errors.New("membroker: wire cut")
}

// TestMetricsBroker: a publish that fails is a broker error and a rejected
// frame; a member the broker drops is evicted.
func TestMetricsBroker(t *testing.T) {
	t.Parallel()
	b := &syncBroker{Broker: chat.NewMemoryBroker()}
	log, _ := newLogRecorder(t)
	s := startServer(t, chat.Options{Broker: failingBroker{b}, Logger: log})
	alice := s.joinAs(t, "alice")
	alice.say("hello")
	expectError(t, alice, "room temporarily unavailable")

	b.inject(chat.Event{Kind: chat.EventSync, Sync: &chat.Snapshot{}})
	if code := alice.closeCode(); code != 1013 {
		t.Errorf("alice's close code = %d, want 1013", code)
	}
	m := s.hub.Metrics()
	if m.BrokerErrors != 1 {
		t.Errorf("BrokerErrors = %d, want 1", m.BrokerErrors)
	}
	diff(t, "rejections", chat.Rejections{Unavailable: 1}, m.Rejected)
	diff(t, "evictions", chat.Evictions{Other: 1}, m.Evictions)
	if m.MessagesIn != 0 {
		t.Errorf("MessagesIn = %d, want 0", m.MessagesIn)
	}
}

// ExampleHub_Metrics reads a hub's metrics, as a dashboard would.
func ExampleHub_Metrics() {
	hub := chat.NewHub(chat.Options{})
	defer hub.Close()
	if err := hub.Post(context.Background(), "welcome"); err != nil {
		fmt.Println(err)
	}
	m := hub.Metrics()
	fmt.Println("members:", m.Members, "connections:", m.Connections)
	fmt.Println("messages in:", m.MessagesIn, "out:", m.MessagesOut)
	fmt.Println("evicted as too slow:", m.Evictions.Slow, "rejected for rate:", m.Rejected.Rate)
	fmt.Println("p99 delivery lag:", m.Lag.Quantile(0.99))
	// Output:
	// members: 0 connections: 0
	// messages in: 0 out: 0
	// evicted as too slow: 0 rejected for rate: 0
	// p99 delivery lag: 0s
}
