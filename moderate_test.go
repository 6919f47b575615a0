package chat_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/storetest"
)

// refused reads a refused join: an error frame, then the close. It returns
// the error text and the close code.
func (c *conn) refused() (string, int) {
	c.t.Helper()
	f := c.next()
	if f.Type != "error" {
		c.t.Fatalf("first frame = %+v, want an error", f)
	}
	return f.Error, c.closeCode()
}

// quiet checks that c receives nothing before the marker message that
// from (a member) sends now: what c was sent before it came first.
func quiet(t *testing.T, what string, c, from *conn, fromName string) {
	t.Helper()
	from.say("marker")
	diff(t, what, msg(fromName, "marker"), c.next())
}

func TestKick(t *testing.T) {
	t.Parallel()
	var left atomic.Int32
	s := startServer(t, chat.Options{OnLeave: func(*chat.Hub, chat.Identity) { left.Add(1) }})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()
	carol := s.joinAs(t, "carol")
	alice.next()
	bob.next()

	if err := s.hub.Kick(t.Context(), "BOB", "  spamming\n"); err != nil {
		t.Fatalf("Kick: %v", err)
	}
	diff(t, "bob's error frame", frame{Type: "error", Error: "kicked by a moderator: spamming"}, bob.next())
	if ce := bob.closeError(); ce.Code != 1008 || ce.Text != "kicked by a moderator: spamming" {
		t.Errorf("bob's close = %d %q, want 1008 with the reason", ce.Code, ce.Text)
	}
	diff(t, "alice sees bob leave", leave("bob"), alice.next())
	diff(t, "carol sees bob leave", leave("bob"), carol.next())
	diff(t, "Users", []string{"alice", "carol"}, s.hub.Users())
	if n := left.Load(); n != 1 {
		t.Errorf("OnLeave called %d times, want 1", n)
	}

	// The name is free at once, and Kick does not keep bob out.
	bob = s.joinAs(t, "bob")
	diff(t, "alice sees bob again", join("bob"), alice.next())
	diff(t, "carol sees bob again", join("bob"), carol.next())
	quiet(t, "carol's stream", carol, alice, "alice")
	alice.next()
	bob.next()

	// A long reason is cut.
	if err := s.hub.Kick(t.Context(), "bob", strings.Repeat("é", 300)); err != nil {
		t.Fatalf("Kick: %v", err)
	}
	f := bob.next()
	if !strings.HasPrefix(f.Error, "kicked by a moderator: éé") || !strings.HasSuffix(f.Error, "…") ||
		len(f.Error) > len("kicked by a moderator: ")+chat.MaxReasonBytes {
		t.Errorf("long reason: %d bytes: %q", len(f.Error), f.Error)
	}
	if code := bob.closeCode(); code != 1008 {
		t.Errorf("close code %d, want 1008", code)
	}

	diff(t, "carol sees bob leave", leave("bob"), carol.next())

	// Without a reason.
	if err := s.hub.Kick(t.Context(), "carol", ""); err != nil {
		t.Fatalf("Kick: %v", err)
	}
	diff(t, "carol's error frame", frame{Type: "error", Error: "kicked by a moderator"}, carol.next())
}

