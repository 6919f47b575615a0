package chat_test

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hubchat/chat"
)

// memBroker is an in-memory Broker: the reference for what an adapter must
// do, and a way to test the hub's side of the seam without Redis. It
// delivers synchronously under its lock, which gives every hub one order.
type memBroker struct {
	mu      sync.Mutex
	seq     uint64
	subs    map[*memLink]bool
	owner   map[string]*memLink // name key → the link that claimed it
	users   []string
	profs   map[string]chat.Profile // by name
	history []chat.Message
	restr   map[string]chat.Moderation // bans and mutes by "b"/"m" + name key
}

type memLink struct {
	b       *memBroker
	deliver func(chat.Event)
}

func newMemBroker() *memBroker {
	return &memBroker{subs: map[*memLink]bool{}, owner: map[string]*memLink{}, profs: map[string]chat.Profile{},
		restr: map[string]chat.Moderation{}}
}

func (b *memBroker) Open(room string, deliver func(chat.Event)) (chat.Link, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := &memLink{b: b, deliver: deliver}
	b.subs[l] = true
	var restr []chat.Moderation
	for _, r := range b.restr {
		restr = append(restr, r)
	}
	deliver(chat.Event{Kind: chat.EventSync, Sync: &chat.Snapshot{
		Users: append([]string(nil), b.users...), Profiles: maps.Clone(b.profs),
		History: append([]chat.Message(nil), b.history...), Restrictions: restr,
	}})
	return l, nil
}

func (b *memBroker) publishLocked(ev chat.Event) {
	for l := range b.subs {
		l.deliver(ev)
	}
}

func (l *memLink) Join(_ context.Context, name string, p chat.Profile) error {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	key := chat.NameKey(name)
	if b.owner[key] != nil {
		return chat.ErrNameTaken
	}
	if b.inForce("b", key) {
		return chat.ErrBanned
	}
	b.owner[key] = l
	b.users = append(b.users, name)
	if p != (chat.Profile{}) {
		b.profs[name] = p
	}
	b.publishLocked(chat.Event{Kind: chat.EventJoin, Username: name, Profile: p})
	return nil
}

func (l *memLink) Leave(_ context.Context, name string) error {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	l.leaveLocked(name)
	return nil
}

func (l *memLink) leaveLocked(name string) {
	b := l.b
	key := chat.NameKey(name)
	if b.owner[key] != l {
		return
	}
	delete(b.owner, key)
	for i, u := range b.users {
		if chat.NameKey(u) == key {
			b.users = append(b.users[:i], b.users[i+1:]...)
			delete(b.profs, u)
			break
		}
	}
	b.publishLocked(chat.Event{Kind: chat.EventLeave, Username: name})
}

func (l *memLink) Publish(_ context.Context, m chat.Message) error {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !m.System && b.inForce("m", chat.NameKey(m.Username)) {
		return chat.ErrMuted
	}
	if m.To != "" && b.owner[chat.NameKey(m.To)] == nil {
		return chat.ErrNoSuchUser
	}
	b.seq++
	m.ID, m.Time = strconv.FormatUint(b.seq, 10), time.Now()
	if m.To == "" {
		b.history = append(b.history, m)
	}
	b.publishLocked(chat.Event{Kind: chat.EventMessage, Message: m})
	return nil
}

func (l *memLink) Moderate(_ context.Context, mod chat.Moderation) error {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	key := chat.NameKey(mod.Username)
	switch mod.Action {
	case chat.ModKick:
		if b.owner[key] == nil {
			return chat.ErrNoSuchUser
		}
	case chat.ModBan:
		b.restr["b"+key] = mod
	case chat.ModUnban:
		delete(b.restr, "b"+key)
	case chat.ModMute:
		b.restr["m"+key] = mod
	case chat.ModUnmute:
		delete(b.restr, "m"+key)
	}
	b.publishLocked(chat.Event{Kind: chat.EventModeration, Moderation: mod})
	return nil
}

// inForce reports whether a ban ("b") or mute ("m") of key is in force.
func (b *memBroker) inForce(kind, key string) bool {
	r, ok := b.restr[kind+key]
	return ok && time.Now().Before(r.Until)
}

func (l *memLink) Close() error {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range append([]string(nil), b.users...) {
		l.leaveLocked(u)
	}
	delete(b.subs, l)
	return nil
}

// TestBrokerSeam: two hubs sharing a Broker behave as one room.
func TestBrokerSeam(t *testing.T) {
	t.Parallel()
	b := newMemBroker()
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

// TestBrokerSync: a resync that drops a local member closes it with 1013
// and announces the difference.
func TestBrokerSync(t *testing.T) {
	t.Parallel()
	b := newMemBroker()
	s := startServer(t, chat.Options{Broker: b})
	alice := s.joinAs(t, "alice")
	bob := s.joinAs(t, "bob")
	alice.next()

	b.mu.Lock()
	b.users = []string{"alice", "zed"}
	delete(b.owner, chat.NameKey("bob"))
	for l := range b.subs {
		l.deliver(chat.Event{Kind: chat.EventSync, Sync: &chat.Snapshot{Users: []string{"alice", "zed"}}})
	}
	b.mu.Unlock()

	diff(t, "alice's view", []frame{leave("bob"), join("zed")}, alice.nextN(2))
	if code := bob.closeCode(); code != 1013 {
		t.Errorf("bob's close code = %d, want 1013", code)
	}
	diff(t, "Users", []string{"alice", "zed"}, s.hub.Users())
}
