package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hubchat/chat"
)

// identityHeader carries the identity a test client claims, as JSON; the
// tests' Authenticate trusts it.
const identityHeader = "X-Test-Identity"

// headerAuth is an Authenticate that returns the identity in the request's
// X-Test-Identity header, or refuses the request without one.
func headerAuth(r *http.Request) (chat.Identity, error) {
	var id chat.Identity
	h := r.Header.Get(identityHeader)
	if h == "" {
		return id, errors.New("no identity")
	}
	err := json.Unmarshal([]byte(h), &id)
	return id, err
}

// dialAs connects with identity id (see headerAuth) and returns the
// client, or fails the test with the HTTP status if the upgrade fails.
func (s *testServer) dialAs(t testing.TB, id chat.Identity) *conn {
	t.Helper()
	ws, status, err := s.tryDialAs(id)
	if err != nil {
		t.Fatalf("dial as %q: %v (status %d)", id.Name, err, status)
	}
	c := &conn{t: t, ws: ws}
	t.Cleanup(func() { ws.Close() })
	return c
}

// tryDialAs connects with identity id; on failure it returns the HTTP
// status and the response body as the error.
func (s *testServer) tryDialAs(id chat.Identity) (*websocket.Conn, int, error) {
	b, err := json.Marshal(id)
	if err != nil {
		return nil, 0, err
	}
	ws, resp, err := websocket.DefaultDialer.Dial(s.url, http.Header{identityHeader: {string(b)}})
	if err != nil {
		if resp == nil {
			return nil, 0, err
		}
		body, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, fmt.Errorf("%v: %s", err, body)
	}
	return ws, resp.StatusCode, nil
}

func joinP(name string, p profile) frame {
	return frame{Type: "join", Username: name, Display: p.Display, Avatar: p.Avatar}
}

