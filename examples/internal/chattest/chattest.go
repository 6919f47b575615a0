// Package chattest holds test helpers shared by the example programs'
// tests: a goroutine leak check for TestMain, free ports, building and
// running the programs, a WebSocket client that reads the chat protocol
// with deadlines, and a reader of /metrics.
package chattest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Timeout bounds every read and dial of the helpers.
const Timeout = 10 * time.Second

// Main runs the tests and then fails the run if goroutines outlive them,
// which proves that the programs shut down everything they start. Call it
// from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(10 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines leaked after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines polls until only the test framework's goroutines are
// left, and returns the stacks of the others if the deadline passes.
func leakedGoroutines(wait time.Duration) string {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		t.CloseIdleConnections() // keep-alive conns of http.Get and friends
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(wait)
	for {
		var leaked []string
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if interesting(g) {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		select {
		case <-tick.C:
		case <-deadline:
			return strings.Join(leaked, "\n\n")
		}
	}
}

// interesting reports whether a goroutine belongs to the code under test
// rather than to the runtime or the test binary itself.
func interesting(stack string) bool {
	if !strings.HasPrefix(stack, "goroutine ") {
		return false
	}
	for _, benign := range []string{
		"chattest.leakedGoroutines", // this goroutine
		"testing.(*M).",
		"testing.Main(",
		"os/signal.signal_recv",
		"runtime.ensureSigM",
	} {
		if strings.Contains(stack, benign) {
			return false
		}
	}
	return true
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Frame is any server frame of the chat protocol.
type Frame struct {
	Type     string             `json:"type"`
	ID       string             `json:"id,omitempty"`
	Username string             `json:"username,omitempty"`
	Origin   string             `json:"origin,omitempty"`
	Display  string             `json:"display,omitempty"`
	Avatar   string             `json:"avatar,omitempty"`
	Body     string             `json:"body,omitempty"`
	To       string             `json:"to,omitempty"`
	System   bool               `json:"system,omitempty"`
	TS       int64              `json:"ts,omitempty"`
	Users    []string           `json:"users,omitempty"`
	Profiles map[string]Profile `json:"profiles,omitempty"`
	Messages []Frame            `json:"messages,omitempty"`
	Error    string             `json:"error,omitempty"`
	File     *File              `json:"file,omitempty"`  // a message's
	URL      string             `json:"url,omitempty"`   // an upload frame's
	Token    string             `json:"token,omitempty"` // an upload frame's
}

// File is a message's file.
type File struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Size int64  `json:"size"`
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Profile is a member's public profile in a users snapshot.
type Profile struct {
	Display string `json:"display,omitempty"`
	Avatar  string `json:"avatar,omitempty"`
}

// Conn is a test client connection. Its methods fail the test from the
// calling goroutine, which must be the test's.
type Conn struct {
	t  testing.TB
	ws *websocket.Conn
}

// Dial connects to a chat endpoint (ws://...) with the given Origin header
// (none if empty) and returns the connection, or the handshake response
// and error if the upgrade failed. The connection is closed at cleanup.
func Dial(t testing.TB, url, origin string) (*Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return DialHeader(t, url, h)
}

// DialHeader is Dial with the request headers h, which may set "Host".
func DialHeader(t testing.TB, url string, h http.Header) (*Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, url, h)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { ws.Close() })
	return &Conn{t: t, ws: ws}, resp, nil
}

// Join dials url?username=name and reads frames until the users snapshot,
// which completes the join; it fails the test if that does not happen.
func Join(t testing.TB, url, origin, name string) *Conn {
	t.Helper()
	c, _, err := Dial(t, url+"?username="+name, origin)
	if err != nil {
		t.Fatalf("join %s as %q: %v", url, name, err)
	}
	c.ReadUntil("users")
	return c
}

// Send sends a frame, e.g. map[string]string{"type": "message", "body": "hi"}.
func (c *Conn) Send(v any) {
	c.t.Helper()
	c.ws.SetWriteDeadline(time.Now().Add(Timeout))
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// Say sends a public message.
func (c *Conn) Say(body string) {
	c.t.Helper()
	c.Send(map[string]string{"type": "message", "body": body})
}

// Read reads the next frame, or returns the error that ended the
// connection (a *websocket.CloseError for a close frame).
func (c *Conn) Read() (Frame, error) {
	var f Frame
	c.ws.SetReadDeadline(time.Now().Add(Timeout))
	err := c.ws.ReadJSON(&f)
	return f, err
}

// SayEchoed sends each of bodies as a public message and waits for its
// echo; it returns the ID of the last.
func (c *Conn) SayEchoed(bodies ...string) (id string) {
	c.t.Helper()
	for _, b := range bodies {
		c.Say(b)
		f := c.ReadUntil("message")
		if f.Body != b {
			c.t.Fatalf("sent %q, then got %+v", b, f)
		}
		id = f.ID
	}
	return id
}

// ReadUntil reads frames until one of type typ and returns it, failing the
// test if the connection ends first.
func (c *Conn) ReadUntil(typ string) Frame {
	c.t.Helper()
	for {
		f, err := c.Read()
		if err != nil {
			c.t.Fatalf("waiting for a %q frame: %v", typ, err)
		}
		if f.Type == typ {
			return f
		}
	}
}

// CloseCode reads until the connection ends and returns the close code the
// server sent, failing the test if it ended without a close frame.
func (c *Conn) CloseCode() int {
	c.t.Helper()
	for {
		_, err := c.Read()
		if err == nil {
			continue
		}
		if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
			return ce.Code
		}
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
}

// Bodies returns the bodies of messages, e.g. a history frame's.
func Bodies(msgs []Frame) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Body)
	}
	return out
}

// WSURL turns an http:// URL into a ws:// one.
func WSURL(httpURL string) string {
	return "ws" + strings.TrimPrefix(httpURL, "http")
}

// WaitMetrics polls url, a Prometheus /metrics endpoint, until each sample
// of want (keyed as the text format prints it, e.g.
// `hubchat_members{room="lobby"}`) has its value, and fails the test with
// the last response if that takes longer than Timeout. The hub's writers
// add their counts just after their writes, so a client may see a frame
// before it is counted.
func WaitMetrics(t testing.TB, url string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
		}
		got := map[string]string{}
		for line := range strings.Lines(string(body)) {
			// name{labels} value, where label values may hold spaces.
			line = strings.TrimSpace(line)
			if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
				got[line[:i]] = line[i+1:]
			}
		}
		missing := 0
		for k, v := range want {
			if got[k] != v {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d of the wanted samples differ %v; got:\n%s", url, missing, want, body)
		}
		time.Sleep(10 * time.Millisecond) // polling, with a deadline
	}
}
