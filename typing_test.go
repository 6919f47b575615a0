package chat_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/hubchat/chat"
)

var typingFrame = map[string]string{"type": "typing"}

func typing(name string) frame { return frame{Type: "typing", Username: name} }

// TestTyping: a member's typing frame reaches every member, as a notice
// with its name; a second one within the member's interval is dropped
// without an error; notices never enter the history.
func TestTyping(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()

	alice.send(typingFrame)
	diff(t, "bob sees alice typing", typing("alice"), bob.next())
	diff(t, "alice gets her own notice", typing("alice"), alice.next())

	// Within the interval: dropped, silently. The message after it is
	// the next frame anyone receives.
	alice.send(typingFrame)
	alice.say("done")
	diff(t, "bob's next frame", msg("alice", "done"), bob.next())
	diff(t, "alice's next frame", msg("alice", "done"), alice.next())

	carol := s.dial(t, "username=carol")
	diff(t, "carol's welcome: no typing in the history",
		[]frame{join("carol"), users("alice", "bob", "carol"), history(msg("alice", "done"))}, carol.nextN(3))
}

// TestTypingFlood: a client that sends thousands of typing frames
// disturbs nobody: the others receive a bounded number of notices, nobody
// is disconnected, the flooder gets no error frame, and, since typing
// frames do not count against the rate limit, a full burst of messages
// right after the flood goes through.
func TestTypingFlood(t *testing.T) {
	t.Parallel()
	const burst = 10
	s := startServer(t, chat.Options{RateLimit: 5, RateBurst: burst})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()

	start := time.Now()
	const flood = 5000
	for range flood {
		alice.send(typingFrame)
	}
	for i := range burst {
		alice.say("m" + strconv.Itoa(i))
	}
	// The reader handles frames in order: once bob has the last message,
	// every typing frame has been handled.
	count := func(c *conn, who string) int {
		notices := 0
		for i := 0; i < burst; {
			switch f := c.next(); f.Type {
			case "typing":
				notices++
			case "message":
				diff(t, who+"'s message", msg("alice", "m"+strconv.Itoa(i)), f)
				i++
			default:
				t.Fatalf("%s received %+v during the flood", who, f)
			}
		}
		return notices
	}
	got := count(bob, "bob")
	count(alice, "alice")
	elapsed := time.Since(start)
	if limit := 1 + int(elapsed/(1500*time.Millisecond)); got < 1 || got > limit {
		t.Errorf("bob received %d typing notices in %v, want 1 to %d (one per 1.5 s)", got, elapsed, limit)
	}
	diff(t, "Users", []string{"alice", "bob"}, s.hub.Users())
}

// TestTypingBounds: typing notices are dropped in a room larger than
// Options.TypingMaxMembers, with typing turned off, from a muted member,
// and before the join, which still needs the join frame first.
func TestTypingBounds(t *testing.T) {
	t.Parallel()
	// quietAfterTyping has from send a typing frame, then a message, and
	// checks that the message is the next frame c receives.
	quietAfterTyping := func(t *testing.T, what string, c, from *conn, fromName string) {
		t.Helper()
		from.send(typingFrame)
		quiet(t, what, c, from, fromName)
	}

	t.Run("room too large", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, chat.Options{TypingMaxMembers: 2})
		alice := s.joinAs(t, "alice")
		bob := s.joinAs(t, "bob")
		alice.next()
		carol := s.joinAs(t, "carol")
		alice.next()
		bob.next()
		quietAfterTyping(t, "three members: dropped", bob, alice, "alice")
		carol.ws.Close()
		diff(t, "carol leaves", leave("carol"), bob.next())
		alice.next()
		alice.send(typingFrame) // the dropped one did not start her interval
		diff(t, "two members: forwarded", typing("alice"), bob.next())
	})

	t.Run("off", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, chat.Options{TypingMaxMembers: -1})
		alice := s.joinAs(t, "alice")
		bob := s.joinAs(t, "bob")
		alice.next()
		quietAfterTyping(t, "typing off", bob, alice, "alice")
	})

	t.Run("muted", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, chat.Options{})
		alice := s.joinAs(t, "alice")
		bob := s.joinAs(t, "bob")
		alice.next()
		if err := s.hub.Mute(t.Context(), "alice", time.Hour); err != nil {
			t.Fatal(err)
		}
		alice.send(typingFrame)
		bob.say("marker")
		diff(t, "bob's stream", msg("bob", "marker"), bob.next())
		diff(t, "alice's stream", msg("bob", "marker"), alice.next())
	})

	t.Run("before joining", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, chat.Options{})
		c := s.dial(t, "")
		c.send(typingFrame)
		if f := c.next(); f.Type != "error" || f.Error != `join first: the first frame must be {"type":"join","username":...}` {
			t.Errorf("typing before the join: %+v", f)
		}
		if code := c.closeCode(); code != 1008 {
			t.Errorf("close code %d, want 1008", code)
		}
	})
}

