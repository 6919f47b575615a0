package chat_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/gorilla/websocket"

	"github.com/hubchat/chat"
)

// frame is any server frame, decoded strictly: a field the protocol does
// not define fails the test.
type frame struct {
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
	Profiles map[string]profile `json:"profiles,omitempty"`
	Messages *[]frame           `json:"messages,omitempty"`
	Resume   *bool              `json:"resume,omitempty"`
	Before   string             `json:"before,omitempty"`
	Error    string             `json:"error,omitempty"`
	File     *fileObj           `json:"file,omitempty"`
	URL      string             `json:"url,omitempty"`   // upload
	Token    string             `json:"token,omitempty"` // upload
	Max      int64              `json:"max,omitempty"`   // upload
}

// fileObj is a file as messages and the upload response carry it.
type fileObj struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Size int64  `json:"size"`
	Type string `json:"type"`
	URL  string `json:"url"`
}

// profile is a member's public profile in a users snapshot.
type profile struct {
	Display string `json:"display,omitempty"`
	Avatar  string `json:"avatar,omitempty"`
}

// ignoreStamps leaves out the server-assigned id and ts, which tests check
// separately.
var ignoreStamps = cmpopts.IgnoreFields(frame{}, "ID", "TS")

func join(name string) frame  { return frame{Type: "join", Username: name} }
func leave(name string) frame { return frame{Type: "leave", Username: name} }
func users(names ...string) frame {
	return frame{Type: "users", Users: names}
}
func history(msgs ...frame) frame {
	if msgs == nil {
		msgs = []frame{}
	}
	return frame{Type: "history", Messages: &msgs}
}
func msg(from, body string) frame { return frame{Type: "message", Username: from, Body: body} }

const ioTimeout = 10 * time.Second

// testServer is a hub behind an httptest.Server.
type testServer struct {
	hub  *chat.Hub
	http *httptest.Server
	url  string // ws://127.0.0.1:port/ws
}

func startServer(t testing.TB, opts chat.Options) *testServer {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	hub := chat.NewHub(opts)
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(hub))
	return serveHub(t, hub, mux, "/ws")
}

// serveHub serves h, which attaches connections to hub at path, until the
// test ends.
func serveHub(t testing.TB, hub *chat.Hub, h http.Handler, path string) *testServer {
	t.Helper()
	return startHTTP(t, hub, httptest.NewUnstartedServer(h), path)
}

