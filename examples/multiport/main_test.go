package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/hubchat/chat/examples/internal/chattest"
	"github.com/hubchat/chat/examples/internal/webserver"
)

func TestMain(m *testing.M) { chattest.Main(m) }

func TestParseArgs(t *testing.T) {
	def := config{
		addr: "localhost:8080", host: "localhost", servers: []int{8081, 8082},
		allow: portRange{First: 8083, Last: 8099}, db: "hubchat-multiport.db", files: "hubchat-multiport-files",
	}
	with := func(f func(*config)) config {
		c := def
		f(&c)
		return c
	}
	tests := []struct {
		name string
		args []string
		want config
	}{
		{"defaults", nil, def},
		{"custom", []string{"custom", "8083"}, with(func(c *config) { c.custom = 8083 })},
		{"flags around custom", []string{"-host", "127.0.0.1", "custom", "9000", "-origin", "a:1, b:2"},
			with(func(c *config) { c.host, c.custom, c.origins = "127.0.0.1", 9000, []string{"a:1", "b:2"} })},
		{"set", []string{"-addr", ":0", "-servers", "9001, 9002,9003", "-allow", "9100"},
			with(func(c *config) {
				c.addr, c.servers, c.allow = ":0", []int{9001, 9002, 9003}, portRange{First: 9100, Last: 9100}
			})},
		{"no servers", []string{"-servers", ""}, with(func(c *config) { c.servers = nil })},
		{"bridge", []string{"-bridge", "8081, 8082"}, with(func(c *config) { c.bridge = []int{8081, 8082} })},
		{"hosts", []string{"-hosts", "chat.example, 10.0.0.2,"}, with(func(c *config) { c.hosts = []string{"chat.example", "10.0.0.2"} })},
		{"db", []string{"-db", "data/rooms.db"}, with(func(c *config) { c.db, c.files = "data/rooms.db", "data/rooms-files" })},
		{"no db", []string{"-db", ""}, with(func(c *config) { c.db, c.files = "", "" })},
		{"memory", []string{"-db", ":memory:"}, with(func(c *config) { c.db, c.files = "", "" })},
		{"files", []string{"-db", "", "-files", "shared"}, with(func(c *config) { c.db, c.files = "", "shared" })},
		{"files after custom", []string{"custom", "9000", "-files", ""}, with(func(c *config) { c.custom, c.files = 9000, "" })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseArgs(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(config{})); diff != "" {
				t.Errorf("parseArgs(%q) mismatch (-want +got):\n%s", tc.args, diff)
			}
		})
	}
	for _, args := range [][]string{
		{"custom"}, {"custom", "0"}, {"custom", "70000"}, {"custom", "x"}, {"custom", "1", "2"}, {"other"},
		{"-allow", "9-1"}, {"-allow", "a-b"}, {"-servers", "1,x"}, {"-bridge", "8081,0"}, {"-nope"},
	} {
		if _, err := parseArgs(args, io.Discard); err == nil {
			t.Errorf("parseArgs(%q) succeeded, want an error", args)
		}
	}
}

func TestOrigins(t *testing.T) {
	got := originsOf(8080, "localhost", "127.0.0.1", "chat.example")
	want := []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "chat.example:8080"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Origins mismatch (-want +got):\n%s", diff)
	}
}

// startApp serves the app's main handler on an httptest server, allowing
// the given port range, and shuts everything down at cleanup.
func startApp(t *testing.T, allow portRange) (*rooms, string) {
	t.Helper()
	return startAppWith(t, roomsConfig{Allow: allow})
}

// startAppWith is startApp with more of the app's Config.
func startAppWith(t *testing.T, cfg roomsConfig) (*rooms, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Chat servers accept the main page's origin, as the program sets up.
	cfg.Host = "127.0.0.1"
	cfg.Origins = originsOf(ln.Addr().(*net.TCPAddr).Port, "127.0.0.1")
	app := newRooms(cfg)
	ts := httptest.NewUnstartedServer(app.handler())
	ts.Listener.Close()
	ts.Listener = ln
	ts.Start()
	t.Cleanup(func() {
		if err := app.shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		ts.Close()
	})
	return app, ts.URL
}

// do sends a request and returns the status and the decoded JSON body.
func do(t *testing.T, method, url, contentType, body string, header ...string) (int, http.Header, any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	if method != http.MethodHead {
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			t.Fatalf("%s %s: %s, body is not JSON: %v", method, url, resp.Status, err)
		}
	}
	return resp.StatusCode, resp.Header, v
}