// TestTypingBudget: when many members type at once, the hub forwards at
// most its budget of notices (20 at once, 20 per second after), and the
// rest are dropped.
func TestTypingBudget(t *testing.T) {
	t.Parallel()
	s := startServer(t, chat.Options{})
	const n = 40
	watcher := s.joinAs(t, "watcher")
	typists := make([]*conn, n)
	for i := range typists {
		typists[i] = s.joinAs(t, "t"+strconv.Itoa(i))
		watcher.next()
	}
	start := time.Now()
	for _, c := range typists {
		c.send(typingFrame)
	}
	// Each typist's frame is handled by its own reader: a message from
	// each after it marks it handled.
	for i, c := range typists {
		c.say("after " + strconv.Itoa(i))
	}
	notices, msgs := 0, 0
	for msgs < n {
		switch f := watcher.next(); f.Type {
		case "typing":
			notices++
		case "message":
			msgs++
		default:
			t.Fatalf("watcher received %+v", f)
		}
	}
	elapsed := time.Since(start)
	if limit := 20 + int(20*elapsed.Seconds()) + 1; notices < 1 || notices > limit {
		t.Errorf("watcher received %d notices of %d typists in %v, want 1 to %d", notices, n, elapsed, limit)
	}
}

// TestTypingBroker: with a Broker whose links carry typing (a
// MemoryBroker), notices reach the members on every hub of the room.
func TestTypingBroker(t *testing.T) {
	t.Parallel()
	b := chat.NewMemoryBroker()
	s1 := startServer(t, chat.Options{Name: "lobby", Broker: b})
	s2 := startServer(t, chat.Options{Name: "lobby", Broker: b})
	alice := s1.joinAs(t, "alice")
	bob := s2.joinAs(t, "bob")
	alice.next()
	alice.send(typingFrame)
	diff(t, "bob on hub 2 sees alice typing", typing("alice"), bob.next())
	diff(t, "alice on hub 1", typing("alice"), alice.next())
}

// TestTypingLocalBroker: with a Broker whose links do not carry typing,
// notices stay on the typist's hub.
func TestTypingLocalBroker(t *testing.T) {
	t.Parallel()
	b := &plainBroker{chat.NewMemoryBroker()}
	s1 := startServer(t, chat.Options{Name: "lobby", Broker: b})
	s2 := startServer(t, chat.Options{Name: "lobby", Broker: b})
	alice := s1.joinAs(t, "alice")
	carol := s1.joinAs(t, "carol")
	alice.next()
	bob := s2.joinAs(t, "bob")
	alice.next()
	carol.next()
	alice.send(typingFrame)
	diff(t, "carol on hub 1 sees alice typing", typing("alice"), carol.next())
	quiet(t, "bob on hub 2 sees no notice", bob, alice, "alice")
}

// plainBroker hides the TypingLink of its links.
type plainBroker struct{ chat.Broker }

type plainLink struct{ chat.Link }

func (b *plainBroker) Open(room string, deliver func(chat.Event)) (chat.Link, error) {
	l, err := b.Broker.Open(room, deliver)
	return plainLink{l}, err
}
