package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hubchat/chat"
)

// pipeListener is an in-memory net.Listener: each dial is a net.Pipe, so
// timer behaviour runs on synctest's fake clock.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestKeepalive: a connection that stops answering pings (half-open) is
// removed after ReadTimeout, its name freed and its leave announced, while
// a connection that answers stays. Runs on a fake clock.
func TestKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := chat.NewHub(chat.Options{
			PingInterval: time.Second,
			ReadTimeout:  3 * time.Second,
			Logger:       slog.New(slog.DiscardHandler),
		})
		ln := newPipeListener()
		hs := &http.Server{Handler: chat.NewServer(hub)}
		go hs.Serve(ln)
		dialer := websocket.Dialer{NetDialContext: ln.dial}
		dial := func(name string) *websocket.Conn {
			ws, _, err := dialer.Dial("ws://pipe/ws?username="+name, nil)
			if err != nil {
				t.Fatalf("dial %s: %v", name, err)
			}
			return ws
		}
		// readAll reads until the connection ends; gorilla answers pings
		// while reading unless the ping handler is replaced.
		readAll := func(ws *websocket.Conn, out chan<- frame) {
			defer close(out)
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				var f frame
				if json.Unmarshal(data, &f) == nil {
					out <- f
				}
			}
		}

		alive := dial("alive")
		aliveFrames := make(chan frame, 100)
		go readAll(alive, aliveFrames)
		synctest.Wait() // alive has joined before dead connects

		dead := dial("dead")
		dead.SetPingHandler(func(string) error { return nil }) // never pongs
		deadFrames := make(chan frame, 100)
		go readAll(dead, deadFrames)

		time.Sleep(2500 * time.Millisecond) // fake time: pings answered by alive only
		synctest.Wait()
		diff(t, "members before the timeout", []string{"alive", "dead"}, hub.Users())

		time.Sleep(2 * time.Second) // past dead's ReadTimeout
		synctest.Wait()
		diff(t, "members after the timeout", []string{"alive"}, hub.Users())

		var got []frame
		for len(aliveFrames) > 0 {
			got = append(got, <-aliveFrames)
		}
		diff(t, "alive's stream", []frame{join("alive"), users("alive"), history(), join("dead"), leave("dead")}, got)

		// The name is free again.
		again := dial("dead")
		againFrames := make(chan frame, 100)
		go readAll(again, againFrames)
		synctest.Wait()
		if f := <-againFrames; f.Type != "join" || f.Username != "dead" {
			t.Errorf("rejoin: first frame %+v", f)
		}

		if err := hub.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range aliveFrames { // the close frame ends the reader
		}
		for range againFrames {
		}
		for range deadFrames {
		}
		ln.Close()
		if err := hs.Close(); err != nil && !errors.Is(err, io.EOF) {
			t.Errorf("http.Server.Close: %v", err)
		}
	})
}