// startHTTP starts hs, whose handler attaches connections to hub at path,
// and closes it when the test ends.
func startHTTP(t testing.TB, hub *chat.Hub, hs *httptest.Server, path string) *testServer {
	t.Helper()
	hs.Start()
	t.Cleanup(func() {
		// The hub first: httptest does not track hijacked connections.
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return &testServer{hub: hub, http: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http") + path}
}

// conn is a test client.
type conn struct {
	t  testing.TB
	ws *websocket.Conn
}

// dial connects without joining; query may hold "username=...".
func (s *testServer) dial(t testing.TB, query string) *conn {
	t.Helper()
	u := s.url
	if query != "" {
		u += "?" + query
	}
	ws, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", u, err, resp)
	}
	c := &conn{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	return c
}

// joinAs connects as name and consumes the welcome: join, users, history.
func (s *testServer) joinAs(t testing.TB, name string) *conn {
	t.Helper()
	c := s.dial(t, "username="+url.QueryEscape(name))
	if got := c.next(); got.Type != "join" || got.Username != name {
		t.Fatalf("%s: first frame = %+v, want its join", name, got)
	}
	if got := c.next(); got.Type != "users" {
		t.Fatalf("%s: second frame = %+v, want users", name, got)
	}
	if got := c.next(); got.Type != "history" {
		t.Fatalf("%s: third frame = %+v, want history", name, got)
	}
	return c
}

func (c *conn) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(websocket.TextMessage, b)
}

func (c *conn) sendRaw(typ int, b []byte) {
	c.t.Helper()
	_ = c.ws.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := c.ws.WriteMessage(typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *conn) say(body string) { c.send(map[string]string{"type": "message", "body": body}) }

// readRaw returns the payload of the next text frame or the read error.
func (c *conn) readRaw() ([]byte, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(ioTimeout))
	typ, data, err := c.ws.ReadMessage()
	if err == nil && typ != websocket.TextMessage {
		err = fmt.Errorf("frame type %d, want text", typ)
	}
	return data, err
}

// read returns the next frame or the read error.
func (c *conn) read() (frame, error) {
	data, err := c.readRaw()
	if err != nil {
		return frame{}, err
	}
	var f frame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return frame{}, fmt.Errorf("decoding %s: %v", data, err)
	}
	return f, nil
}

func (c *conn) next() frame {
	c.t.Helper()
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// nextN reads n frames.
func (c *conn) nextN(n int) []frame {
	c.t.Helper()
	fs := make([]frame, n)
	for i := range fs {
		fs[i] = c.next()
	}
	return fs
}

// closeCode reads until the connection closes and returns the close code.
func (c *conn) closeCode() int {
	c.t.Helper()
	return c.closeError().Code
}

// closeError reads until the connection closes and returns the close
// frame's code and reason.
func (c *conn) closeError() *websocket.CloseError {
	c.t.Helper()
	for {
		_, err := c.read()
		if err == nil {
			continue
		}
		if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
			return ce
		}
		c.t.Fatalf("read: %v, want a close frame", err)
	}
}

func diff(t testing.TB, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, ignoreStamps); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func TestJoinSequence(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	alice := s.dial(t, "username=alice")
	diff(t, "alice's welcome", []frame{join("alice"), users("alice"), history()}, alice.nextN(3))

	bob := s.dial(t, "") // joins with a frame instead of the query
	bob.send(map[string]string{"type": "join", "username": "bob"})
	diff(t, "bob's welcome", []frame{join("bob"), users("alice", "bob"), history()}, bob.nextN(3))
	diff(t, "alice sees bob", join("bob"), alice.next())
	diff(t, "Users", []string{"alice", "bob"}, s.hub.Users())

	bob.ws.Close()
	diff(t, "alice sees bob leave", leave("bob"), alice.next())
	diff(t, "Users after leave", []string{"alice"}, s.hub.Users())
}

func TestMessages(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next() // join bob

	before := time.Now().UnixMilli()
	alice.say("Hi!")
	got := []frame{alice.next()}
	bob.next()
	bob.say("hello <b>&</b> \"quotes\" \u2028 ✓")
	got = append(got, alice.next())
	bob.next()
	want := []frame{msg("alice", "Hi!"), msg("bob", "hello <b>&</b> \"quotes\" \u2028 ✓")}
	diff(t, "alice's stream", want, got)

	var last int64
	for _, f := range got {
		id, err := strconv.ParseInt(f.ID, 10, 64)
		if err != nil || id <= last {
			t.Errorf("id %q after %d: want an increasing decimal", f.ID, last)
		}
		last = id
		if f.TS < before || f.TS > time.Now().UnixMilli() {
			t.Errorf("ts %d outside the time of the test", f.TS)
		}
	}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{HistorySize: 2})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()
	for _, body := range []string{"one", "two", "three"} {
		alice.say(body)
		alice.next()
		bob.next()
	}
	alice.send(map[string]string{"type": "message", "body": "secret", "to": "bob"})
	alice.next()
	bob.next()

	carol := s.dial(t, "username=carol")
	diff(t, "carol's welcome",
		[]frame{join("carol"), users("alice", "bob", "carol"), history(msg("alice", "two"), msg("alice", "three"))},
		carol.nextN(3))

	var bodies []string
	for _, m := range s.hub.History() {
		bodies = append(bodies, m.Body)
	}
	diff(t, "Hub.History", []string{"two", "three"}, bodies)
}

func TestHistoryOff(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{HistorySize: -1})
	alice := s.dial(t, "username=alice")
	diff(t, "welcome", []frame{join("alice"), users("alice")}, alice.nextN(2))
	alice.say("x")
	diff(t, "message, not history", msg("alice", "x"), alice.next())
}

func TestPrivateMessage(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	carol := s.joinAs(t, "carol")
	alice.nextN(2)
	bob.next()

	alice.send(map[string]string{"type": "message", "body": "psst", "to": "BOB"})
	want := frame{Type: "message", Username: "alice", Body: "psst", To: "bob"}
	diff(t, "bob receives", want, bob.next())
	diff(t, "alice's echo", want, alice.next())

	// carol's next frame is the public message after it: she never saw it.
	alice.say("public")
	diff(t, "carol", msg("alice", "public"), carol.next())
}

func TestPost(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	alice := s.joinAs(t, "alice")
	if err := s.hub.Post(context.Background(), "maintenance at noon"); err != nil {
		t.Fatal(err)
	}
	diff(t, "system message",
		frame{Type: "message", Username: "system", Body: "maintenance at noon", System: true}, alice.next())
	if err := s.hub.Post(context.Background(), " "); !errors.Is(err, chat.ErrInvalidBody) {
		t.Errorf("Post(blank) = %v, want ErrInvalidBody", err)
	}
}

