package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/hubchat/chat"
	"github.com/hubchat/chat/examples/internal/chattest"
	"github.com/hubchat/chat/examples/internal/webserver"
)

func TestMain(m *testing.M) { chattest.Main(m) }

func TestParseFlags(t *testing.T) {
	loopback := webserver.HostPatterns("localhost", "127.0.0.1", "::1")
	tests := []struct {
		name string
		args []string
		want config
	}{
		{"defaults", nil, config{addr: "localhost:8080", db: "hubchat-static.db", files: "hubchat-static-files",
			opts: chat.Options{Name: "lobby", RateLimit: 20, HistorySize: 50, AllowedHosts: loopback}}},
		{"set", []string{"-addr", ":9000", "-db", "/var/lib/chat.db", "-rate", "2.5", "-history", "10", "-hosts", "chat.example, 10.0.0.2"},
			config{addr: ":9000", db: "/var/lib/chat.db", files: "/var/lib/chat-files", opts: chat.Options{Name: "lobby", RateLimit: 2.5, HistorySize: 10,
				AllowedHosts: webserver.HostPatterns(append(webserver.HostNames(""), "chat.example", "10.0.0.2")...)}}},
		{"off", []string{"-rate", "0", "-history", "0", "-db", ""},
			config{addr: "localhost:8080", opts: chat.Options{Name: "lobby", RateLimit: -1, HistorySize: -1, AllowedHosts: loopback}}},
		{"memory", []string{"-db", ":memory:"},
			config{addr: "localhost:8080", opts: chat.Options{Name: "lobby", RateLimit: 20, HistorySize: 50, AllowedHosts: loopback}}},
		{"files", []string{"-db", "", "-files", "shared"},
			config{addr: "localhost:8080", files: "shared", opts: chat.Options{Name: "lobby", RateLimit: 20, HistorySize: 50, AllowedHosts: loopback}}},
		{"no files", []string{"-files", ""},
			config{addr: "localhost:8080", db: "hubchat-static.db", opts: chat.Options{Name: "lobby", RateLimit: 20, HistorySize: 50, AllowedHosts: loopback}}},
		{"admin", []string{"-admin", "localhost:8081"},
			config{addr: "localhost:8080", db: "hubchat-static.db", files: "hubchat-static-files", admin: "localhost:8081",
				opts: chat.Options{Name: "lobby", RateLimit: 20, HistorySize: 50, AllowedHosts: loopback}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("parseFlags(%q) mismatch (-want +got):\n%s", tc.args, diff)
			}
		})
	}
	for _, args := range [][]string{{"-rate", "-1"}, {"-history", "-5"}, {"-rate", "x"}, {"extra"}, {"-nope"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", args)
		}
	}
}

func TestPages(t *testing.T) {
	url := strings.TrimSuffix(startApp(t), "/")
	tests := []struct {
		method, path string
		status       int
		contentType  string
		contains     string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", `data-hubchat-ws="ws"`},
		{"GET", "/chat.js", 200, "text/javascript; charset=utf-8", "textContent"},
		{"GET", "/chat.css", 200, "text/css; charset=utf-8", ".msg.mine"},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/nope", 404, "text/plain; charset=utf-8", ""},
		{"POST", "/", 405, "text/plain; charset=utf-8", ""},
		{"GET", "/ws", 400, "text/plain; charset=utf-8", ""}, // not an upgrade
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, url+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tc.contentType)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
			if tc.status == 200 && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("missing Content-Security-Policy")
			}
		})
	}
}

func TestCrossOriginRefused(t *testing.T) {
	url := chattest.WSURL(startApp(t)) + "ws?username=mallory"
	_, resp, err := chattest.Dial(t, url, "http://evil.example")
	if err == nil {
		t.Fatal("cross-origin upgrade succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade: %v, response %v; want 403", err, resp)
	}
	// The page's own origin is welcome.
	chattest.Join(t, url, strings.Replace(url, "ws://", "http://", 1), "alice")
}

