package chat_test

import (
	"sync"
	"testing"

	"github.com/hubchat/chat"
)

// TestBrokerSeam: two hubs sharing a Broker behave as one room.
func TestBrokerSeam(t *testing.T) {
	t.Parallel()
	b := chat.NewMemoryBroker()
	s1 := startServer(t, chat.Options{Name: "lobby", Broker: b})
	s2 := startServer(t, chat.Options{Name: "lobby", Broker: b})

	alice := s1.joinAs(t, "alice")
	bob := s2.dial(t, "username=bob")
	diff(t, "bob's welcome from hub 2", []frame{join("bob"), users("alice", "bob"), history()}, bob.nextN(3))
	diff(t, "alice sees bob join on hub 2", join("bob"), alice.next())

	// A name taken on one hub is taken on the other, case-insensitively.
	dup := s2.dial(t, "username=ALICE")
	if f := dup.next(); f.Type != "error" || f.Error != `username "ALICE" is taken` {
		t.Errorf("duplicate across hubs: %+v", f)
	}

	var fromAlice, fromBob []string
	for _, c := range []*conn{alice, bob} {
		c.say("hi from " + map[*conn]string{alice: "1", bob: "2"}[c])
		fa, fb := alice.next(), bob.next()
		fromAlice = append(fromAlice, fa.ID+":"+fa.Body)
		fromBob = append(fromBob, fb.ID+":"+fb.Body)
	}
	diff(t, "same messages, same ids", fromAlice, fromBob)

	bob.send(map[string]string{"type": "message", "body": "psst", "to": "alice"})
	want := frame{Type: "message", Username: "bob", Body: "psst", To: "alice"}
	diff(t, "private across hubs", want, alice.next())
	diff(t, "private echo", want, bob.next())

	carol := s1.dial(t, "username=carol")
	welcome := carol.nextN(3)
	diff(t, "carol's welcome has the room's history",
		[]frame{join("carol"), users("alice", "bob", "carol"), history(msg("alice", "hi from 1"), msg("bob", "hi from 2"))},
		[]frame{welcome[0], welcome[1], welcome[2]})
	alice.next()
	bob.next()

	// Hub 2 goes away: its members leave everyone else's view.
	if err := s2.hub.Close(); err != nil {
		t.Fatal(err)
	}
	diff(t, "alice sees bob leave", leave("bob"), alice.next())
	diff(t, "Users on hub 1", []string{"alice", "carol"}, s1.hub.Users())
}

// syncBroker is a Broker whose test can deliver events of its own to
// every hub, as a broker does after a reconnect.
type syncBroker struct {
	chat.Broker
	mu       sync.Mutex
	delivers []func(chat.Event)
}

func (b *syncBroker) Open(room string, deliver func(chat.Event)) (chat.Link, error) {
	b.mu.Lock()
	b.delivers = append(b.delivers, deliver)
	b.mu.Unlock()
	return b.Broker.Open(room, deliver)
}

// inject delivers ev to every hub; the test calls it while the room is
// quiet, so that it is the one delivery under way.
func (b *syncBroker) inject(ev chat.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.delivers {
		d(ev)
	}
}

// TestBrokerSync: a resync that drops a local member closes it with 1013
// and announces the difference.
func TestBrokerSync(t *testing.T) {
	t.Parallel()
	b := &syncBroker{Broker: chat.NewMemoryBroker()}
	s := startServer(t, chat.Options{Broker: b})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()

	b.inject(chat.Event{Kind: chat.EventSync, Sync: &chat.Snapshot{Users: []string{"alice", "zed"}}})

	diff(t, "alice's view", []frame{leave("bob"), join("zed")}, alice.nextN(2))
	if code := bob.closeCode(); code != 1013 {
		t.Errorf("bob's close code = %d, want 1013", code)
	}
	diff(t, "Users", []string{"alice", "zed"}, s.hub.Users())
}