// TestBadFrames sends each bad frame after joining: the sender gets an
// error frame, stays connected, and nobody else receives anything.
func TestBadFrames(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 4097)
	tests := []struct {
		name    string
		typ     int
		data    string
		wantErr string
	}{
		{"invalid JSON", websocket.TextMessage, `{"type":"message","body":`, "invalid JSON"},
		{"not an object", websocket.TextMessage, `["message"]`, "invalid JSON"},
		{"trailing data", websocket.TextMessage, `{"type":"message","body":"a"} {"type":"message","body":"b"}`, "invalid JSON"},
		{"unknown type", websocket.TextMessage, `{"type":"shout","body":"a"}`, "unknown type"},
		{"missing type", websocket.TextMessage, `{"body":"a"}`, "missing type"},
		{"empty body", websocket.TextMessage, `{"type":"message","body":"  "}`, "empty body"},
		{"null body", websocket.TextMessage, `{"type":"message","body":null}`, "empty body"},
		{"no body", websocket.TextMessage, `{"type":"message"}`, "empty body"},
		{"body too long", websocket.TextMessage, `{"type":"message","body":"` + long + `"}`, "too long"},
		{"to nobody", websocket.TextMessage, `{"type":"message","body":"a","to":"zed"}`, "not here"},
		{"second join", websocket.TextMessage, `{"type":"join","username":"other"}`, "already joined"},
		{"binary frame", websocket.BinaryMessage, `{"type":"message","body":"a"}`, "binary"},
		{"invalid UTF-8", websocket.TextMessage, "{\"type\":\"message\",\"body\":\"\xff\"}", "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, chat.Options{})
			bad := s.joinAs(t, "bad")
			other := s.joinAs(t, "other")
			bad.next() // join other

			bad.sendRaw(tc.typ, []byte(tc.data))
			got := bad.next()
			if got.Type != "error" || !strings.Contains(got.Error, tc.wantErr) {
				t.Fatalf("reply = %+v, want an error containing %q", got, tc.wantErr)
			}
			// Still connected, and nothing was broadcast before this.
			bad.say("still here")
			diff(t, "other's next frame", msg("bad", "still here"), other.next())
			diff(t, "bad's next frame", msg("bad", "still here"), bad.next())
		})
	}
}

// TestRefusedJoins: the connection gets an error frame and a 1008 close,
// and the member already there is not disturbed.
func TestRefusedJoins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		query   string // ?username=...
		first   string // or a first frame
		wantErr string
	}{
		{"taken", "username=alice", "", "taken"},
		{"taken, other case", "username=ALICE", "", "taken"},
		{"taken, long s", "username=" + url.QueryEscape("ſam"), "", "taken"},
		{"taken, padded", "username=" + url.QueryEscape("  alice "), "", "taken"},
		{"taken via frame", "", `{"type":"join","username":"Alice"}`, "taken"},
		{"reserved", "username=System", "", "reserved"},
		{"empty after trim", "", `{"type":"join","username":"   "}`, "empty"},
		{"33 characters", "username=" + strings.Repeat("é", 33), "", "at most 32"},
		{"control character", "username=" + url.QueryEscape("a\x07b"), "", "not allowed"},
		{"newline", "", `{"type":"join","username":"a\nb"}`, "not allowed"},
		{"zero-width space", "username=" + url.QueryEscape("ali\u200bce"), "", "not allowed"},
		{"bidi override", "username=" + url.QueryEscape("\u202eecila"), "", "not allowed"},
		{"byte order mark", "username=" + url.QueryEscape("\ufeffalice"), "", "not allowed"},
		{"grapheme joiner", "username=" + url.QueryEscape("alice\u034f"), "", "invisible character U+034F"},
		{"variation selector", "", `{"type":"join","username":"alice\ufe0f"}`, "invisible character U+FE0F"},
		{"blank braille", "username=" + url.QueryEscape("alice\u2800"), "", "invisible character U+2800"},
		{"Hangul filler only", "username=" + url.QueryEscape("\u3164"), "", "invisible character U+3164"},
		{"combining marks only", "username=" + url.QueryEscape("\u0301\u0308"), "", "no letter"},
		{"message before join", "", `{"type":"message","body":"hi"}`, "join first"},
		{"garbage before join", "", `hello`, "invalid JSON"},
		{"join without name", "", `{"type":"join"}`, "username"},
		{"malformed query", "username=%ZZbob", "", "malformed ?username="},
		{"malformed query, second", "x=1&username=bob%", "", "malformed ?username="},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, chat.Options{})
			alice := s.joinAs(t, "alice")
			s.joinAs(t, "sam")
			alice.next()

			c := s.dial(t, tc.query)
			if tc.first != "" {
				c.sendRaw(websocket.TextMessage, []byte(tc.first))
			}
			got := c.next()
			if got.Type != "error" || !strings.Contains(got.Error, tc.wantErr) {
				t.Fatalf("reply = %+v, want an error containing %q", got, tc.wantErr)
			}
			if code := c.closeCode(); code != websocket.ClosePolicyViolation {
				t.Errorf("close code = %d, want 1008", code)
			}
			alice.say("undisturbed")
			diff(t, "alice's next frame", msg("alice", "undisturbed"), alice.next())
			diff(t, "Users", []string{"alice", "sam"}, s.hub.Users())
		})
	}
}

