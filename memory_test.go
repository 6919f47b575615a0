package chat_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hubchat/chat"
)

// recorder records the events a Link delivers.
type recorder struct {
	mu     sync.Mutex
	events []chat.Event
}

func (r *recorder) deliver(ev chat.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// take returns the events delivered since the last take.
func (r *recorder) take() []chat.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	return evs
}

func open(t *testing.T, b chat.Broker, room string) (chat.Link, *recorder) {
	t.Helper()
	r := &recorder{}
	l, err := b.Open(room, r.deliver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, r
}

var ignoreTimes = cmpopts.IgnoreFields(chat.Message{}, "Time")

func diffEvents(t *testing.T, what string, want, got []chat.Event) {
	t.Helper()
	byAction := cmpopts.SortSlices(func(a, b chat.Moderation) bool { return a.Action < b.Action })
	if d := cmp.Diff(want, got, ignoreTimes, cmpopts.EquateEmpty(), byAction); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

// TestMemoryBroker: the MemoryBroker does what a Broker must, link by
// link: one order for every link of a room, names claimed once under
// case folding, ids, history, moderation, typing, and Close.
func TestMemoryBroker(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := chat.NewMemoryBroker()
	l1, r1 := open(t, b, "lobby")
	diffEvents(t, "first sync", []chat.Event{{Kind: chat.EventSync, Sync: &chat.Snapshot{}}}, r1.take())
	l2, r2 := open(t, b, "lobby")
	r2.take()
	other, rOther := open(t, b, "other")
	rOther.take()

	alice := chat.Profile{Display: "Alice"}
	if err := l1.Join(ctx, "alice", alice); err != nil {
		t.Fatal(err)
	}
	if err := l2.Join(ctx, "ALICE", chat.Profile{}); !errors.Is(err, chat.ErrNameTaken) {
		t.Errorf("Join of a taken name: %v", err)
	}
	if err := other.Join(ctx, "alice", chat.Profile{}); err != nil {
		t.Errorf("Join in another room: %v", err)
	}
	if err := l2.Join(ctx, "bob", chat.Profile{}); err != nil {
		t.Fatal(err)
	}
	if err := l2.Publish(ctx, chat.Message{Username: "bob", Body: "hi"}); err != nil {
		t.Fatal(err)
	}
	if err := l1.Publish(ctx, chat.Message{Username: "alice", Body: "psst", To: "bob", Origin: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := l1.Publish(ctx, chat.Message{Username: "alice", Body: "?", To: "carol"}); !errors.Is(err, chat.ErrNoSuchUser) {
		t.Errorf("Publish to nobody: %v", err)
	}
	if err := l1.Publish(ctx, chat.Message{Username: "alice", Body: "out", To: "carol@far", ToOrigin: "far"}); err != nil {
		t.Errorf("Publish out of the room: %v", err)
	}
	if err := l1.Publish(ctx, chat.Message{Username: "zed", Body: "out", To: "carol@far", ToOrigin: "far"}); !errors.Is(err, chat.ErrNoSuchUser) {
		t.Errorf("Publish out of the room by no member: %v", err)
	}
	if err := l1.(chat.TypingLink).Typing(ctx, "bob"); !errors.Is(err, chat.ErrNoSuchUser) {
		t.Errorf("Typing of a name another link holds: %v", err)
	}
	if err := l1.(chat.TypingLink).Typing(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	want := []chat.Event{
		{Kind: chat.EventJoin, Username: "alice", Profile: alice},
		{Kind: chat.EventJoin, Username: "bob"},
		{Kind: chat.EventMessage, Message: chat.Message{ID: "1", Username: "bob", Body: "hi"}},
		{Kind: chat.EventMessage, Message: chat.Message{ID: "2", Username: "alice", Body: "psst", To: "bob", Origin: "x"}},
		{Kind: chat.EventMessage, Message: chat.Message{ID: "3", Username: "alice", Body: "out", To: "carol@far", ToOrigin: "far"}},
		{Kind: chat.EventTyping, Username: "alice"},
	}
	diffEvents(t, "link 1's events", want, r1.take())
	diffEvents(t, "link 2's events", want, r2.take())
	diffEvents(t, "the other room's", []chat.Event{{Kind: chat.EventJoin, Username: "alice"}}, rOther.take())

	// Moderation.
	until := time.Now().Add(time.Hour)
	for _, mod := range []chat.Moderation{
		{Action: chat.ModBan, Username: "Carol", Reason: "spam", Until: until},
		{Action: chat.ModMute, Username: "bob", Until: until},
		{Action: chat.ModMute, Username: "dave", Until: time.Now().Add(-time.Second)}, // lapsed
	} {
		if err := l1.Moderate(ctx, mod); err != nil {
			t.Fatal(err)
		}
	}
	if err := l2.Join(ctx, "carol", chat.Profile{}); !errors.Is(err, chat.ErrBanned) {
		t.Errorf("Join of a banned name: %v", err)
	}
	if err := l2.Publish(ctx, chat.Message{Username: "BOB", Body: "x"}); !errors.Is(err, chat.ErrMuted) {
		t.Errorf("Publish of a muted name: %v", err)
	}
	if err := l2.Publish(ctx, chat.Message{Username: "bob", Body: "x", System: true}); err != nil {
		t.Errorf("system Publish for a muted name: %v", err)
	}
	if err := l2.Moderate(ctx, chat.Moderation{Action: chat.ModKick, Username: "carol"}); !errors.Is(err, chat.ErrNoSuchUser) {
		t.Errorf("Kick of nobody: %v", err)
	}
	if err := l2.Moderate(ctx, chat.Moderation{Action: chat.ModKick, Username: "alice", Reason: "bye"}); err != nil {
		t.Errorf("Kick: %v", err)
	}
	r1.take()
	r2.take()

	// A link that opens now gets the state: members, profiles, history,
	// restrictions in force.
	_, r3 := open(t, b, "lobby")
	got := r3.take()
	if len(got) != 1 || got[0].Kind != chat.EventSync {
		t.Fatalf("third link's first events: %+v", got)
	}
	snap := got[0].Sync
	diffEvents(t, "third link's sync", []chat.Event{{Kind: chat.EventSync, Sync: &chat.Snapshot{
		Users:    []string{"alice", "bob"},
		Profiles: map[string]chat.Profile{"alice": alice},
		History:  []chat.Message{{ID: "1", Username: "bob", Body: "hi"}, {ID: "4", Username: "bob", Body: "x", System: true}},
		Restrictions: []chat.Moderation{
			{Action: chat.ModBan, Username: "Carol", Reason: "spam", Until: until},
			{Action: chat.ModMute, Username: "bob", Until: until},
		},
	}}}, []chat.Event{{Kind: chat.EventSync, Sync: snap}})
	if err := l1.Moderate(ctx, chat.Moderation{Action: chat.ModUnmute, Username: "bob"}); err != nil {
		t.Fatal(err)
	}
	if err := l2.Publish(ctx, chat.Message{Username: "bob", Body: "free"}); err != nil {
		t.Errorf("Publish after Unmute: %v", err)
	}
	r1.take()
	r2.take()

	// Close releases the link's names; its methods fail afterwards.
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	diffEvents(t, "link 1 sees bob leave", []chat.Event{{Kind: chat.EventLeave, Username: "bob"}}, r1.take())
	r2.take()
	if err := l2.Join(ctx, "erin", chat.Profile{}); err == nil {
		t.Error("Join after Close succeeded")
	}
	if err := l2.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if evs := r2.take(); len(evs) != 0 {
		t.Errorf("delivered after Close: %+v", evs)
	}
	if err := l1.Join(ctx, "bob", chat.Profile{}); err != nil {
		t.Errorf("Join of a released name: %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := l1.Leave(canceled, "bob"); !errors.Is(err, context.Canceled) {
		t.Errorf("Leave with a cancelled context: %v", err)
	}
}

// TestMemoryBrokerHistory: a room keeps its last 1000 public messages.
func TestMemoryBrokerHistory(t *testing.T) {
	t.Parallel()
	b := chat.NewMemoryBroker()
	l, _ := open(t, b, "r")
	for i := range 1005 {
		if err := l.Publish(t.Context(), chat.Message{Username: "system", Body: strconv.Itoa(i), System: true}); err != nil {
			t.Fatal(err)
		}
	}
	_, r := open(t, b, "r")
	hist := r.take()[0].Sync.History
	if len(hist) != 1000 || hist[0].Body != "5" || hist[999].ID != "1005" {
		t.Errorf("history of %d messages, from %+v to %+v", len(hist), hist[0], hist[len(hist)-1])
	}
}