func TestChat(t *testing.T) {
	url := chattest.WSURL(startApp(t)) + "ws"
	alice := chattest.Join(t, url, "", "alice")
	alice.Say("hello <b>everyone</b>")
	if got := alice.ReadUntil("message"); got.Body != "hello <b>everyone</b>" {
		t.Fatalf("alice's echo = %+v", got)
	}

	bob, _, err := chattest.Dial(t, url+"?username=bob", "")
	if err != nil {
		t.Fatal(err)
	}
	var got []chattest.Frame
	for range 3 {
		f, err := bob.Read()
		if err != nil {
			t.Fatal(err)
		}
		f.TS, f.ID = 0, ""
		for i := range f.Messages {
			f.Messages[i].TS, f.Messages[i].ID = 0, ""
		}
		got = append(got, f)
	}
	want := []chattest.Frame{
		{Type: "join", Username: "bob"},
		{Type: "users", Users: []string{"alice", "bob"}},
		{Type: "history", Messages: []chattest.Frame{{Type: "message", Username: "alice", Body: "hello <b>everyone</b>"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bob's welcome (-want +got):\n%s", diff)
	}
	if f := alice.ReadUntil("join"); f.Username != "bob" {
		t.Errorf("alice saw %+v, want bob's join", f)
	}

	bob.Say("hi alice")
	if f := alice.ReadUntil("message"); f.Username != "bob" || f.Body != "hi alice" {
		t.Errorf("alice got %+v", f)
	}

	// A taken name, compared case-insensitively, gets an error and 1008.
	dup, _, err := chattest.Dial(t, url+"?username=ALICE", "")
	if err != nil {
		t.Fatal(err)
	}
	if f := dup.ReadUntil("error"); !strings.Contains(f.Error, "taken") {
		t.Errorf("error frame %q does not say taken", f.Error)
	}
	if code := dup.CloseCode(); code != websocket.ClosePolicyViolation {
		t.Errorf("close code = %d, want 1008", code)
	}
}

func TestHistoryOff(t *testing.T) {
	url := chattest.WSURL(startApp(t, "-history", "0", "-rate", "0")) + "ws"
	alice := chattest.Join(t, url, "", "alice")
	for range 50 { // more than the default rate allows at once
		alice.Say("spam")
	}
	for range 50 {
		if f := alice.ReadUntil("message"); f.Body != "spam" {
			t.Fatalf("got %+v", f)
		}
	}
	bob := chattest.Join(t, url, "", "bob")
	bob.Say("first")
	f, err := bob.Read()
	if err == nil && f.Type == "upload" { // file sharing is on: its upload token
		f, err = bob.Read()
	}
	if err != nil || f.Type != "message" || f.Body != "first" {
		t.Errorf("bob's frame after users = %+v, %v; want his own message (no history)", f, err)
	}
}

// startServe runs the program's run with args and "-addr 127.0.0.1:0"
// until ctx is done, and returns the page URL it printed and the channel
// run's result arrives on.
func startServe(t *testing.T, ctx context.Context, args ...string) (page string, done <-chan error) {
	t.Helper()
	page, _, done = startServeArgs(t, ctx, 2, args...)
	return page, done
}

// startServeArgs is startServe for a run that prints n lines; it returns
// them after the first. The history is in a new file unless args has -db.
func startServeArgs(t *testing.T, ctx context.Context, n int, args ...string) (page string, more []string, done <-chan error) {
	t.Helper()
	args = append([]string{"-addr", "127.0.0.1:0", "-db", filepath.Join(t.TempDir(), "chat.db")}, args...)
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	out, w := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, cfg, w)
		w.Close()
		errc <- err
	}()
	br := bufio.NewReader(out)
	var lines []string
	for range n {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(line))
	}
	go io.Copy(io.Discard, br)
	// "static chat: open http://127.0.0.1:PORT/ (WebSocket ws://127.0.0.1:PORT/ws)"
	fields := strings.Fields(lines[0])
	if len(fields) < 4 || !strings.HasPrefix(fields[3], "http://127.0.0.1:") || strings.HasSuffix(fields[3], ":0/") {
		t.Fatalf("printed %q, want the real URL", lines[0])
	}
	return fields[3], lines[1:], errc
}