func TestBan(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()

	start := time.Now()
	if err := s.hub.Ban(t.Context(), "Bob", time.Hour, "spam"); err != nil {
		t.Fatalf("Ban: %v", err)
	}
	f := bob.next()
	until, ok := strings.CutPrefix(f.Error, "banned until ")
	until, ok2 := strings.CutSuffix(until, ": spam")
	if f.Type != "error" || !ok || !ok2 {
		t.Fatalf("bob's frame = %+v, want the ban", f)
	}
	end, err := time.Parse(time.RFC3339, until)
	if err != nil || end.Before(start.Add(time.Hour-time.Second)) || end.After(time.Now().Add(time.Hour)) {
		t.Errorf("ban ends %q (%v), want in an hour", until, err)
	}
	if code := bob.closeCode(); code != 1008 {
		t.Errorf("close code %d, want 1008", code)
	}
	diff(t, "alice sees bob leave", leave("bob"), alice.next())

	// Refused at join, under every name of the same key, and on either
	// way to join.
	for _, q := range []string{"username=bob", "username=BOB"} {
		text, code := s.dial(t, q).refused()
		name := strings.TrimPrefix(q, "username=")
		if want := `username "` + name + `" is banned until ` + until + ": spam"; text != want || code != 1008 {
			t.Errorf("%s: %q %d, want %q 1008", q, text, code, want)
		}
	}
	c := s.dial(t, "")
	c.send(map[string]string{"type": "join", "username": "bob"})
	if text, code := c.refused(); !strings.Contains(text, "is banned until") || code != 1008 {
		t.Errorf("join frame: %q %d", text, code)
	}
	quiet(t, "alice's stream", alice, alice, "alice")

	// A name banned before it joins; then both lifted.
	if err := s.hub.Ban(t.Context(), "dave", time.Hour, ""); err != nil {
		t.Fatalf("Ban: %v", err)
	}
	if text, _ := s.dial(t, "username=dave").refused(); text != `username "dave" is banned until `+stamp(t, text) {
		t.Errorf("dave: %q", text)
	}
	for _, name := range []string{"BOB", "dave"} {
		if err := s.hub.Unban(t.Context(), name); err != nil {
			t.Fatalf("Unban: %v", err)
		}
	}
	if err := s.hub.Unban(t.Context(), "nobody"); err != nil {
		t.Errorf("Unban of a name not banned: %v", err)
	}
	s.joinAs(t, "bob")
	s.joinAs(t, "dave")
}

// stamp returns the time at the end of an error text.
func stamp(t *testing.T, text string) string {
	t.Helper()
	_, ts, _ := strings.Cut(text, " until ")
	if _, err := time.Parse(time.RFC3339, ts); err != nil {
		t.Errorf("no time at the end of %q", text)
	}
	return ts
}

