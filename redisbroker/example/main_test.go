package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/hubchat/chat/redisbroker/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestParseFlags(t *testing.T) {
	got, err := parseFlags([]string{"-addr", ":8081", "-redis", "r:6380"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (config{addr: ":8081", redis: "r:6380", room: "lobby"}); got != want {
		t.Errorf("parseFlags = %+v, want %+v", got, want)
	}
	if _, err := parseFlags([]string{"extra"}, io.Discard); err == nil {
		t.Error("parseFlags(extra) succeeded")
	}
}

// start runs an instance on a free port until the end of the test.
func start(t *testing.T, redisAddr string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, config{addr: "127.0.0.1:0", redis: redisAddr, room: "lobby"}, io.Discard, ready)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return addr.String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return ""
}

type frame struct {
	Type     string   `json:"type"`
	Username string   `json:"username,omitempty"`
	Body     string   `json:"body,omitempty"`
	Users    []string `json:"users,omitempty"`
}

func dial(t *testing.T, addr, name string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws?username="+url.QueryEscape(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func read(t *testing.T, ws *websocket.Conn, n int) []frame {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out []frame
	for range n {
		var f frame
		if err := ws.ReadJSON(&f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// Two instances on one Redis serve one room.
func TestTwoInstances(t *testing.T) {
	r := redistest.Start(t)
	a, b := start(t, r.Addr()), start(t, r.Addr())

	resp, err := http.Get("http://" + b + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") {
		t.Errorf("GET /: %d %.40q", resp.StatusCode, body)
	}

	alice := dial(t, a, "alice")
	read(t, alice, 3) // join, users, history
	bob := dial(t, b, "bob")
	want := []frame{{Type: "join", Username: "bob"}, {Type: "users", Users: []string{"alice", "bob"}}, {Type: "history"}}
	if diff := cmp.Diff(want, read(t, bob, 3)); diff != "" {
		t.Errorf("bob's welcome (-want +got):\n%s", diff)
	}
	if err := bob.WriteJSON(map[string]string{"type": "message", "body": "hi"}); err != nil {
		t.Fatal(err)
	}
	want = []frame{{Type: "join", Username: "bob"}, {Type: "message", Username: "bob", Body: "hi"}}
	if diff := cmp.Diff(want, read(t, alice, 2)); diff != "" {
		t.Errorf("alice's frames (-want +got):\n%s", diff)
	}
}

func TestRedisUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = serve(context.Background(), config{addr: "127.0.0.1:0", redis: addr, room: "lobby"}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "redis") {
		t.Errorf("serve with no Redis: %v", err)
	}
}