func TestServersAPI(t *testing.T) {
	free := chattest.FreePort(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0") // held by "another program"
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	allow := portRange{First: min(free, busyPort), Last: max(free, busyPort)}
	app, base := startApp(t, allow)
	api := base + "/api/servers"

	first, err := app.start(0)
	if err != nil {
		t.Fatal(err)
	}
	status, _, got := do(t, "GET", api, "", "")
	want := []any{map[string]any{
		"name": fmt.Sprintf("Server 1 (%d)", first.Port),
		"port": float64(first.Port),
		"url":  fmt.Sprintf("ws://127.0.0.1:%d/ws", first.Port),
	}}
	if status != 200 {
		t.Errorf("GET: status %d", status)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /api/servers (-want +got):\n%s", diff)
	}

	status, _, got = do(t, "POST", api, "application/json", fmt.Sprintf(`{"port":%d}`, free))
	started := map[string]any{
		"name": fmt.Sprintf("Server 2 (%d)", free),
		"port": float64(free),
		"url":  fmt.Sprintf("ws://127.0.0.1:%d/ws", free),
	}
	if status != http.StatusCreated {
		t.Fatalf("POST port %d: status %d, %v", free, status, got)
	}
	if diff := cmp.Diff(started, got); diff != "" {
		t.Errorf("POST /api/servers (-want +got):\n%s", diff)
	}
	_, _, got = do(t, "GET", api, "", "")
	if diff := cmp.Diff(append(want, started), got); diff != "" {
		t.Errorf("GET /api/servers after POST (-want +got):\n%s", diff)
	}
	// The new server is a working chat server.
	chattest.Join(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", free), "", "alice")

	outside := allow.Last + 1
	if outside > 65535 {
		outside = allow.First - 1
	}
	tests := []struct {
		name, method, contentType, body string
		header                          []string
		status                          int
		errContains                     string
	}{
		{"out of range", "POST", "application/json", fmt.Sprintf(`{"port":%d}`, outside), nil, 400, "outside the allowed range"},
		{"port zero", "POST", "application/json", `{"port":0}`, nil, 400, "outside the allowed range"},
		{"negative", "POST", "application/json", `{"port":-1}`, nil, 400, "outside the allowed range"},
		{"in use elsewhere", "POST", "application/json", fmt.Sprintf(`{"port":%d}`, busyPort), nil, 409, "in use"},
		{"in use here", "POST", "application/json", fmt.Sprintf(`{"port":%d}`, free), nil, 409, "in use"},
		{"bad JSON", "POST", "application/json", `{"port":`, nil, 400, "malformed"},
		{"not an object", "POST", "application/json", `[8083]`, nil, 400, "malformed"},
		{"string port", "POST", "application/json", `{"port":"8083"}`, nil, 400, "malformed"},
		{"fraction", "POST", "application/json", `{"port":8083.5}`, nil, 400, "malformed"},
		{"unknown field", "POST", "application/json", `{"port":8083,"host":"x"}`, nil, 400, "malformed"},
		{"two values", "POST", "application/json", `{"port":8083}{"port":8084}`, nil, 400, "malformed"},
		{"missing port", "POST", "application/json", `{}`, nil, 400, "missing"},
		{"empty body", "POST", "application/json", ``, nil, 400, "malformed"},
		{"too large", "POST", "application/json", `{"port":` + strings.Repeat(" ", 4096) + `8083}`, nil, 413, "too large"},
		{"wrong method", "DELETE", "", "", nil, 405, "not allowed"},
		{"cross-site", "POST", "application/json", fmt.Sprintf(`{"port":%d}`, free),
			[]string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"}, 403, "cross-origin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, h, got := do(t, tc.method, api, tc.contentType, tc.body, tc.header...)
			if status != tc.status {
				t.Errorf("status = %d, want %d (%v)", status, tc.status, got)
			}
			if ct := h.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			obj, _ := got.(map[string]any)
			if msg, _ := obj["error"].(string); !strings.Contains(msg, tc.errContains) {
				t.Errorf("body = %v, want an error containing %q", got, tc.errContains)
			}
			if tc.status == 405 && h.Get("Allow") != "GET, HEAD, POST" {
				t.Errorf("Allow = %q", h.Get("Allow"))
			}
		})
	}
	if n := len(app.list()); n != 2 {
		t.Errorf("%d servers after the bad requests, want 2", n)
	}
}

func TestPage(t *testing.T) {
	_, base := startApp(t, portRange{})
	for path, want := range map[string]string{
		"/":             `<label for="port">Port</label>`,
		"/multiport.js": "/api/servers",
		"/chat.js":      "HubChat",
		"/chat.css":     "@media",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %s, body contains %q: %v", path, resp.Status, want, strings.Contains(string(body), want))
		}
	}
}