// TestBanLapses: a ban holds until its end, and no longer.
func TestBanLapses(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	const d = 300 * time.Millisecond
	start := time.Now()
	if err := s.hub.Ban(t.Context(), "bob", d, "cool off"); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(ioTimeout)
	for refusals := 0; ; refusals++ {
		c := s.dial(t, "username=bob")
		f := c.next()
		if f.Type == "join" {
			if time.Since(start) < d {
				t.Errorf("bob joined %v after a ban of %v", time.Since(start), d)
			}
			break
		}
		if !strings.Contains(f.Error, "is banned until") {
			t.Fatalf("refused with %+v", f)
		}
		if code := c.closeCode(); code != 1008 {
			t.Fatalf("close code %d", code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still banned after %v (%d refusals)", time.Since(start), refusals)
		}
		<-tick.C
	}
}

func TestMute(t *testing.T) {
	t.Parallel()
	var seen atomic.Int32
	s := startServer(t, chat.Options{RateLimit: -1, OnMessage: func(*chat.Hub, chat.Identity, *chat.Message) error {
		seen.Add(1)
		return nil
	}})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()

	if err := s.hub.Mute(t.Context(), "BOB", time.Hour); err != nil {
		t.Fatalf("Mute: %v", err)
	}
	bob.say("let me speak")
	f := bob.next()
	if f.Type != "error" || !strings.HasPrefix(f.Error, "you are muted until ") ||
		!strings.HasSuffix(f.Error, ": your messages are not published") {
		t.Errorf("bob's frame = %+v, want the mute", f)
	}
	bob.send(map[string]string{"type": "message", "body": "psst", "to": "alice"})
	if f := bob.next(); !strings.HasPrefix(f.Error, "you are muted") {
		t.Errorf("private message: %+v", f)
	}
	// Bob stays, and hears everything; nobody hears him.
	alice.say("hello bob")
	diff(t, "bob hears alice", msg("alice", "hello bob"), bob.next())
	diff(t, "alice's stream", msg("alice", "hello bob"), alice.next())
	if n := seen.Load(); n != 1 {
		t.Errorf("OnMessage saw %d messages, want only alice's", n)
	}
	if len(s.hub.History()) != 1 {
		t.Errorf("History: %v", s.hub.History())
	}

	// The mute holds for the name, across a reconnection.
	bob.ws.Close()
	diff(t, "bob left", leave("bob"), alice.next())
	bob = s.joinAs(t, "bob")
	alice.next()
	bob.say("again")
	if f := bob.next(); !strings.HasPrefix(f.Error, "you are muted") {
		t.Errorf("after rejoining: %+v", f)
	}

	if err := s.hub.Unmute(t.Context(), "bob"); err != nil {
		t.Fatalf("Unmute: %v", err)
	}
	bob.say("free")
	diff(t, "alice hears bob", msg("bob", "free"), alice.next())
	diff(t, "bob's echo", msg("bob", "free"), bob.next())

	// A mute lapses by itself.
	const d = 200 * time.Millisecond
	start := time.Now()
	if err := s.hub.Mute(t.Context(), "bob", d); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(ioTimeout)
	for {
		bob.say("now?")
		f := bob.next()
		if f.Type == "message" {
			if time.Since(start) < d {
				t.Errorf("bob published %v after a mute of %v", time.Since(start), d)
			}
			diff(t, "alice hears bob", msg("bob", "now?"), alice.next())
			break
		}
		if !strings.HasPrefix(f.Error, "you are muted") || time.Now().After(deadline) {
			t.Fatalf("got %+v after %v", f, time.Since(start))
		}
		<-tick.C
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	st := storetest.NewMemory()
	s := startServer(t, chat.Options{SystemName: "mod", Store: st})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()

	if err := s.hub.Send(t.Context(), "BOB", "Please keep it civil."); err != nil {
		t.Fatalf("Send: %v", err)
	}
	diff(t, "bob's message",
		frame{Type: "message", Username: "mod", Body: "Please keep it civil.", To: "bob", System: true}, bob.next())
	quiet(t, "alice's stream", alice, alice, "alice")
	bob.next()
	if len(s.hub.History()) != 1 {
		t.Errorf("History holds the private message: %v", s.hub.History())
	}

	// Stored like any private message: for bob, not for alice.
	ctx := t.Context()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(ioTimeout)
	for {
		got, err := st.After(ctx, "default", "bob", "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 {
			if m := got[0]; m.Username != "mod" || m.To != "bob" || !m.System {
				t.Errorf("stored: %+v", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored for bob: %+v", got)
		}
		<-tick.C
	}
	got, err := st.After(ctx, "default", "alice", "", 10)
	if err != nil || len(got) != 1 || got[0].Body != "marker" {
		t.Errorf("stored for alice: %+v, %v", got, err)
	}
}

func TestModerationBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{MaxBodyBytes: 10})
	alice := s.joinAs(t, "alice")
	hub, ctx := s.hub, t.Context()
	for _, tc := range []struct {
		name string
		err  error // the sentinel, or nil for any error
		call func() error
	}{
		{"kick absent", chat.ErrNoSuchUser, func() error { return hub.Kick(ctx, "bob", "x") }},
		{"kick the system", chat.ErrNoSuchUser, func() error { return hub.Kick(ctx, "system", "") }},
		{"kick empty name", chat.ErrInvalidName, func() error { return hub.Kick(ctx, " ", "") }},
		{"send absent", chat.ErrNoSuchUser, func() error { return hub.Send(ctx, "bob", "hi") }},
		{"send empty body", chat.ErrInvalidBody, func() error { return hub.Send(ctx, "alice", " ") }},
		{"send long body", chat.ErrInvalidBody, func() error { return hub.Send(ctx, "alice", "12345678901") }},
		{"send bad UTF-8", chat.ErrInvalidBody, func() error { return hub.Send(ctx, "alice", "\xff") }},
		{"send invalid name", chat.ErrInvalidName, func() error { return hub.Send(ctx, "a\u200bb", "hi") }},
		{"ban for zero", nil, func() error { return hub.Ban(ctx, "bob", 0, "") }},
		{"ban invalid name", chat.ErrInvalidName, func() error { return hub.Ban(ctx, "", time.Hour, "") }},
		{"mute for less than zero", nil, func() error { return hub.Mute(ctx, "alice", -time.Second) }},
		{"unmute invalid name", chat.ErrInvalidName, func() error { return hub.Unmute(ctx, "\t") }},
	} {
		err := tc.call()
		if err == nil || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	quiet(t, "alice's stream", alice, alice, "alice")
	if err := hub.Send(ctx, "alice", "still ok"); err != nil {
		t.Errorf("Send: %v", err)
	}

	if err := hub.Close(); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"Kick":   func() error { return hub.Kick(ctx, "alice", "") },
		"Ban":    func() error { return hub.Ban(ctx, "alice", time.Hour, "") },
		"Unban":  func() error { return hub.Unban(ctx, "alice") },
		"Mute":   func() error { return hub.Mute(ctx, "alice", time.Hour) },
		"Unmute": func() error { return hub.Unmute(ctx, "alice") },
		"Send":   func() error { return hub.Send(ctx, "alice", "hi") },
	} {
		if err := call(); !errors.Is(err, chat.ErrHubClosed) {
			t.Errorf("%s after Close: %v, want ErrHubClosed", name, err)
		}
	}
}

// TestModerationBroker: moderation reaches members on other hubs of the
// room, and a hub that opens the room later learns the bans and mutes.
func TestModerationBroker(t *testing.T) {
	t.Parallel()
	b := chat.NewMemoryBroker()
	s1 := startServer(t, chat.Options{Name: "lobby", Broker: b, RateLimit: -1})
	s2 := startServer(t, chat.Options{Name: "lobby", Broker: b, RateLimit: -1})
	alice := s1.joinAs(t, "alice")
	bob := s2.joinAs(t, "bob")
	alice.next()
	carol := s2.joinAs(t, "carol")
	alice.next()
	bob.next()

	// Send, from hub 1 to bob on hub 2.
	if err := s1.hub.Send(t.Context(), "bob", "hi bob"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	diff(t, "bob's message", frame{Type: "message", Username: "system", Body: "hi bob", To: "bob", System: true}, bob.next())
	quiet(t, "carol's stream", carol, alice, "alice")
	diff(t, "alice's marker", msg("alice", "marker"), alice.next())
	bob.next()

	// Mute, on hub 1, of bob on hub 2.
	if err := s1.hub.Mute(t.Context(), "bob", time.Hour); err != nil {
		t.Fatal(err)
	}
	bob.say("hello?")
	if f := bob.next(); !strings.HasPrefix(f.Error, "you are muted until") {
		t.Errorf("muted bob: %+v", f)
	}

	// Kick, on hub 1, of carol on hub 2.
	if err := s1.hub.Kick(t.Context(), "carol", "bye"); err != nil {
		t.Fatal(err)
	}
	diff(t, "carol's error", frame{Type: "error", Error: "kicked by a moderator: bye"}, carol.next())
	diff(t, "alice sees carol leave", leave("carol"), alice.next())
	diff(t, "bob sees carol leave", leave("carol"), bob.next())

	// Ban, on hub 1, of bob on hub 2: bob is disconnected, and refused on
	// both hubs and on a hub that opens the room later.
	if err := s1.hub.Ban(t.Context(), "bob", time.Hour, "spam"); err != nil {
		t.Fatal(err)
	}
	if f := bob.next(); !strings.HasPrefix(f.Error, "banned until") {
		t.Errorf("banned bob: %+v", f)
	}
	diff(t, "alice sees bob leave", leave("bob"), alice.next())
	s3 := startServer(t, chat.Options{Name: "lobby", Broker: b})
	for i, s := range []*testServer{s1, s2, s3} {
		if text, _ := s.dial(t, "username=bob").refused(); !strings.Contains(text, "is banned until") {
			t.Errorf("hub %d: %q", i+1, text)
		}
	}
	// The mute is known to hub 3 too.
	if err := s1.hub.Unban(t.Context(), "bob"); err != nil {
		t.Fatal(err)
	}
	bob = s3.joinAs(t, "bob")
	alice.next()
	bob.say("hello?")
	if f := bob.next(); !strings.HasPrefix(f.Error, "you are muted until") {
		t.Errorf("muted bob on hub 3: %+v", f)
	}
	if err := s2.hub.Kick(t.Context(), "carol", ""); !errors.Is(err, chat.ErrNoSuchUser) {
		t.Errorf("Kick of carol, gone: %v", err)
	}
}