// TestLongInputEchoes: an error that names what a client sent repeats only
// a short prefix of it, however long the input.
func TestLongInputEchoes(t *testing.T) {
	t.Parallel()
	long := "zed" + strings.Repeat("z", 30000)
	prefix := long[:32] + "…"
	party := strings.Repeat("🎉", chat.MaxUsernameRunes) // the longest name, in bytes
	tests := []struct {
		name     string
		query    string // ?username=...
		first    string // or a first frame
		wantErr  string
		wantCode int // 0: stays connected
	}{
		{"private message to a long name", "username=bob", `{"type":"message","body":"hi","to":"` + long + `"}`, `user "` + prefix + `" is not here`, 0},
		{"long type", "username=bob", `{"type":"` + long + `"}`, `unknown type "` + prefix + `"`, 0},
		{"long name in the query", "username=" + long, "", "30003 characters", websocket.ClosePolicyViolation},
		{"long name in the join", "", `{"type":"join","username":"` + long + `"}`, "30003 characters", websocket.ClosePolicyViolation},
		{"longest taken name", "username=" + url.QueryEscape(party), "", `username "` + party + `" is taken`, websocket.ClosePolicyViolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, chat.Options{})
			s.joinAs(t, party)
			c := s.dial(t, tc.query)
			if tc.wantCode == 0 {
				for range 3 { // join, users, history
					c.next()
				}
			}
			if tc.first != "" {
				c.sendRaw(websocket.TextMessage, []byte(tc.first))
			}
			data, err := c.readRaw()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			var got frame
			if err := json.Unmarshal(data, &got); err != nil || got.Type != "error" || !strings.Contains(got.Error, tc.wantErr) {
				t.Fatalf("reply = %.300s (%v), want an error containing %q", data, err, tc.wantErr)
			}
			if len(data) >= 200 {
				t.Errorf("error frame of %d bytes: %s", len(data), data)
			}
			if tc.wantCode == 0 {
				return
			}
			ce := c.closeError()
			// The reason is the error text, cut to fit a close frame.
			reason := strings.TrimSuffix(ce.Text, "…")
			if ce.Code != tc.wantCode || len(ce.Text) > 123 || reason == "" || !strings.HasPrefix(got.Error, reason) {
				t.Errorf("close %d %q (%d bytes), want %d with (a prefix of) %q in at most 123 bytes",
					ce.Code, ce.Text, len(ce.Text), tc.wantCode, got.Error)
			}
		})
	}
}

func TestRoomFull(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{MaxUsers: 1})
	s.joinAs(t, "alice")
	c := s.dial(t, "username=bob")
	if got := c.next(); got.Type != "error" || !strings.Contains(got.Error, "full") {
		t.Fatalf("reply = %+v, want a 'room is full' error", got)
	}
	if code := c.closeCode(); code != websocket.ClosePolicyViolation {
		t.Errorf("close code = %d, want 1008", code)
	}
}