func TestChatServers(t *testing.T) {
	app, base := startApp(t, portRange{})
	s1, err := app.start(0)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := app.start(0)
	if err != nil {
		t.Fatal(err)
	}
	page := base // the main UI's origin, http://127.0.0.1:PORT

	t.Run("origin", func(t *testing.T) {
		for i, tc := range []struct {
			origin string
			status int
		}{
			{page, 101},
			{strings.Replace(page, "127.0.0.1", "localhost", 1), 101},
			{strings.Replace(page, "127.0.0.1", "[::1]", 1), 101},
			{"http://evil.example", 403},
			{"http://127.0.0.1:1", 403},
		} {
			c, resp, err := chattest.Dial(t, s1.URL+"?username=user"+strconv.Itoa(i), tc.origin)
			if resp == nil {
				t.Fatalf("origin %s: %v", tc.origin, err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("origin %s: status %d, want %d", tc.origin, resp.StatusCode, tc.status)
			}
			if c != nil {
				c.ReadUntil("users")
			}
		}
		resp, err := http.Get(strings.Replace(s1.URL, "ws://", "http://", 1))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain GET /ws: %s, want 400", resp.Status)
		}
	})

	t.Run("rooms", func(t *testing.T) {
		alice := chattest.Join(t, s1.URL, page, "alice")
		carol := chattest.Join(t, s1.URL, page, "carol")
		bob := chattest.Join(t, s2.URL, page, "bob")
		// The same name on another server is another person.
		alice2 := chattest.Join(t, s2.URL, page, "alice")

		alice.Say("only on server 1")
		if f := carol.ReadUntil("message"); f.Body != "only on server 1" {
			t.Errorf("carol got %+v", f)
		}
		bob.Say("only on server 2")
		for _, c := range []*chattest.Conn{bob, alice2} {
			if f := c.ReadUntil("message"); f.Body != "only on server 2" || f.Username != "bob" {
				t.Errorf("server 2 client got %+v, want bob's message only", f)
			}
		}
		if f := alice.ReadUntil("message"); f.Body != "only on server 1" {
			t.Errorf("alice got %+v", f)
		}
		alice.Say("second")
		if f := carol.ReadUntil("message"); f.Body != "second" {
			t.Errorf("carol got %+v; server 2's message leaked?", f)
		}
	})
}