func usersP(profs map[string]profile, names ...string) frame {
	return frame{Type: "users", Users: names, Profiles: profs}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use, for a logger.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestIdentityProfile: the public part of an identity (display and avatar)
// is in the member's join event and in the users snapshot, escaped; the
// private part (roles, claims) reaches the hooks and nobody else.
func TestIdentityProfile(t *testing.T) {
	t.Parallel()
	type hookCall struct {
		what string
		hub  *chat.Hub
		id   chat.Identity
	}
	calls := make(chan hookCall, 10)
	opts := chat.Options{
		Authenticate: headerAuth,
		OnJoin:       func(h *chat.Hub, id chat.Identity) { calls <- hookCall{"join " + id.Name, h, id} },
		OnLeave:      func(h *chat.Hub, id chat.Identity) { calls <- hookCall{"leave " + id.Name, h, id} },
		OnMessage: func(h *chat.Hub, id chat.Identity, m *chat.Message) error {
			calls <- hookCall{"message " + id.Name + " " + m.Body, h, id}
			return nil
		},
	}
	s := startServer(t, opts)

	aliceID := chat.Identity{
		Name:    "alice",
		Display: `  Alice "<script>alert(1)</script>" & co  `, // trimmed
		Avatar:  `https://img.example/a.png?q="<b>"&x=1`,
		Roles:   []string{"admin"},
		Claims:  map[string]string{"email": "alice@example.com"},
	}
	aliceP := profile{Display: `Alice "<script>alert(1)</script>" & co`, Avatar: aliceID.Avatar}
	alice := s.dialAs(t, aliceID)
	raw, err := alice.readRaw()
	if err != nil {
		t.Fatal(err)
	}
	const wantRaw = `{"type":"join","username":"alice","display":"Alice \"\u003cscript\u003ealert(1)\u003c/script\u003e\" \u0026 co","avatar":"https://img.example/a.png?q=\"\u003cb\u003e\"\u0026x=1"}`
	if string(raw) != wantRaw {
		t.Errorf("alice's join event:\n got %s\nwant %s", raw, wantRaw)
	}
	diff(t, "alice's welcome", []frame{usersP(map[string]profile{"alice": aliceP}, "alice"), history()}, alice.nextN(2))

	// bob has a display name only; carol nothing but her name.
	bobP := profile{Display: "Bob"}
	bob := s.dialAs(t, chat.Identity{Name: "bob", Display: "Bob"})
	diff(t, "bob's welcome", []frame{
		joinP("bob", bobP),
		usersP(map[string]profile{"alice": aliceP, "bob": bobP}, "alice", "bob"),
		history(),
	}, bob.nextN(3))
	diff(t, "alice sees bob join", joinP("bob", bobP), alice.next())
	carol := s.dialAs(t, chat.Identity{Name: "carol"})
	diff(t, "carol's welcome", []frame{
		join("carol"),
		usersP(map[string]profile{"alice": aliceP, "bob": bobP}, "alice", "bob", "carol"),
		history(),
	}, carol.nextN(3))
	alice.next()
	bob.next()

	// After a leave the snapshot is encoded afresh, still with profiles.
	carol.ws.Close()
	diff(t, "carol leaves", leave("carol"), alice.next())
	bob.next()
	dave := s.dialAs(t, chat.Identity{Name: "dave", Avatar: "http://img.example/d.png"})
	daveP := profile{Avatar: "http://img.example/d.png"}
	diff(t, "dave's welcome", []frame{
		joinP("dave", daveP),
		usersP(map[string]profile{"alice": aliceP, "bob": bobP, "dave": daveP}, "alice", "bob", "dave"),
		history(),
	}, dave.nextN(3))

	// The hooks receive the hub and the whole identity (in no set order:
	// each runs on its connection's goroutine).
	wantID := aliceID
	wantID.Display = aliceP.Display
	alice.say("hi")
	alice.next()
	want := []string{"join alice", "join bob", "join carol", "leave carol", "join dave", "message alice hi"}
	var got []string
	for range want {
		var c hookCall
		select {
		case c = <-calls:
		case <-time.After(ioTimeout):
			t.Fatalf("hook calls %q, want %q", got, want)
		}
		got = append(got, c.what)
		if c.hub != s.hub {
			t.Errorf("hook %q on hub %p, want %p", c.what, c.hub, s.hub)
		}
		if c.id.Name == "alice" {
			diff(t, "alice's identity in the hook", wantID, c.id)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	diff(t, "hook calls", want, got)
}

// TestIdentityCaps: an identity over a size cap, or otherwise invalid, is
// refused at authentication with 401 and a line at Warn that says why;
// nothing is cut to fit. At the caps it is accepted.
func TestIdentityCaps(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	s := startServer(t, chat.Options{
		Authenticate: headerAuth,
		Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	many := make([]string, chat.MaxClaims+1)
	for i := range many {
		many[i] = fmt.Sprint("r", i)
	}
	avatar := func(n int) string {
		const prefix = "https://img.example/"
		return prefix + strings.Repeat("a", n-len(prefix))
	}
	for _, tc := range []struct {
		name string
		id   chat.Identity
		want string // in the 401 body and the log; "" for accepted
	}{
		{"display at the cap", chat.Identity{Display: strings.Repeat("é", chat.MaxDisplayRunes)}, ""},
		{"display over the cap", chat.Identity{Display: strings.Repeat("é", chat.MaxDisplayRunes+1)}, "invalid display name: 65 characters, at most 64 allowed"},
		{"display with a zero-width space", chat.Identity{Display: "Al\u200bice"}, "invalid display name: invisible character U+200B not allowed"},
		{"display with a newline", chat.Identity{Display: "Al\nice"}, "invalid display name: character U+000A not allowed"},
		{"display of marks only", chat.Identity{Display: "\u0301\u0301"}, "invalid display name: no letter"},
		{"avatar at the cap", chat.Identity{Avatar: avatar(chat.MaxAvatarBytes)}, ""},
		{"avatar over the cap", chat.Identity{Avatar: avatar(chat.MaxAvatarBytes + 1)}, "invalid avatar: 513 bytes, at most 512 allowed"},
		{"avatar with javascript:", chat.Identity{Avatar: "javascript:alert(1)"}, "invalid avatar: want an http or https URL"},
		{"avatar with data:", chat.Identity{Avatar: "data:image/png;base64,AAAA"}, "invalid avatar: want an http or https URL"},
		{"avatar without a host", chat.Identity{Avatar: "https:///a.png"}, "invalid avatar: no host"},
		{"avatar relative", chat.Identity{Avatar: "/a.png"}, "invalid avatar: want an http or https URL"},
		{"avatar with user information", chat.Identity{Avatar: "https://good.example@evil.example/a.png"}, "invalid avatar: user information"},
		{"avatar with a space", chat.Identity{Avatar: "https://img.example/a b.png"}, "invalid avatar: byte 0x20 at 21"},
		{"avatar not ASCII", chat.Identity{Avatar: "https://img.example/é.png"}, "invalid avatar: byte 0xc3 at 20"},
		{"roles at the cap", chat.Identity{Roles: many[:chat.MaxClaims]}, ""},
		{"too many roles", chat.Identity{Roles: many}, "invalid identity: 65 roles and claims, at most 64 allowed"},
		{"claims too long", chat.Identity{Claims: map[string]string{"bio": strings.Repeat("x", chat.MaxClaimsBytes)}}, "invalid identity: roles and claims of 4099 bytes, at most 4096 allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.id.Name = strings.ReplaceAll(tc.name, " ", "-")[:min(len(tc.name), 32)]
			ws, status, err := s.tryDialAs(tc.id)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				ws.Close()
				return
			}
			if err == nil {
				ws.Close()
				t.Fatal("accepted, want 401")
			}
			if status != http.StatusUnauthorized || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("status %d, %v; want 401 saying %q", status, err, tc.want)
			}
			if !strings.Contains(logs.String(), tc.id.Name) {
				t.Errorf("no log line names the user %q:\n%s", tc.id.Name, logs.String())
			}
		})
	}
	for line := range strings.Lines(logs.String()) {
		if !strings.Contains(line, "level=WARN") || !strings.Contains(line, `msg="chat: identity refused"`) ||
			!strings.Contains(line, "err=") {
			t.Errorf("log line %q: want a Warn saying the identity was refused, and why", line)
		}
	}
}

// TestValidateIdentity: the exported check trims, and tells name errors
// from the rest.
func TestValidateIdentity(t *testing.T) {
	t.Parallel()
	id, err := chat.ValidateIdentity(chat.Identity{Name: " alice ", Display: " Alice "})
	if err != nil || id.Name != "alice" || id.Display != "Alice" {
		t.Errorf("ValidateIdentity = %+v, %v; want trimmed", id, err)
	}
	if _, err := chat.ValidateIdentity(chat.Identity{Name: "a\u200bb"}); !errors.Is(err, chat.ErrInvalidName) {
		t.Errorf("bad name: %v, want ErrInvalidName", err)
	}
	if _, err := chat.ValidateIdentity(chat.Identity{Name: "a", Avatar: "ftp://x/y"}); !errors.Is(err, chat.ErrInvalidIdentity) {
		t.Errorf("bad avatar: %v, want ErrInvalidIdentity", err)
	}
}

// TestSeveralConnections: with Authenticate, connections of the same name
// are one member: one join, every message (public and private, sent and
// received) on every connection, no leave until the last one closes.
func TestSeveralConnections(t *testing.T) {
	t.Parallel()
	hooks := make(chan string, 10)
	s := startServer(t, chat.Options{
		Authenticate: headerAuth,
		OnJoin:       func(_ *chat.Hub, id chat.Identity) { hooks <- "join " + id.Name },
		OnLeave:      func(_ *chat.Hub, id chat.Identity) { hooks <- "leave " + id.Name },
		MaxUsers:     2,
	})
	aliceP := profile{Display: "Alice"}
	alice1 := s.dialAs(t, chat.Identity{Name: "alice", Display: "Alice"})
	alice1.nextN(3)
	bob := s.dialAs(t, chat.Identity{Name: "bob"})
	bob.nextN(3)
	alice1.next() // join bob
	bob.say("first")
	diff(t, "first", msg("bob", "first"), alice1.next())
	bob.next()

	// A second tab, under a name of another case, with another display
	// name: it joins the member, whose profile stays; MaxUsers does not
	// count it.
	alice2 := s.dialAs(t, chat.Identity{Name: "ALICE", Display: "Someone else"})
	diff(t, "second tab's welcome", []frame{
		joinP("alice", aliceP),
		usersP(map[string]profile{"alice": aliceP}, "alice", "bob"),
		history(msg("bob", "first")),
	}, alice2.nextN(3))
	diff(t, "Users", []string{"alice", "bob"}, s.hub.Users())

	// Nobody saw a join: the next frame everyone gets is the message.
	bob.say("hello")
	for i, c := range []*conn{alice1, alice2, bob} {
		diff(t, fmt.Sprint("public message, connection ", i), msg("bob", "hello"), c.next())
	}
	alice2.say("from tab 2")
	for i, c := range []*conn{alice1, alice2, bob} {
		diff(t, fmt.Sprint("message from tab 2, connection ", i), msg("alice", "from tab 2"), c.next())
	}
	bob.send(map[string]string{"type": "message", "body": "psst", "to": "alice"})
	want := frame{Type: "message", Username: "bob", Body: "psst", To: "alice"}
	for i, c := range []*conn{alice1, alice2, bob} {
		diff(t, fmt.Sprint("private to alice, connection ", i), want, c.next())
	}
	alice1.send(map[string]string{"type": "message", "body": "hush", "to": "bob"})
	want = frame{Type: "message", Username: "alice", Body: "hush", To: "bob"}
	for i, c := range []*conn{alice1, alice2, bob} {
		diff(t, fmt.Sprint("private from alice, connection ", i), want, c.next())
	}

	// The first tab closes: no leave. The member stays.
	alice1.ws.Close()
	bob.say("still here?")
	diff(t, "no leave for one tab", msg("bob", "still here?"), bob.next())
	diff(t, "the other tab goes on", msg("bob", "still here?"), alice2.next())
	diff(t, "Users after one tab", []string{"alice", "bob"}, s.hub.Users())

	// The last closes: the leave.
	alice2.ws.Close()
	diff(t, "leave with the last tab", leave("alice"), bob.next())
	var got []string
	for range 3 {
		select {
		case h := <-hooks:
			got = append(got, h)
		case <-time.After(ioTimeout):
			t.Fatalf("hook calls %q, want 3", got)
		}
	}
	slices.Sort(got)
	diff(t, "hook calls", []string{"join alice", "join bob", "leave alice"}, got)
	select {
	case got := <-hooks:
		t.Errorf("extra hook call %q", got)
	default:
	}

	// The name is free again: a new connection is a new member.
	alice3 := s.dialAs(t, chat.Identity{Name: "alice"})
	diff(t, "alice again", []frame{join("alice"), users("bob", "alice")}, alice3.nextN(2))
	diff(t, "bob sees her join", join("alice"), bob.next())
}

// TestSecondConnectionWithoutAuthenticate: without Authenticate nothing
// vouches for a name, so a second connection asking for a member's name
// is refused as taken.
func TestSecondConnectionWithoutAuthenticate(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	alice := s.joinAs(t, "alice")
	dup := s.dial(t, "username=Alice")
	if f := dup.next(); f.Type != "error" || f.Error != `username "Alice" is taken` {
		t.Errorf("second connection: %+v, want taken", f)
	}
	if code := dup.closeCode(); code != websocket.ClosePolicyViolation {
		t.Errorf("close code %d, want 1008", code)
	}
	alice.say("alone")
	diff(t, "no join, no leave", msg("alice", "alone"), alice.next())
}

// TestSeveralConnectionsBroker: with a Broker, profiles travel between the
// hubs of a room; a member's connections share it on one hub, and one
// through another hub is refused as taken.
func TestSeveralConnectionsBroker(t *testing.T) {
	t.Parallel()
	b := chat.NewMemoryBroker()
	s1 := startServer(t, chat.Options{Name: "lobby", Broker: b, Authenticate: headerAuth})
	s2 := startServer(t, chat.Options{Name: "lobby", Broker: b, Authenticate: headerAuth})
	aliceP := profile{Display: "Alice", Avatar: "https://img.example/a.png"}
	aliceID := chat.Identity{Name: "alice", Display: aliceP.Display, Avatar: aliceP.Avatar}

	alice1 := s1.dialAs(t, aliceID)
	alice1.nextN(3)
	bob := s2.dialAs(t, chat.Identity{Name: "bob"})
	diff(t, "bob's welcome on hub 2", []frame{
		join("bob"), usersP(map[string]profile{"alice": aliceP}, "alice", "bob"), history(),
	}, bob.nextN(3))
	diff(t, "alice sees bob", join("bob"), alice1.next())
	carol := s2.dialAs(t, chat.Identity{Name: "carol"})
	carol.nextN(3)
	bob.next()
	alice1.next()

	alice2 := s1.dialAs(t, aliceID)
	diff(t, "second tab on hub 1", []frame{
		joinP("alice", aliceP), usersP(map[string]profile{"alice": aliceP}, "alice", "bob", "carol"), history(),
	}, alice2.nextN(3))

	// On hub 2, the same identity is taken.
	other := s2.dialAs(t, aliceID)
	if f := other.next(); f.Type != "error" || f.Error != `username "alice" is taken` {
		t.Errorf("alice through hub 2: %+v, want taken", f)
	}

	bob.send(map[string]string{"type": "message", "body": "psst", "to": "alice"})
	want := frame{Type: "message", Username: "bob", Body: "psst", To: "alice"}
	diff(t, "private across hubs, tab 1", want, alice1.next())
	diff(t, "private across hubs, tab 2", want, alice2.next())
	diff(t, "echo", want, bob.next())

	alice1.ws.Close()
	bob.say("ping")
	diff(t, "no leave for one tab", msg("bob", "ping"), bob.next())
	alice2.next()
	alice2.ws.Close()
	diff(t, "leave with the last tab", leave("alice"), bob.next())
	diff(t, "Users on hub 2", []string{"bob", "carol"}, s2.hub.Users())
}

// gateBroker is a Broker whose Link.Join waits for the gate to open,
// and counts its calls.
type gateBroker struct {
	chat.Broker
	gate    chan struct{}
	entered chan string
}

type gateLink struct {
	chat.Link
	b *gateBroker
}

func (b *gateBroker) Open(room string, deliver func(chat.Event)) (chat.Link, error) {
	l, err := b.Broker.Open(room, deliver)
	return &gateLink{Link: l, b: b}, err
}

func (l *gateLink) Join(ctx context.Context, name string, p chat.Profile) error {
	l.b.entered <- name
	select {
	case <-l.b.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.Link.Join(ctx, name, p)
}

// TestSeveralConnectionsAtOnce: with a Broker, a second connection of a
// member whose first is still claiming the name waits for the claim and
// then joins the member, without a claim of its own.
func TestSeveralConnectionsAtOnce(t *testing.T) {
	t.Parallel()
	b := &gateBroker{Broker: chat.NewMemoryBroker(), gate: make(chan struct{}), entered: make(chan string, 4)}
	authed := make(chan string, 4)
	s := startServer(t, chat.Options{Broker: b, Authenticate: func(r *http.Request) (chat.Identity, error) {
		id, err := headerAuth(r)
		authed <- id.Name
		return id, err
	}})
	type dialed struct {
		ws  *websocket.Conn
		err error
	}
	results := make(chan dialed, 2)
	dial := func() {
		ws, _, err := s.tryDialAs(chat.Identity{Name: "alice", Display: "Alice"})
		results <- dialed{ws, err}
	}
	go dial()
	if got := <-b.entered; got != "alice" {
		t.Fatalf("claim of %q", got)
	}
	<-authed
	go dial() // while the first claims the name
	<-authed
	close(b.gate)
	var conns []*conn
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { r.ws.Close() })
		conns = append(conns, &conn{t: t, ws: r.ws})
	}
	aliceP := profile{Display: "Alice"}
	for i, c := range conns {
		diff(t, fmt.Sprint("welcome ", i), []frame{
			joinP("alice", aliceP), usersP(map[string]profile{"alice": aliceP}, "alice"), history(),
		}, c.nextN(3))
	}
	select {
	case name := <-b.entered:
		t.Errorf("a second claim, of %q", name)
	default:
	}
	conns[0].say("both")
	for i, c := range conns {
		diff(t, fmt.Sprint("message, connection ", i), msg("alice", "both"), c.next())
	}
}

// TestSeveralConnectionsModeration: moderation acts on the member, so on
// every one of its connections: Send reaches them all, a mute refuses
// each one's messages, a kick closes them all with one leave, and a ban
// refuses a further connection.
func TestSeveralConnectionsModeration(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{Authenticate: headerAuth})
	alice1 := s.dialAs(t, chat.Identity{Name: "alice"})
	alice1.nextN(3)
	alice2 := s.dialAs(t, chat.Identity{Name: "alice"})
	alice2.nextN(3)
	bob := s.dialAs(t, chat.Identity{Name: "bob"})
	bob.nextN(3)
	alice1.next() // join bob
	alice2.next()

	if err := s.hub.Send(t.Context(), "alice", "a word"); err != nil {
		t.Fatal(err)
	}
	want := frame{Type: "message", Username: "system", Body: "a word", To: "alice", System: true}
	diff(t, "Send, tab 1", want, alice1.next())
	diff(t, "Send, tab 2", want, alice2.next())

	if err := s.hub.Mute(t.Context(), "alice", time.Hour); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*conn{alice1, alice2} {
		c.say("hello?")
		if f := c.next(); f.Type != "error" || !strings.HasPrefix(f.Error, "you are muted") {
			t.Errorf("tab %d, muted: %+v", i+1, f)
		}
	}

	if err := s.hub.Kick(t.Context(), "alice", "enough"); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*conn{alice1, alice2} {
		diff(t, fmt.Sprint("tab ", i+1, " kicked"), frame{Type: "error", Error: "kicked by a moderator: enough"}, c.next())
		if code := c.closeCode(); code != websocket.ClosePolicyViolation {
			t.Errorf("tab %d: close %d, want 1008", i+1, code)
		}
	}
	diff(t, "one leave", leave("alice"), bob.next())
	bob.say("gone")
	diff(t, "and nothing more", msg("bob", "gone"), bob.next())

	if err := s.hub.Ban(t.Context(), "alice", time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	again := s.dialAs(t, chat.Identity{Name: "alice"})
	if f := again.next(); f.Type != "error" || !strings.HasPrefix(f.Error, `username "alice" is banned until`) {
		t.Errorf("after the ban: %+v", f)
	}
}
