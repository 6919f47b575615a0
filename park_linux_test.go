package chat

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// parkServer serves a hub with opts on a loopback socket until the test
// ends and returns it and its WebSocket URL.
func parkServer(t *testing.T, opts Options) (*Hub, string) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := NewHub(opts)
	hs := httptest.NewServer(NewServer(h))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return h, "ws" + strings.TrimPrefix(hs.URL, "http")
}

// parkDial joins as name and reads the welcome (join, users, history).
func parkDial(t *testing.T, url, name string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url+"?username="+name, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", name, err)
	}
	t.Cleanup(func() { ws.Close() })
	for range 3 {
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatalf("%s: welcome: %v", name, err)
		}
	}
	return ws
}

// waitParked waits until n of h's connections are parked, with no reader
// goroutine.
func waitParked(t *testing.T, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		parked := 0
		h.mu.Lock()
		for c := range h.conns {
			if c.rstate.Load() == rParked {
				parked++
			}
		}
		h.mu.Unlock()
		if parked >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections parked, want %d", parked, n)
		}
		time.Sleep(time.Millisecond) // polling, with a deadline
	}
}

func readText(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(data)
}

// TestParkIdle: joined, idle members are parked (their connections have
// no reader goroutine); a message from one resumes its reader, reaches
// everyone, and the sender is parked again.
func TestParkIdle(t *testing.T) {
	h, url := parkServer(t, Options{PingInterval: -1})
	const n = 8
	var conns []*websocket.Conn
	for i := range n {
		conns = append(conns, parkDial(t, url, string(rune('a'+i))))
	}
	for i, ws := range conns { // the joins after each one's own
		for range n - 1 - i {
			readText(t, ws)
		}
	}
	waitParked(t, h, n)
	for round := range 3 {
		body := "round " + string(rune('0'+round))
		if err := conns[0].WriteMessage(websocket.TextMessage, []byte(`{"type":"message","body":"`+body+`"}`)); err != nil {
			t.Fatal(err)
		}
		for i, ws := range conns {
			if got := readText(t, ws); !strings.Contains(got, body) {
				t.Fatalf("client %d got %s, want the message %q", i, got, body)
			}
		}
		waitParked(t, h, n)
	}
}

// TestParkedKeepalive: a parked member that answers pings stays, and stays
// parked (its pongs are taken without waking a reader), while one that
// stops answering is disconnected after ReadTimeout and its leave
// announced.
func TestParkedKeepalive(t *testing.T) {
	h, url := parkServer(t, Options{PingInterval: 20 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	alive := parkDial(t, url, "alive")
	dead := parkDial(t, url, "dead")
	readText(t, alive)                                     // dead's join
	dead.SetPingHandler(func(string) error { return nil }) // never pongs

	var wg sync.WaitGroup
	frames := make(chan string, 16)
	wg.Go(func() { // alive reads, so gorilla answers its pings
		defer close(frames)
		for {
			_ = alive.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, data, err := alive.ReadMessage()
			if err != nil {
				return
			}
			frames <- string(data)
		}
	})
	wg.Go(func() {
		for {
			if _, _, err := dead.ReadMessage(); err != nil {
				return
			}
		}
	})
	select {
	case f := <-frames:
		if !strings.Contains(f, `"leave"`) || !strings.Contains(f, `"dead"`) {
			t.Fatalf("alive got %s, want dead's leave", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dead was not disconnected")
	}
	// Ten ping intervals and more have passed: alive answered them parked.
	if u := h.Users(); len(u) != 1 || u[0] != "alive" {
		t.Fatalf("members %v, want [alive]", u)
	}
	waitParked(t, h, 1)
	alive.Close()
	dead.Close()
	wg.Wait()
}

// TestParkedPing: a ping from a parked client is answered with its
// payload, and a ping sent together with a message in one segment is
// answered and the message handled.
func TestParkedPing(t *testing.T) {
	h, url := parkServer(t, Options{PingInterval: -1})
	ws := parkDial(t, url, "pinger")
	waitParked(t, h, 1)
	pongs := make(chan string, 2)
	ws.SetPongHandler(func(data string) error { pongs <- data; return nil })
	if err := ws.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	// Read until the message below: the pong handler runs meanwhile.
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	msgs := make(chan string, 1)
	go func() {
		_, data, err := ws.ReadMessage()
		if err != nil {
			data = []byte(err.Error())
		}
		msgs <- string(data)
	}()
	if got := <-pongs; got != "hello" {
		t.Fatalf("pong %q, want hello", got)
	}
	waitParked(t, h, 1)

	// A masked ping ("x") and a masked message in one write; a zero mask
	// leaves the payloads as they are.
	body := `{"type":"message","body":"together"}`
	seg := []byte{0x80 | opPing, 0x80 | 1, 0, 0, 0, 0, 'x'}
	seg = append(seg, 0x80|opText, 0x80|byte(len(body)), 0, 0, 0, 0)
	seg = append(seg, body...)
	if _, err := ws.UnderlyingConn().Write(seg); err != nil {
		t.Fatal(err)
	}
	if got := <-msgs; !strings.Contains(got, "together") {
		t.Fatalf("got %s, want the message", got)
	}
	if got := <-pongs; got != "x" {
		t.Fatalf("pong %q, want x", got)
	}
	waitParked(t, h, 1)
}