func TestFrameTooBig(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	c := s.joinAs(t, "alice")
	// The default read limit still takes the largest legal body, escaped.
	c.say(strings.Repeat("\x01", 4096))
	if got := c.next(); got.Type != "message" {
		t.Fatalf("4096 escaped bytes: got %+v, want the message", got)
	}
	c.sendRaw(websocket.TextMessage, []byte(`{"type":"message","body":"`+strings.Repeat("a", 64<<10)+`"}`))
	if code := c.closeCode(); code != websocket.CloseMessageTooBig {
		t.Errorf("close code = %d, want 1009", code)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	// One token per thousand seconds: the third message is over the limit
	// however slowly the test runs.
	s := startServer(t, chat.Options{RateLimit: 0.001, RateBurst: 2})
	c := s.joinAs(t, "alice")
	c.say("1")
	c.say("2")
	c.say("3")
	diff(t, "within the burst", []frame{msg("alice", "1"), msg("alice", "2")}, c.nextN(2))
	if got := c.next(); got.Type != "error" || !strings.Contains(got.Error, "rate") {
		t.Errorf("third message: got %+v, want an error mentioning the rate", got)
	}
	if n := len(s.hub.History()); n != 2 {
		t.Errorf("history has %d messages, want 2: the third was dropped", n)
	}
}

func TestHTTPResponses(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{OriginPatterns: []string{"*.example.com"}})
	tests := []struct {
		name   string
		origin string
		want   int
	}{
		{"no origin", "", http.StatusSwitchingProtocols},
		{"same origin", strings.Replace(s.http.URL, "127.0.0.1", "127.0.0.1", 1), http.StatusSwitchingProtocols},
		{"allowed pattern", "https://chat.example.com", http.StatusSwitchingProtocols},
		{"other origin", "https://evil.test", http.StatusForbidden},
		{"other port", "http://127.0.0.1:1", http.StatusForbidden},
		{"malformed origin", "::", http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			ws, resp, err := websocket.DefaultDialer.Dial(s.url+"?username="+url.QueryEscape(tc.name), h)
			if ws != nil {
				ws.Close()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}

	resp, err := http.Get(s.http.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain GET: status = %d, want 400", resp.StatusCode)
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{
		Authenticate: func(r *http.Request) (chat.Identity, error) {
			if tok := r.Header.Get("Authorization"); tok != "" {
				return chat.Identity{Name: strings.TrimPrefix(tok, "Bearer ")}, nil
			}
			return chat.Identity{}, errors.New("missing token")
		},
	})
	// The token's name overrides ?username=.
	ws, _, err := websocket.DefaultDialer.Dial(s.url+"?username=mallory", http.Header{"Authorization": {"Bearer alice"}})
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	diff(t, "welcome", []frame{join("alice"), users("alice"), history()}, c.nextN(3))

	_, resp, err := websocket.DefaultDialer.Dial(s.url+"?username=bob", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without token: err %v, response %v; want 401", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "missing token") {
		t.Errorf("401 body %q does not say why", body)
	}
}

func TestHooks(t *testing.T) {
	t.Parallel()
	events := make(chan string, 10)
	s := startServer(t, chat.Options{
		OnJoin:  func(_ *chat.Hub, id chat.Identity) { events <- "join " + id.Name },
		OnLeave: func(_ *chat.Hub, id chat.Identity) { events <- "leave " + id.Name },
		OnMessage: func(_ *chat.Hub, _ chat.Identity, m *chat.Message) error {
			if strings.Contains(m.Body, "spam") {
				return errors.New("no spam, please")
			}
			m.Body = strings.ReplaceAll(m.Body, "darn", "d**n")
			return nil
		},
	})
	alice := s.joinAs(t, "alice")
	waitFor(t, events, "join alice")

	alice.say("darn it")
	diff(t, "rewritten", msg("alice", "d**n it"), alice.next())
	alice.say("buy spam")
	if got := alice.next(); got.Type != "error" || got.Error != "no spam, please" {
		t.Errorf("rejected message: got %+v, want the hook's error", got)
	}
	if n := len(s.hub.History()); n != 1 {
		t.Errorf("history has %d messages, want 1", n)
	}
	alice.ws.Close()
	waitFor(t, events, "leave alice")
}

func waitFor(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Errorf("event %q, want %q", got, want)
		}
	case <-time.After(ioTimeout):
		t.Fatalf("timed out waiting for %q", want)
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	var clients []*conn
	for i := range 5 {
		clients = append(clients, s.joinAs(t, fmt.Sprint("user", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.hub.Shutdown(ctx) }()
	for _, c := range clients {
		if code := c.closeCode(); code != websocket.CloseGoingAway {
			t.Errorf("close code = %d, want 1001", code)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_, resp, err := websocket.DefaultDialer.Dial(s.url+"?username=late", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Shutdown: err %v, response %v; want 503", err, resp)
	}
	if err := s.hub.Post(ctx, "anyone?"); !errors.Is(err, chat.ErrHubClosed) {
		t.Errorf("Post after Shutdown = %v, want ErrHubClosed", err)
	}
	if err := s.hub.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
}

// TestShutdownDeadline: clients that never answer the close frame do not
// hold Shutdown past its context.
func TestShutdownDeadline(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	s.joinAs(t, "silent") // never reads again
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.hub.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with a cancelled context = %v, want context.Canceled", err)
	}
	if err := s.hub.Close(); err != nil {
		t.Errorf("Close after Shutdown = %v", err)
	}
}

// TestSlowClient: a client that stops reading is disconnected once its
// queue is full, and a client that keeps up receives every message.
func TestSlowClient(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{SendQueue: 16, MaxBodyBytes: 1 << 15, ReadLimit: 1 << 18})
	fast := s.joinAs(t, "fast")
	slow := s.joinAs(t, "slow") // never reads again
	fast.next()                 // join slow
	_ = slow

	body := strings.Repeat("x", 1<<15) // a few hundred fill any socket buffers
	received := make(chan frame, 1<<16)
	readErr := make(chan error, 1)
	go func() {
		for {
			f, err := fast.read()
			if err != nil {
				readErr <- err
				return
			}
			received <- f
		}
	}()
	// Post with a window of 4 messages that fast has not read yet: fast
	// keeps up, while slow's socket buffers and then its queue fill.
	sent, gotMsgs, sawLeave := 0, 0, false
	deadline := time.Now().Add(60 * time.Second)
	for gotMsgs < sent || !sawLeave {
		if time.Now().After(deadline) {
			t.Fatalf("after %d messages: slow still a member: %v", sent, slices.Contains(s.hub.Users(), "slow"))
		}
		if !sawLeave && sent < 3000 && sent-gotMsgs < 4 { // 3000 × 32 KiB: far more than socket buffers hold
			if err := s.hub.Post(context.Background(), body); err != nil {
				t.Fatal(err)
			}
			sent++
			continue
		}
		switch f := checkNext(t, received, readErr); {
		case f.Type == "message":
			gotMsgs++
		case f.Type == "leave" && f.Username == "slow":
			sawLeave = true
		default:
			t.Fatalf("unexpected frame %+v", f)
		}
	}
	if gotMsgs != sent {
		t.Errorf("fast received %d messages, want %d", gotMsgs, sent)
	}
	fast.ws.Close()
}

func checkNext(t *testing.T, ch <-chan frame, errc <-chan error) frame {
	t.Helper()
	select {
	case f := <-ch:
		return f
	case err := <-errc:
		t.Fatalf("fast client: %v", err)
	case <-time.After(ioTimeout):
		t.Fatal("fast client: timed out")
	}
	return frame{}
}

// TestTotalOrder: many clients sending at once all see one identical
// sequence of ids.
func TestTotalOrder(t *testing.T) {
	t.Parallel()
	const clients, perClient = 8, 40
	s := startServer(t, chat.Options{RateLimit: -1})
	var cs []*conn
	for i := range clients {
		cs = append(cs, s.joinAs(t, fmt.Sprint("u", i)))
	}
	for i, c := range cs { // consume the joins of later clients
		c.nextN(clients - 1 - i)
	}
	var wg sync.WaitGroup
	streams := make([][]string, clients)
	for i, c := range cs {
		wg.Go(func() {
			for j := range perClient {
				c.say(fmt.Sprintf("%d-%d", i, j))
			}
		})
	}
	for i, c := range cs {
		wg.Go(func() {
			for range clients * perClient {
				f, err := c.read()
				if err != nil || f.Type != "message" {
					t.Errorf("client %d: frame %+v, err %v", i, f, err)
					return
				}
				streams[i] = append(streams[i], f.ID+":"+f.Body)
			}
		})
	}
	wg.Wait()
	for i := 1; i < clients; i++ {
		if d := cmp.Diff(streams[0], streams[i]); d != "" {
			t.Errorf("client %d saw another order (-client 0 +client %d):\n%s", i, i, d)
		}
	}
	// Each sender's messages appear in the order it sent them.
	next := make([]int, clients)
	for _, e := range streams[0] {
		var id, from, seq int
		fmt.Sscanf(strings.Replace(e, ":", " ", 1), "%d %d-%d", &id, &from, &seq)
		if seq != next[from] {
			t.Fatalf("sender %d: message %d arrived when %d was due", from, seq, next[from])
		}
		next[from]++
	}
}

// TestChurn: members come and go while others broadcast; those who stay
// receive every message exactly once, in one order.
func TestChurn(t *testing.T) {
	t.Parallel()
	const messages = 200
	s := startServer(t, chat.Options{RateLimit: -1})
	a := s.joinAs(t, "a")
	b := s.joinAs(t, "b")
	a.next()

	stop := make(chan struct{})
	var churn sync.WaitGroup
	for w := range 3 {
		churn.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ws, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("%s?username=w%d-%d", s.url, w, i), nil)
				if err != nil {
					t.Errorf("churn dial: %v", err)
					return
				}
				_ = ws.SetReadDeadline(time.Now().Add(ioTimeout))
				_, _, _ = ws.ReadMessage() // its join
				ws.Close()
			}
		})
	}
	go func() {
		for i := range messages {
			if err := s.hub.Post(context.Background(), fmt.Sprint(i)); err != nil {
				t.Errorf("Post: %v", err)
			}
		}
	}()
	collect := func(c *conn) []string {
		var ids []string
		for len(ids) < messages {
			f := c.next()
			if f.Type == "message" {
				ids = append(ids, f.ID+":"+f.Body)
			}
		}
		return ids
	}
	var ga, gb []string
	var wg sync.WaitGroup
	wg.Go(func() { ga = collect(a) })
	wg.Go(func() { gb = collect(b) })
	wg.Wait()
	close(stop)
	churn.Wait()
	diff(t, "a and b", ga, gb)
	for i, e := range ga {
		if !strings.HasSuffix(e, ":"+strconv.Itoa(i)) {
			t.Fatalf("message %d is %q: lost or reordered", i, e)
		}
	}
}

