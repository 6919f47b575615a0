package chat_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hubchat/chat"
)

// TestDeliver: a private message from outside the room reaches its
// recipient, with the sender's address and origin, and nobody else: not
// a member whose name is the address either, live, in pages or when
// resuming; the recipient finds it when it resumes.
func TestDeliver(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{Origin: "8082"})
	bob := s.joinAs(t, "bob")
	namesake := s.joinAs(t, "alice@8081")
	bob.next()

	err := s.hub.Deliver(t.Context(), chat.Message{Username: " alice@8081 ", Origin: "8081", To: "BOB", Body: "hi bob",
		System: true, ToOrigin: "ignored", ID: "99"})
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	want := frame{Type: "message", Username: "alice@8081", Origin: "8081", To: "bob", Body: "hi bob"}
	got := bob.next()
	diff(t, "bob's message", want, got)
	quiet(t, "the namesake's stream", namesake, bob, "bob")
	bob.next()

	// Pages and resume: bob has it, the namesake has not.
	diff(t, "bob's page", page("1000", want, msg("bob", "marker")), bob.page("1000", 0))
	diff(t, "the namesake's page", page("1000", msg("bob", "marker")), namesake.page("1000", 0))
	s.gone(t, bob, "bob")
	_, hist := s.rejoin(t, "bob", "0")
	diff(t, "bob resumes", resumed(true, want, msg("bob", "marker")), hist)
}

// TestDeliverBadInput: Deliver refuses what it cannot deliver with a
// clear error, and nobody receives anything.
func TestDeliverBadInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{Origin: "8082"})
	bob := s.joinAs(t, "bob")
	carol := s.joinAs(t, "carol")
	bob.next()
	if err := s.hub.Mute(t.Context(), "mallory@8081", time.Hour); err != nil {
		t.Fatal(err)
	}
	ok := chat.Message{Username: "alice@8081", Origin: "8081", To: "bob", Body: "hi"}
	for _, tc := range []struct {
		name  string
		edit  func(m *chat.Message)
		is    error  // the sentinel, if any
		text  string // in the error
		lines int
	}{
		{name: "empty body", edit: func(m *chat.Message) { m.Body = " " }, is: chat.ErrInvalidBody, text: "empty body"},
		{name: "long body", edit: func(m *chat.Message) { m.Body = strings.Repeat("x", 4097) }, is: chat.ErrInvalidBody, text: "at most 4096"},
		{name: "no sender", edit: func(m *chat.Message) { m.Username = "" }, is: chat.ErrInvalidName, text: "invalid sender address: empty"},
		{name: "long sender", edit: func(m *chat.Message) { m.Username = strings.Repeat("a", 65) }, is: chat.ErrInvalidName, text: "at most 64"},
		{name: "invisible sender", edit: func(m *chat.Message) { m.Username = "al\u200bice@8081" }, is: chat.ErrInvalidName, text: "invisible"},
		{name: "no origin", edit: func(m *chat.Message) { m.Origin = "" }, text: `invalid origin ""`},
		{name: "own origin", edit: func(m *chat.Message) { m.Origin = "8082" }, text: `invalid origin "8082"`},
		{name: "control in origin", edit: func(m *chat.Message) { m.Origin = "80\n81" }, text: "invalid origin"},
		{name: "long origin", edit: func(m *chat.Message) { m.Origin = strings.Repeat("8", 65) }, text: "invalid origin"},
		{name: "unknown recipient", edit: func(m *chat.Message) { m.To = "dave" }, is: chat.ErrNoSuchUser, text: `user "dave" is not here`},
		{name: "invalid recipient", edit: func(m *chat.Message) { m.To = "" }, is: chat.ErrInvalidName, text: "invalid username: empty"},
		{name: "muted sender", edit: func(m *chat.Message) { m.Username = "Mallory@8081" }, is: chat.ErrMuted, text: "muted"},
	} {
		m := ok
		tc.edit(&m)
		err := s.hub.Deliver(t.Context(), m)
		if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: Deliver = %v, want an error with %q (%v)", tc.name, err, tc.text, tc.is)
		}
	}
	quiet(t, "bob's stream", bob, carol, "carol")
	carol.next()
	quiet(t, "carol's stream", carol, bob, "bob")

	s2 := startServer(t, chat.Options{})
	if err := s2.hub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s2.hub.Deliver(t.Context(), ok); !errors.Is(err, chat.ErrHubClosed) {
		t.Errorf("Deliver after Close: %v, want ErrHubClosed", err)
	}
}

// route is an Options.OnMessage that routes private messages to
// "name@8082" to the hub there, as a program running both would.
func route(there *chat.Hub) func(*chat.Hub, chat.Identity, *chat.Message) error {
	return func(_ *chat.Hub, id chat.Identity, m *chat.Message) error {
		name, ok := strings.CutSuffix(m.To, "@8082")
		if !ok {
			return nil
		}
		err := there.Deliver(context.Background(), chat.Message{Username: id.Name + "@8081", Origin: "8081", To: name, Body: m.Body})
		if errors.Is(err, chat.ErrNoSuchUser) {
			return errors.New("no user " + name + " on server 8082")
		}
		if err != nil {
			return err
		}
		m.ToOrigin = "8082"
		return nil
	}
}

