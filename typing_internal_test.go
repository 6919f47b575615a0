package chat

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOutboxTypingWeightless: typing notices have no weight towards
// SendQueue, so a stuck connection that falls far behind on them is not
// disconnected, and once unstuck it receives every one, in order.
func TestOutboxTypingWeightless(t *testing.T) {
	h := NewHub(Options{SendQueue: 8, HistorySize: -1, PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	lag := &recConn{}
	cl := newClient(h, nil, nil)
	cl.nc = lag
	h.mu.Lock()
	h.applyJoinLocked("lag", "lag", Profile{}, cl)
	h.mu.Unlock()
	waitWritten(t, h, []*client{cl})

	h.out.mu.Lock()
	h.out.unidleLocked(cl)
	cl.w.state = wSlow
	h.out.slow = append(h.out.slow, cl)
	h.out.mu.Unlock()
	const notices = 4 * 8 * msgWeight // four times what would disconnect it as messages
	want := []string{"join:lag", "users:1"}
	for range notices {
		h.out.typing(appendNameEvent(nil, typeTyping, "bob"))
		want = append(want, "typing:bob")
	}
	h.out.mu.Lock()
	closing := cl.w.closing
	h.out.slow = h.out.slow[:0]
	cl.w.state = wWriting
	h.out.doneLocked(cl, &batch{first: -1}, nil, &tally{})
	h.out.startLocked()
	h.out.mu.Unlock()
	if closing {
		t.Fatalf("disconnected after %d typing notices with SendQueue 8", notices)
	}
	waitWritten(t, h, []*client{cl})
	if diff := cmp.Diff(want, lag.events(t)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
}

// TestDecodeTyping: a typing frame needs nothing but its type; other
// fields are ignored.
func TestDecodeTyping(t *testing.T) {
	for _, in := range []string{`{"type":"typing"}`, ` {"type":"typing","body":"x"} `} {
		f, err := decodeClientFrame([]byte(in))
		if err != nil || f.Type != typeTyping {
			t.Errorf("decode %s: %+v, %v", in, f, err)
		}
	}
	for _, in := range []string{`{"type":"typing"}{}`, `{"type":"Typing"}`} {
		if _, err := decodeClientFrame([]byte(in)); err == nil {
			t.Errorf("decode %s: no error", in)
		}
	}
}
