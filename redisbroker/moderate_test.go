package redisbroker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hubchat/chat"
)

// TestLinkModerate: the seam's contract for moderation, on bare links.
func TestLinkModerate(t *testing.T) {
	s := startRedis(t)
	b := newBroker(t, s, testOptions(t))
	l1, v1 := open(t, b, "mod")
	l2, _ := open(t, newBroker(t, s, testOptions(t)), "mod")
	ctx := ctxT(t)

	if err := l1.Moderate(ctx, chat.Moderation{Action: chat.ModKick, Username: "bob"}); !errors.Is(err, chat.ErrNoSuchUser) {
		t.Errorf("kick of nobody: %v, want ErrNoSuchUser", err)
	}
	until := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	for _, mod := range []chat.Moderation{
		{Action: chat.ModBan, Username: "Bob", Reason: "spam", Until: until},
		{Action: chat.ModMute, Username: "carol", Until: until},
		{Action: chat.ModBan, Username: "dave", Until: time.Now().Add(50 * time.Millisecond)},
	} {
		if err := l1.Moderate(ctx, mod); err != nil {
			t.Fatalf("%+v: %v", mod, err)
		}
	}
	v1.wait(t, "the moderation events", func(v *view) bool {
		n := 0
		for _, e := range v.events {
			if e.Kind == chat.EventModeration {
				n++
			}
		}
		return n == 3
	})
	if err := l2.Join(ctx, "BOB", chat.Profile{}); !errors.Is(err, chat.ErrBanned) {
		t.Errorf("join of a banned name: %v, want ErrBanned", err)
	}
	if err := l2.Join(ctx, "carol", chat.Profile{}); err != nil {
		t.Fatalf("join of a muted name: %v", err)
	}
	if err := l2.Publish(ctx, chat.Message{Username: "carol", Body: "hi"}); !errors.Is(err, chat.ErrMuted) {
		t.Errorf("publish of a muted name: %v, want ErrMuted", err)
	}
	if err := l2.Publish(ctx, chat.Message{Username: "system", Body: "to carol", To: "carol", System: true}); err != nil {
		t.Errorf("system message to a muted name: %v", err)
	}
	// Kick names the member as it joined.
	if err := l1.Moderate(ctx, chat.Moderation{Action: chat.ModKick, Username: "CAROL", Reason: "bye"}); err != nil {
		t.Fatal(err)
	}
	v1.wait(t, "the kick", func(v *view) bool {
		e := v.events[len(v.events)-1]
		return e.Kind == chat.EventModeration && e.Moderation == chat.Moderation{Action: chat.ModKick, Username: "carol", Reason: "bye"}
	})

	// A link opened later gets the bans and mutes in force in its
	// snapshot, without the lapsed one.
	eventually(t, "dave's ban to lapse", func() bool {
		return l2.Join(ctx, "dave", chat.Profile{}) == nil
	})
	_, v3 := open(t, newBroker(t, s, testOptions(t)), "mod")
	v3.mu.Lock()
	got := v3.events[0].Sync.Restrictions
	v3.mu.Unlock()
	want := map[string]chat.Moderation{
		"Bob":   {Action: chat.ModBan, Username: "Bob", Reason: "spam", Until: until},
		"carol": {Action: chat.ModMute, Username: "carol", Until: until},
	}
	if len(got) != len(want) {
		t.Errorf("restrictions %+v, want %+v", got, want)
	}
	for _, r := range got {
		if w := want[r.Username]; w.Action != r.Action || w.Reason != r.Reason || !w.Until.Equal(r.Until) {
			t.Errorf("restriction %+v, want %+v", r, w)
		}
	}

	// Lifted.
	for _, mod := range []chat.Moderation{{Action: chat.ModUnban, Username: "bob"}, {Action: chat.ModUnmute, Username: "Carol"}} {
		if err := l1.Moderate(ctx, mod); err != nil {
			t.Fatal(err)
		}
	}
	if err := l2.Join(ctx, "bob", chat.Profile{}); err != nil {
		t.Errorf("join after unban: %v", err)
	}
	if err := l2.Publish(ctx, chat.Message{Username: "carol", Body: "hi"}); err != nil {
		t.Errorf("publish after unmute: %v", err)
	}
}

