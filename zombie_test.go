package chat_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hubchat/chat"
)

// Zombies are clients that ignore the server's close frame: they never
// answer it, and they go on pinging (and posting) as if nothing happened.
// Once the server has decided to close, a member leaves at once and its
// connection is dropped after a short grace, whatever it sends.

// ignoreClose is a close handler that does not answer the close frame.
func ignoreClose(int, string) error { return nil }

// readToClose reads ws in the background until it ends and sends the close
// code the server sent on the returned channel (-1 for none).
func readToClose(ws *websocket.Conn) <-chan int {
	code := make(chan int, 1)
	go func() {
		for {
			_ = ws.SetReadDeadline(time.Now().Add(ioTimeout))
			if _, _, err := ws.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					code <- ce.Code
				} else {
					code <- -1
				}
				return
			}
		}
	}()
	return code
}

// pester pings the server over ws every few milliseconds (and, if post is
// set, posts a message) until a write fails because the server dropped the
// connection, which it reports as nil; after ioTimeout it gives up with an
// error.
func pester(ws *websocket.Conn, post bool) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(ioTimeout)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			return fmt.Errorf("still connected after %v of pings", ioTimeout)
		}
		if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)); err != nil {
			return nil
		}
		if post {
			_ = ws.SetWriteDeadline(time.Now().Add(time.Second))
			if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"message","body":"zombie %d"}`, i)); err != nil {
				return nil
			}
		}
		<-tick.C
	}
}

// waitResult waits for a result of a background goroutine.
func waitResult[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(2 * ioTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// logWatch is a slog.Handler that calls seen for every record with message
// msg, at any level, and passes records at Warn and above on to next.
type logWatch struct {
	next slog.Handler
	msg  string
	seen func()
}

func (h logWatch) Enabled(context.Context, slog.Level) bool { return true }

func (h logWatch) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.seen()
	}
	if r.Level < slog.LevelWarn {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h logWatch) WithAttrs(as []slog.Attr) slog.Handler {
	h.next = h.next.WithAttrs(as)
	return h
}

func (h logWatch) WithGroup(name string) slog.Handler {
	h.next = h.next.WithGroup(name)
	return h
}

// TestEvictedZombie: a member evicted as too slow that reads on but never
// answers the close frame, and keeps pinging and posting, leaves the room
// at once: its leave is announced, its name is free, nothing it sends is
// published, and its connection is dropped after the close grace.
func TestEvictedZombie(t *testing.T) {
	t.Parallel()
	evicted := make(chan struct{})
	var once sync.Once
	logger := slog.New(logWatch{
		next: slog.NewTextHandler(t.Output(), nil),
		msg:  "chat: disconnecting slow client",
		seen: func() { once.Do(func() { close(evicted) }) },
	})
	s := startServer(t, chat.Options{SendQueue: 8, MaxBodyBytes: 1 << 15, ReadLimit: 1 << 18, RateLimit: -1, Logger: logger})
	watcher := s.joinAs(t, "watcher")
	zombie := s.joinAs(t, "zombie") // reads nothing until it is evicted
	zombie.ws.SetCloseHandler(ignoreClose)
	diff(t, "watcher's next frame", join("zombie"), watcher.next())

	// Post with a window of 4 messages the watcher has not read: it keeps
	// up, while the zombie's socket buffers and then its queue fill.
	body := strings.Repeat("x", 1<<15)
	sent, got := 0, 0
	seen := func(f frame) {
		t.Helper()
		switch {
		case f.Type == "message" && f.Username == "system":
			got++
		case f.Type == "leave" && f.Username == "zombie":
			t.Fatalf("zombie's leave before its eviction")
		default:
			t.Fatalf("watcher got %+v", f)
		}
	}
flood:
	for {
		select {
		case <-evicted:
			break flood
		default:
		}
		if sent-got < 4 {
			if sent == 3000 { // 3000 × 32 KiB: far more than socket buffers hold
				t.Fatalf("zombie not evicted after %d messages", sent)
			}
			if err := s.hub.Post(context.Background(), body); err != nil {
				t.Fatal(err)
			}
			sent++
			continue
		}
		seen(watcher.next())
	}

	// Evicted: the zombie reads on, gets the close frame, ignores it, and
	// pings and posts until the server drops it.
	if code := waitResult(t, "the zombie's close frame", readToClose(zombie.ws)); code != websocket.ClosePolicyViolation {
		t.Fatalf("zombie's close code = %d, want 1008", code)
	}
	dropped := make(chan error, 1)
	go func() { dropped <- pester(zombie.ws, true) }()

	for left := false; !left; {
		f, err := watcher.read()
		if err != nil {
			t.Fatalf("watching for the zombie's leave (%d of %d messages seen): %v", got, sent, err)
		}
		if f.Type == "leave" && f.Username == "zombie" {
			left = true
			continue
		}
		seen(f)
	}
	if err := waitResult(t, "the zombie's connection to end", dropped); err != nil {
		t.Fatalf("zombie: %v", err)
	}
	if got != sent {
		t.Errorf("watcher received %d messages, want %d", got, sent)
	}

	// The name is free, and the zombie's posts were never published.
	s.joinAs(t, "zombie")
	if err := s.hub.Post(context.Background(), "marker"); err != nil {
		t.Fatal(err)
	}
	diff(t, "watcher's frames after the leave",
		[]frame{join("zombie"), {Type: "message", Username: "system", Body: "marker", System: true}},
		watcher.nextN(2))
}

// TestRefusedZombie: a client whose join is refused and that never
// answers the close frame but keeps pinging is dropped after the close
// grace.
func TestRefusedZombie(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	s.joinAs(t, "alice")
	z := s.dial(t, "username=alice")
	z.ws.SetCloseHandler(ignoreClose)
	if got := z.next(); got.Type != "error" || !strings.Contains(got.Error, "taken") {
		t.Fatalf("reply = %+v, want an error containing %q", got, "taken")
	}
	if code := z.closeCode(); code != websocket.ClosePolicyViolation {
		t.Fatalf("close code = %d, want 1008", code)
	}
	if err := pester(z.ws, true); err != nil {
		t.Fatalf("refused zombie: %v", err)
	}
	diff(t, "Users", []string{"alice"}, s.hub.Users())
}

// TestShutdownZombie: a member that never answers the close frame and
// keeps pinging does not hold up Hub.Shutdown past the close grace.
func TestShutdownZombie(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	other := s.joinAs(t, "other")
	z := s.joinAs(t, "zombie")
	z.ws.SetCloseHandler(ignoreClose)
	closed := readToClose(z.ws)
	dropped := make(chan error, 1)
	go func() { dropped <- pester(z.ws, false) }()

	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := s.hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a zombie client = %v, want nil", err)
	}
	if code := waitResult(t, "the zombie's close frame", closed); code != websocket.CloseGoingAway {
		t.Errorf("zombie's close code = %d, want 1001", code)
	}
	if err := waitResult(t, "the zombie's connection to end", dropped); err != nil {
		t.Errorf("zombie: %v", err)
	}
	if code := other.closeCode(); code != websocket.CloseGoingAway {
		t.Errorf("other's close code = %d, want 1001", code)
	}
}

// TestJoinTimeout: a connection that does not send its join frame within
// JoinTimeout gets an error frame that says so and a 1008 close; pongs to
// the server's pings do not extend the wait.
func TestJoinTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{JoinTimeout: 100 * time.Millisecond, PingInterval: 10 * time.Millisecond, ReadTimeout: time.Minute})
	c := s.dial(t, "") // gorilla answers the pings while it reads
	if got := c.next(); got.Type != "error" || !strings.Contains(got.Error, "join") {
		t.Fatalf("reply = %+v, want an error about the join", got)
	}
	if code := c.closeCode(); code != websocket.ClosePolicyViolation {
		t.Errorf("close code = %d, want 1008", code)
	}
}