// TestJoinStorm: a few hundred clients with long names connect at once, a
// storm of joins into a room whose snapshot is large, and every tenth
// leaves again at once. Each gets its own join first and then exactly one
// users snapshot, containing it; no event repeats a name its list already
// has or removes one it lacks; and each that stays ends up with exactly
// the room's member list, in order.
func TestJoinStorm(t *testing.T) {
	t.Parallel()
	const n = 300
	s := startServer(t, chat.Options{RateLimit: -1, HistorySize: -1})
	name := func(i int) string { return fmt.Sprintf("storm-%s-%03d", strings.Repeat("x", 22), i) }
	var final []string
	for i := range n {
		if i%10 != 0 {
			final = append(final, name(i))
		}
	}
	lists := make([][]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			me := name(i)
			ws, _, err := websocket.DefaultDialer.Dial(s.url+"?username="+me, nil)
			if err != nil {
				t.Errorf("%s: dial: %v", me, err)
				return
			}
			t.Cleanup(func() { ws.Close() }) // after the lists are compared
			c := &conn{t: t, ws: ws}
			if f, err := c.read(); err != nil || f.Type != "join" || f.Username != me {
				t.Errorf("%s: first frame %+v (%v), want its join", me, f, err)
				return
			}
			if i%10 == 0 {
				ws.Close() // leaves during the storm
				return
			}
			var list []string
			snap := false
			for !slices.Equal(sortedCopy(list), final) {
				f, err := c.read()
				if err != nil {
					t.Errorf("%s: %v, knowing %d members, snapshot %v", me, err, len(list), snap)
					return
				}
				switch {
				case f.Type == "users" && !snap:
					snap, list = true, f.Users
					if !slices.Contains(list, me) {
						t.Errorf("%s: snapshot of %d names without itself", me, len(list))
						return
					}
				case f.Type == "join" && snap && !slices.Contains(list, f.Username):
					list = append(list, f.Username)
				case f.Type == "leave" && snap && slices.Contains(list, f.Username):
					list = slices.DeleteFunc(list, func(u string) bool { return u == f.Username })
				case f.Type == "history":
				default:
					t.Errorf("%s: unexpected %+v (snapshot %v, knowing %d)", me, f, snap, len(list))
					return
				}
			}
			lists[i] = list
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	hubUsers := s.hub.Users()
	for i, l := range lists {
		if i%10 != 0 {
			diff(t, name(i)+"'s member list against the hub's", hubUsers, l)
		}
	}
}

// sortedCopy returns a sorted copy of names.
func sortedCopy(names []string) []string {
	s := slices.Clone(names)
	slices.Sort(s)
	return s
}

// TestManyHubs: hubs in one process share nothing.
func TestManyHubs(t *testing.T) {
	t.Parallel()
	s1 := startServer(t, chat.Options{Name: "one"})
	s2 := startServer(t, chat.Options{Name: "two"})
	a := s1.joinAs(t, "alice")
	b := s2.joinAs(t, "alice") // the same name in another room
	a.say("in one")
	b.say("in two")
	diff(t, "room one", msg("alice", "in one"), a.next())
	diff(t, "room two", msg("alice", "in two"), b.next())
	if s1.hub.Name() != "one" || s2.hub.Name() != "two" {
		t.Errorf("names %q, %q", s1.hub.Name(), s2.hub.Name())
	}
}

// unwrapper is middleware's ResponseWriter that hides http.Hijacker behind
// an Unwrap method, as http.ResponseController expects.
type unwrapper struct{ w http.ResponseWriter }

func (u unwrapper) Header() http.Header         { return u.w.Header() }
func (u unwrapper) Write(b []byte) (int, error) { return u.w.Write(b) }
func (u unwrapper) WriteHeader(code int)        { u.w.WriteHeader(code) }
func (u unwrapper) Unwrap() http.ResponseWriter { return u.w }

// TestServerBehindMiddleware: a Server under middleware whose
// ResponseWriter only unwraps to a Hijacker still upgrades and joins.
func TestServerBehindMiddleware(t *testing.T) {
	t.Parallel()
	hub := chat.NewHub(chat.Options{})
	srv := chat.NewServer(hub)
	s := serveHub(t, hub, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(unwrapper{w}, r)
	}), "")
	c := s.joinAs(t, "alice")
	c.say("hi")
	diff(t, "alice's echo", []frame{msg("alice", "hi")}, c.nextN(1))
}