// TestClusterModeration: moderation from one instance acts on members of
// another, and on instances that start later.
func TestClusterModeration(t *testing.T) {
	s := startRedis(t)
	a, b := startInstance(t, s, quietOptions(t)), startInstance(t, s, quietOptions(t))
	ctx := ctxT(t)
	alice, _, _ := join(t, a, "alice")
	bob, _, _ := join(t, b, "bob")
	alice.expect(joinFrame("bob"))
	carol, _, _ := join(t, b, "carol")
	alice.expect(joinFrame("carol"))
	bob.expect(joinFrame("carol"))

	// Send, from a to bob on b: nobody else sees it.
	if err := a.hub.Send(ctx, "BOB", "welcome, bob"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	bob.expect(frame{Type: "message", Username: "system", Body: "welcome, bob", To: "bob", System: true})
	alice.say("hi all", "")
	for _, c := range []*client{alice, bob, carol} {
		c.expect(msgFrame("alice", "hi all"))
	}
	if err := a.hub.Send(ctx, "nobody", "x"); !errors.Is(err, chat.ErrNoSuchUser) {
		t.Errorf("Send to nobody: %v, want ErrNoSuchUser", err)
	}

	// Mute, from a, of bob on b: from the moment Mute returns, bob's
	// messages are refused, and nobody hears them.
	if err := a.hub.Mute(ctx, "bob", time.Hour); err != nil {
		t.Fatalf("Mute: %v", err)
	}
	bob.say("can you hear me?", "")
	if f := bob.next(); f.Type != "error" || !strings.HasPrefix(f.Error, "you are muted") {
		t.Errorf("muted bob: %+v", f)
	}
	carol.say("carol here", "")
	for _, c := range []*client{alice, bob, carol} {
		c.expect(msgFrame("carol", "carol here"))
	}
	if err := a.hub.Unmute(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	// A message sent after the unmute reaches b after it.
	if err := a.hub.Send(ctx, "bob", "you may speak"); err != nil {
		t.Fatal(err)
	}
	bob.expect(frame{Type: "message", Username: "system", Body: "you may speak", To: "bob", System: true})
	bob.say("thanks", "")
	for _, c := range []*client{alice, bob, carol} {
		c.expect(msgFrame("bob", "thanks"))
	}

	// Kick, from a, of carol on b.
	if err := a.hub.Kick(ctx, "carol", "bye"); err != nil {
		t.Fatalf("Kick: %v", err)
	}
	carol.expect(frame{Type: "error", Error: "kicked by a moderator: bye"})
	closeCode(t, carol, websocket.ClosePolicyViolation)
	alice.expect(leaveFrame("carol"))
	bob.expect(leaveFrame("carol"))
	if err := b.hub.Kick(ctx, "carol", ""); !errors.Is(err, chat.ErrNoSuchUser) {
		t.Errorf("Kick of carol, gone: %v, want ErrNoSuchUser", err)
	}

	// Ban, from a, of bob on b: bob goes, and is refused on both
	// instances, and on one that starts later.
	if err := a.hub.Ban(ctx, "bob", time.Hour, "spam"); err != nil {
		t.Fatalf("Ban: %v", err)
	}
	if f := bob.next(); f.Type != "error" || !strings.HasPrefix(f.Error, "banned until ") || !strings.HasSuffix(f.Error, ": spam") {
		t.Errorf("banned bob: %+v", f)
	}
	closeCode(t, bob, websocket.ClosePolicyViolation)
	alice.expect(leaveFrame("bob"))
	for _, in := range []*instance{a, b} {
		refusedBanned(t, in, "Bob", false)
	}
	c := startInstance(t, s, quietOptions(t))
	refusedBanned(t, c, "bob", true) // the ban came with c's snapshot

	// A ban lapses on every instance.
	const d = 300 * time.Millisecond
	start := time.Now()
	if err := a.hub.Ban(ctx, "dave", d, ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ; ; <-tick.C {
		cl := dial(t, b, "dave")
		f := cl.next()
		if f.Type == "join" {
			if time.Since(start) < d {
				t.Errorf("dave joined %v after a ban of %v", time.Since(start), d)
			}
			break
		}
		if !strings.Contains(f.Error, "is banned") || time.Now().After(deadline) {
			t.Fatalf("dave: %+v after %v", f, time.Since(start))
		}
		closeCode(t, cl, websocket.ClosePolicyViolation)
	}
	alice.expect(joinFrame("dave"))
}

// refusedBanned checks that name is refused at join on in as banned, with
// the ban's end if withEnd.
func refusedBanned(t *testing.T, in *instance, name string, withEnd bool) {
	t.Helper()
	cl := dial(t, in, name)
	f := cl.next()
	want := `username "` + name + `" is banned`
	if withEnd {
		want += " until "
	}
	if f.Type != "error" || !strings.HasPrefix(f.Error, want) {
		t.Errorf("%s joining: %+v, want %q...", name, f, want)
	}
	closeCode(t, cl, websocket.ClosePolicyViolation)
}

// closeCode waits for c's connection to end and checks its close code.
func closeCode(t *testing.T, c *client, code int) {
	t.Helper()
	for range c.frames {
	}
	var ce *websocket.CloseError
	if !errors.As(c.err, &ce) || ce.Code != code {
		t.Errorf("%s: connection ended with %v, want close %d", c.name, c.err, code)
	}
}