// TestServe runs the program's run with the main server and two chat
// servers on free ports: it prints the real URLs, and on cancel closes
// clients with 1001 and returns nil.
func TestServe(t *testing.T) {
	p1, p2 := chattest.FreePort(t), chattest.FreePort(t)
	cfg, err := parseArgs([]string{"-addr", "127.0.0.1:0", "-host", "127.0.0.1", "-db", filepath.Join(t.TempDir(), "rooms.db"),
		"-servers", fmt.Sprintf("%d,%d", p1, p2)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	lines, done, cancel := startServe(t, cfg)
	page := strings.TrimPrefix(lines[0], "multiport: open ")
	if !strings.HasPrefix(page, "http://127.0.0.1:") || strings.HasSuffix(page, ":0/") {
		t.Fatalf("printed %q, want the real URL", lines[0])
	}
	want := fmt.Sprintf("  Server 1 (%d): ws://127.0.0.1:%d/ws", p1, p1)
	if lines[1] != want {
		t.Errorf("printed %q, want %q", lines[1], want)
	}
	status, _, got := do(t, "GET", page+"api/servers", "", "")
	if list, _ := got.([]any); status != 200 || len(list) != 2 {
		t.Errorf("GET /api/servers: %d %v", status, got)
	}
	origin := strings.TrimSuffix(page, "/")
	c1 := chattest.Join(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", p1), origin, "alice")
	c2 := chattest.Join(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", p2), origin, "bob")
	cancel()
	for _, c := range []*chattest.Conn{c1, c2} {
		if code := c.CloseCode(); code != websocket.CloseGoingAway {
			t.Errorf("close code on shutdown = %d, want 1001", code)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestServeCustom runs "multiport custom PORT": one chat server that the
// main UI at -addr may use.
func TestServeCustom(t *testing.T) {
	port := chattest.FreePort(t)
	cfg, err := parseArgs([]string{"-host", "127.0.0.1", "-db", filepath.Join(t.TempDir(), "rooms.db"), "custom", strconv.Itoa(port)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	lines, done, cancel := startServe(t, cfg)
	url := fmt.Sprintf("ws://127.0.0.1:%d/ws", port)
	if !strings.HasSuffix(lines[0], url) {
		t.Errorf("printed %q, want it to end with %s", lines[0], url)
	}
	c := chattest.Join(t, url, "http://localhost:8080", "alice") // the default main UI
	if _, resp, err := chattest.Dial(t, url+"?username=eve", "http://localhost:8081"); err == nil || resp.StatusCode != 403 {
		t.Errorf("foreign origin: %v, want 403", err)
	}
	cancel()
	if code := c.CloseCode(); code != websocket.CloseGoingAway {
		t.Errorf("close code on shutdown = %d, want 1001", code)
	}
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
	if _, err := parseArgs([]string{"custom", strconv.Itoa(port)}, io.Discard); err != nil {
		t.Error(err)
	}
}

// startServe runs run in a goroutine and returns its lines of output up
// to the last, "  history: ...", printed once every chat server runs, a
// channel with its result, and the function that stops it.
func startServe(t *testing.T, cfg config) ([]string, <-chan error, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	out, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, cfg, w)
		w.Close()
		done <- err
	}()
	r := bufio.NewReader(out)
	var lines []string
	for len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "  history: ") {
		line, err := r.ReadString('\n')
		if err != nil {
			cancel()
			t.Fatalf("reading run's output: %v (%q); run: %v", err, lines, <-done)
		}
		lines = append(lines, strings.TrimSuffix(line, "\n"))
	}
	go io.Copy(io.Discard, out)
	return lines, done, cancel
}

// TestDNSRebinding: a hostile page whose name is re-pointed at 127.0.0.1
// is same-origin with the app (Host and Origin are both its own), so the
// app refuses requests and upgrades addressed to any Host but its own
// names, with 403; those names, on any port, and Config.Hosts work.
func TestDNSRebinding(t *testing.T) {
	free := chattest.FreePort(t)
	app, base := startAppWith(t, roomsConfig{
		Allow: portRange{First: free, Last: free},
		Hosts: append(webserver.HostNames("localhost"), "chat.example"),
	})
	mainPort := strings.TrimPrefix(base, "http://127.0.0.1:")
	chatSrv, err := app.start(0)
	if err != nil {
		t.Fatal(err)
	}
	chatPort := strconv.Itoa(chatSrv.Port)

	// request sends method / path to the main server addressed to host,
	// from a page of that host, and returns the status.
	request := func(method, path, host, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Origin", "http://"+host)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	// upgrade dials the chat server addressed to host, from a page of
	// that host, and returns the status.
	upgrade := func(host, name string) int {
		t.Helper()
		h := http.Header{"Host": {host}, "Origin": {"http://" + host}}
		c, resp, err := chattest.DialHeader(t, chatSrv.URL+"?username="+name, h)
		if resp == nil {
			t.Fatalf("upgrade with Host %s: %v", host, err)
		}
		if c != nil {
			c.ReadUntil("users")
		}
		return resp.StatusCode
	}

	for _, host := range []string{"evil.example", "localhost.evil.example", "127.0.0.1.nip.io"} {
		for _, port := range []string{mainPort, chatPort} {
			hp := net.JoinHostPort(host, port)
			if got := request("POST", "/api/servers", hp, fmt.Sprintf(`{"port":%d}`, free)); got != http.StatusForbidden {
				t.Errorf("POST /api/servers with Host %s: status %d, want 403", hp, got)
			}
			if got := request("GET", "/", hp, ""); got != http.StatusForbidden {
				t.Errorf("GET / with Host %s: status %d, want 403", hp, got)
			}
			if got := upgrade(hp, "mallory"); got != http.StatusForbidden {
				t.Errorf("chat upgrade with Host %s: status %d, want 403", hp, got)
			}
		}
	}
	if n := len(app.list()); n != 1 {
		t.Fatalf("%d servers after the hostile requests, want 1", n)
	}

	for i, host := range []string{"127.0.0.1", "localhost", "LocalHost", "[::1]", "chat.example"} {
		if got := request("GET", "/", host+":"+mainPort, ""); got != http.StatusOK {
			t.Errorf("GET / with Host %s: status %d, want 200", host, got)
		}
		if got := upgrade(host+":"+chatPort, "user"+strconv.Itoa(i)); got != http.StatusSwitchingProtocols {
			t.Errorf("chat upgrade with Host %s: status %d, want 101", host, got)
		}
	}
	if got := request("POST", "/api/servers", "localhost:"+mainPort, fmt.Sprintf(`{"port":%d}`, free)); got != http.StatusCreated {
		t.Errorf("POST /api/servers with Host localhost: status %d, want 201", got)
	}
}

// serveMain serves the app's main handler on the program's http.Server,
// with read and idle timeouts of d, until the test ends, and returns its
// address.
func serveMain(t *testing.T, app *rooms, d time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := webserver.New(app.handler())
	hs.ReadTimeout, hs.IdleTimeout = d, d
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		if err := hs.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

// TestHTTPTimeouts: the main server closes an idle keep-alive connection
// after IdleTimeout, and cuts a request whose body trickles in after
// ReadTimeout, without acting on it.
func TestHTTPTimeouts(t *testing.T) {
	free := chattest.FreePort(t)
	app, _ := startAppWith(t, roomsConfig{Allow: portRange{First: free, Last: free}})
	addr := serveMain(t, app, 300*time.Millisecond)
	dial := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		_ = nc.SetDeadline(time.Now().Add(chattest.Timeout))
		return nc, bufio.NewReader(nc)
	}

	t.Run("idle", func(t *testing.T) {
		nc, br := dial()
		fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("GET /: %s, close %v; want 200 and keep-alive", resp.Status, resp.Close)
		}
		// The server closes the idle connection (the client's deadline is
		// chattest.Timeout, far longer).
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("read on the idle connection: %d, %v; want EOF", n, err)
		}
	})

	t.Run("trickled body", func(t *testing.T) {
		nc, br := dial()
		body := fmt.Sprintf(`{"port":%d}`, free)
		body = strings.Repeat(" ", 100-len(body)) + body // a byte every 20 ms: 2 s
		fmt.Fprintf(nc, "POST /api/servers HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, len(body))
		stop, trickled := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(trickled)
			tick := time.NewTicker(20 * time.Millisecond) // pacing the client, not waiting
			defer tick.Stop()
			for i := range len(body) {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := nc.Write([]byte{body[i]}); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(br, nil)
		close(stop)
		<-trickled
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("no answer within %v: the trickle was not cut", chattest.Timeout)
		case err == nil:
			resp.Body.Close()
			if resp.StatusCode == http.StatusCreated {
				t.Errorf("trickled POST: %s, want it cut", resp.Status)
			}
		} // else the server closed the connection: cut too
		if n := len(app.list()); n != 0 {
			t.Errorf("%d servers after the trickled POST, want 0", n)
		}
	})
}

// TestMetrics: the main server's GET /metrics serves every chat server's
// metrics, each labelled with its room, including servers started later.
func TestMetrics(t *testing.T) {
	app, base := startApp(t, portRange{})
	s1, err := app.start(0)
	if err != nil {
		t.Fatal(err)
	}
	alice := chattest.Join(t, s1.URL, base, "alice")
	alice.Say("hi")
	alice.ReadUntil("message")
	s2, err := app.start(0) // after the first scrape would have been
	if err != nil {
		t.Fatal(err)
	}
	chattest.Join(t, s2.URL, base, "bob")
	chattest.Join(t, s2.URL, base, "carol")
	room1, room2 := fmt.Sprintf(`{room="port %d"}`, s1.Port), fmt.Sprintf(`{room="port %d"}`, s2.Port)
	chattest.WaitMetrics(t, base+"/metrics", map[string]string{
		"hubchat_members" + room1:                  "1",
		"hubchat_members" + room2:                  "2",
		"hubchat_messages_received_total" + room1:  "1",
		"hubchat_messages_delivered_total" + room1: "1",
		"hubchat_messages_received_total" + room2:  "0",
	})
}