// TestRouteOut: OnMessage routes a private message to an address outside
// the room: the recipient there receives it, the sender its copy, and a
// member whose name is the address nothing; an unknown address is an
// error frame and nothing is delivered.
func TestRouteOut(t *testing.T) {
	t.Parallel()
	there := startServer(t, chat.Options{Origin: "8082"})
	s := startServer(t, chat.Options{Origin: "8081", OnMessage: route(there.hub)})
	bob := there.joinAs(t, "bob")
	alice := s.joinAs(t, "alice")
	namesake := s.joinAs(t, "bob@8082")
	alice.next()

	alice.send(map[string]string{"type": "message", "to": "bob@8082", "body": "hi bob"})
	diff(t, "bob's message", frame{Type: "message", Username: "alice@8081", Origin: "8081", To: "bob", Body: "hi bob"}, bob.next())
	echo := frame{Type: "message", Username: "alice", To: "bob@8082", Body: "hi bob"}
	diff(t, "alice's copy", echo, alice.next())
	quiet(t, "the namesake's stream", namesake, alice, "alice")
	alice.next()
	diff(t, "alice's page", page("1000", echo, msg("alice", "marker")), alice.page("1000", 0))
	diff(t, "the namesake's page", page("1000", msg("alice", "marker")), namesake.page("1000", 0))

	alice.send(map[string]string{"type": "message", "to": "carol@8082", "body": "hi carol"})
	diff(t, "unknown user", frame{Type: "error", Error: "no user carol on server 8082"}, alice.next())
	quiet(t, "bob's stream", bob, bob, "bob")
	quiet(t, "the namesake's stream after the error", namesake, alice, "alice")
}

// TestRouteOutInvalid: a routed message whose address or origin OnMessage
// left invalid gets an error frame and is not published.
func TestRouteOutInvalid(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{OnMessage: func(_ *chat.Hub, _ chat.Identity, m *chat.Message) error {
		switch m.Body {
		case "no address":
			m.To = ""
		case "bad origin":
			m.To = "x@y"
			m.ToOrigin = "\x00"
			return nil
		}
		m.ToOrigin = "elsewhere"
		return nil
	}})
	alice := s.joinAs(t, "alice")
	alice.say("no address")
	if f := alice.next(); f.Type != "error" || !strings.Contains(f.Error, "invalid recipient address: empty") {
		t.Errorf("no address: %+v", f)
	}
	alice.send(map[string]string{"type": "message", "to": "x", "body": "bad origin"})
	if f := alice.next(); f.Type != "error" || !strings.Contains(f.Error, "invalid origin") {
		t.Errorf("bad origin: %+v", f)
	}
}

// TestOriginBroker: in a room whose hubs share a Broker, messages carry
// the Origin of their sender's hub to the others, which send it to their
// clients; the sender's own hub leaves it out. A message routed out of
// the room reaches its sender alone, whatever hub other members are on,
// and one delivered from outside reaches its recipient on another hub.
func TestOriginBroker(t *testing.T) {
	t.Parallel()
	b := chat.NewMemoryBroker()
	elsewhere := startServer(t, chat.Options{Origin: "8082"})
	s1 := startServer(t, chat.Options{Name: "bridge", Broker: b, Origin: "8081", OnMessage: route(elsewhere.hub)})
	s2 := startServer(t, chat.Options{Name: "bridge", Broker: b, Origin: "8083"})
	alice := s1.joinAs(t, "alice")
	bob := s2.joinAs(t, "bob")
	alice.next()
	namesake := s2.joinAs(t, "carol@8082")
	alice.next()
	bob.next()
	carol := elsewhere.joinAs(t, "carol")

	bob.say("hi")
	diff(t, "alice sees bob's hub", frame{Type: "message", Username: "bob", Origin: "8083", Body: "hi"}, alice.next())
	diff(t, "bob's own", msg("bob", "hi"), bob.next())
	namesake.next()
	bob.send(map[string]string{"type": "message", "to": "alice", "body": "psst"})
	diff(t, "alice's private", frame{Type: "message", Username: "bob", Origin: "8083", To: "alice", Body: "psst"}, alice.next())
	diff(t, "bob's echo", private("bob", "alice", "psst"), bob.next())

	alice.send(map[string]string{"type": "message", "to": "carol@8082", "body": "out"})
	diff(t, "carol elsewhere", frame{Type: "message", Username: "alice@8081", Origin: "8081", To: "carol", Body: "out"}, carol.next())
	diff(t, "alice's copy", private("alice", "carol@8082", "out"), alice.next())
	quiet(t, "the namesake on hub 2", namesake, bob, "bob")
	alice.next()
	bob.next()

	if err := s1.hub.Deliver(t.Context(), chat.Message{Username: "carol@8082", Origin: "8082", To: "bob", Body: "in"}); err != nil {
		t.Fatal(err)
	}
	diff(t, "bob on hub 2", frame{Type: "message", Username: "carol@8082", Origin: "8082", To: "bob", Body: "in"}, bob.next())
	quiet(t, "the namesake", namesake, bob, "bob")
}

// TestOriginInvalid: NewHub panics on an Options.Origin it could not send.
func TestOriginInvalid(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "invalid Options.Origin") {
			t.Errorf("recover() = %v", r)
		}
	}()
	h := chat.NewHub(chat.Options{Origin: "a\nb"})
	h.Close()
}

// TestCheckName: Options.CheckName refuses names as invalid ones are,
// from the query and from the join frame; others join.
func TestCheckName(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{CheckName: func(name string) error {
		if strings.Contains(name, "@") {
			return errors.New("chat: names with @ address users elsewhere")
		}
		return nil
	}})
	text, code := s.dial(t, "username=bob%408082").refused()
	if text != "names with @ address users elsewhere" || code != 1008 {
		t.Errorf("?username=bob@8082: %q, %d", text, code)
	}
	c := s.dial(t, "")
	c.send(map[string]string{"type": "join", "username": "x@y"})
	if text, code := c.refused(); text != "names with @ address users elsewhere" || code != 1008 {
		t.Errorf("join frame x@y: %q, %d", text, code)
	}
	s.joinAs(t, "bob")
	diff(t, "Users", []string{"bob"}, s.hub.Users())
}