// TestHTTPServerTimeouts: deadlines set on the connection before the
// upgrade, such as those of an http.Server's ReadTimeout and WriteTimeout,
// bound the upgrade request only: members chat on long after they have
// passed. net/http clears its own at the hijack, but a Hijacker need not
// (net/http did not before golang/go#8296), so the server clears them.
func TestHTTPServerTimeouts(t *testing.T) {
	t.Parallel()
	const httpTimeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name  string
		wrap  func(http.Handler) http.Handler
		setup func(*http.Server)
	}{
		{"http.Server timeouts", func(h http.Handler) http.Handler { return h }, func(hs *http.Server) {
			hs.ReadTimeout, hs.WriteTimeout = httpTimeout, httpTimeout
		}},
		{"Hijacker leaving deadlines", func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(staleDeadlines{w, httpTimeout}, r)
			})
		}, func(*http.Server) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hub := chat.NewHub(chat.Options{
				PingInterval: 20 * time.Millisecond,
				ReadTimeout:  ioTimeout, // alice does not answer pings while bob waits
				Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
			hs := httptest.NewUnstartedServer(tc.wrap(chat.NewServer(hub)))
			tc.setup(hs.Config)
			s := startHTTP(t, hub, hs, "/ws")
			alice := s.joinAs(t, "alice")
			bob := s.joinAs(t, "bob")
			diff(t, "alice's frame", join("bob"), alice.next())

			// Wait for several times httpTimeout by reading bob's pings
			// (the server's writes), then send.
			start := time.Now()
			sent := false
			bob.ws.SetPingHandler(func(data string) error {
				if !sent && time.Since(start) > 5*httpTimeout {
					sent = true
					bob.say("still here")
				}
				return bob.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(ioTimeout))
			})
			diff(t, "bob's frame", msg("bob", "still here"), bob.next())
			diff(t, "alice's frame", msg("bob", "still here"), alice.next())
			alice.say("me too")
			diff(t, "bob's frame", msg("alice", "me too"), bob.next())
			diff(t, "alice's frame", msg("alice", "me too"), alice.next())
		})
	}
}