// TestServeAdmin: -admin serves the moderation API on a loopback port.
func TestServeAdmin(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	page, more, done := startServeArgs(t, ctx, 4, "-admin", "127.0.0.1:0")
	// "moderation: curl -d user=NAME http://127.0.0.1:PORT/kick", after
	// the history and files lines
	kick := more[2][strings.LastIndex(more[2], " ")+1:]
	if !strings.HasPrefix(kick, "http://127.0.0.1:") || !strings.HasSuffix(kick, "/kick") || strings.Contains(kick, ":0/") {
		t.Fatalf("printed %q, want the admin URL", more[2])
	}
	alice := chattest.Join(t, chattest.WSURL(page)+"ws", "", "alice")
	resp, err := http.PostForm(kick, map[string][]string{"user": {"alice"}, "reason": {"testing"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("POST %s: %s", kick, resp.Status)
	}
	if f := alice.ReadUntil("error"); f.Error != "kicked by a moderator: testing" {
		t.Errorf("alice got %+v", f)
	}
	if code := alice.CloseCode(); code != websocket.ClosePolicyViolation {
		t.Errorf("close code %d, want 1008", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}

	// Only on a loopback address.
	cfg, err := parseFlags([]string{"-addr", "127.0.0.1:0", "-db", "", "-admin", "0.0.0.0:0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("run with -admin 0.0.0.0:0: %v, want an error about loopback", err)
	}
}

// startApp runs the program with args until the test ends, and returns
// the page URL, http://127.0.0.1:PORT/.
func startApp(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	page, done := startServe(t, ctx, args...)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return page
}

// TestServe runs the program's run on a free port: it prints the real
// URL, chats, and on cancel closes clients with 1001 and returns nil.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	page, done := startServe(t, ctx)
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET %s: %s", page, resp.Status)
	}
	c := chattest.Join(t, chattest.WSURL(page)+"ws", "", "alice")
	// DNS rebinding: a page of evil.example re-pointed at 127.0.0.1 is
	// same-origin, but its Host is not the server's.
	evil := "evil.example:" + strings.TrimSuffix(page[strings.LastIndex(page, ":")+1:], "/")
	_, resp, err = chattest.DialHeader(t, chattest.WSURL(page)+"ws?username=mallory",
		http.Header{"Host": {evil}, "Origin": {"http://" + evil}})
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("upgrade with Host %s: %v, response %v; want 403", evil, err, resp)
	}
	cancel()
	if code := c.CloseCode(); code != websocket.CloseGoingAway {
		t.Errorf("close code on shutdown = %d, want 1001", code)
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestServeZombie: a client that never answers the close frame and keeps
// pinging does not hold up the shutdown: the server drops it after a short
// grace and run returns nil, so the program exits with status 0.
func TestServeZombie(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	page, done := startServe(t, ctx)
	ws, _, err := websocket.DefaultDialer.Dial(chattest.WSURL(page)+"ws?username=zombie", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetCloseHandler(func(int, string) error { return nil }) // never answers
	closed := make(chan int, 1)
	go func() { // reads until the close frame
		for {
			_ = ws.SetReadDeadline(time.Now().Add(chattest.Timeout))
			if _, _, err := ws.ReadMessage(); err != nil {
				ce, _ := errors.AsType[*websocket.CloseError](err)
				code := -1
				if ce != nil {
					code = ce.Code
				}
				closed <- code
				return
			}
		}
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // pings until the server drops the connection
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second)) != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run with a zombie client: %v, want nil", err)
	}
	if code := <-closed; code != websocket.CloseGoingAway {
		t.Errorf("close code on shutdown = %d, want 1001", code)
	}
}

// TestServeFiles: the program shares files beside the history file: an
// upload with the connection's token, a message with it, the download.
func TestServeFiles(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	dir := t.TempDir()
	page, _, done := startServeArgs(t, ctx, 3, "-db", filepath.Join(dir, "chat.db"))
	alice := chattest.Join(t, chattest.WSURL(page)+"ws", "", "alice")
	up := alice.ReadUntil("upload")
	if up.URL != "files/" || up.Token == "" {
		t.Fatalf("upload frame %+v", up)
	}
	req, err := http.NewRequestWithContext(t.Context(), "POST", page+"files/?name=notes.txt", strings.NewReader("Buy milk.\n"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(chat.UploadTokenHeader, up.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var f chattest.File
	err = json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s, %v", resp.Status, err)
	}
	alice.Send(map[string]string{"type": "message", "file": f.ID})
	if m := alice.ReadUntil("message"); m.File == nil || *m.File != f {
		t.Errorf("message %+v, want the file %+v", m, f)
	}
	resp, err = http.Get(page + f.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "Buy milk.\n" || resp.Header.Get("Content-Disposition") != "attachment; filename=notes.txt" {
		t.Errorf("GET %s: %s %q %v", f.URL, resp.Status, body, resp.Header)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "chat-files"))
	if err != nil || len(ents) != 2 {
		t.Errorf("chat-files holds %v (%v), want the file and its metadata", ents, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestMetrics: GET /metrics serves the room's metrics for Prometheus.
func TestMetrics(t *testing.T) {
	page := startApp(t)
	alice := chattest.Join(t, chattest.WSURL(page)+"ws", "", "alice")
	alice.Say("hello")
	alice.ReadUntil("message")
	alice.Send(map[string]string{"type": "shout"})
	alice.ReadUntil("error")
	chattest.WaitMetrics(t, page+"metrics", map[string]string{
		`hubchat_members{room="lobby"}`:                            "1",
		`hubchat_connections{room="lobby"}`:                        "1",
		`hubchat_messages_received_total{room="lobby"}`:            "1",
		`hubchat_messages_delivered_total{room="lobby"}`:           "1",
		`hubchat_delivery_lag_seconds_count{room="lobby"}`:         "1",
		`hubchat_rejected_frames_total{cause="type",room="lobby"}`: "1",
		`hubchat_rejected_frames_total{cause="rate",room="lobby"}`: "0",
		`hubchat_evictions_total{cause="slow",room="lobby"}`:       "0",
	})
	resp, err := http.Post(page+"metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %s, want 405", resp.Status)
	}
}