// staleDeadlines is middleware whose Hijack leaves read and write
// deadlines d away on the connection.
type staleDeadlines struct {
	http.ResponseWriter
	d time.Duration
}

func (s staleDeadlines) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err == nil {
		_ = nc.SetDeadline(time.Now().Add(s.d))
	}
	return nc, brw, err
}

// TestAllowedHosts: an upgrade addressed to a Host outside
// Options.AllowedHosts is refused with 403, even when its Origin is the
// same host (DNS rebinding); allowed hosts, by pattern, get through.
func TestAllowedHosts(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{AllowedHosts: []string{"LOCALHOST:*", "127.0.0.1:*", `\[::1\]:*`}})
	port := strings.TrimPrefix(s.http.URL, "http://127.0.0.1:")
	tests := []struct {
		host string
		want int
	}{
		{"127.0.0.1:" + port, http.StatusSwitchingProtocols},
		{"localhost:" + port, http.StatusSwitchingProtocols},
		{"[::1]:" + port, http.StatusSwitchingProtocols},
		{"evil.example:" + port, http.StatusForbidden},
		{"localhost.evil.example:" + port, http.StatusForbidden},
		{"localhost", http.StatusForbidden},
	}
	for i, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			h := http.Header{"Origin": {"http://" + tc.host}, "Host": {tc.host}}
			ws, resp, err := websocket.DefaultDialer.Dial(s.url+"?username=u"+strconv.Itoa(i), h)
			if ws != nil {
				ws.Close()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusForbidden {
				body, _ := io.ReadAll(resp.Body)
				if want := "chat: host " + tc.host + " not allowed\n"; string(body) != want {
					t.Errorf("body = %q, want %q", body, want)
				}
			}
		})
	}
}

// TestTinySendQueue: a SendQueue too small for a joiner's welcome is raised
// rather than evicting every joiner during its handshake.
func TestTinySendQueue(t *testing.T) {
	for _, n := range []int{1, 4} {
		s := startServer(t, chat.Options{SendQueue: n})
		if err := s.hub.Post(context.Background(), "before"); err != nil {
			t.Fatal(err)
		}
		alice := s.joinAs(t, "alice")
		bob := s.joinAs(t, "bob")
		if got := alice.next(); got.Type != "join" || got.Username != "bob" {
			t.Fatalf("SendQueue %d: alice got %+v, want bob's join", n, got)
		}
		bob.send(frame{Type: "message", Body: "hi"})
		for _, c := range []*conn{alice, bob} {
			if got := c.next(); got.Type != "message" || got.Body != "hi" {
				t.Fatalf("SendQueue %d: got %+v, want bob's message", n, got)
			}
		}
	}
}
