package chat

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
)

// A MemoryBroker is a [Broker] for hubs of one process: hubs with the same
// Options.Name and the same MemoryBroker form one room, as hubs sharing a
// Redis broker do across processes. It lets one program serve a room on
// several servers (ports, paths, listeners with their own options), and
// tests run hubs against a real broker without Redis.
//
// It keeps each room's members, the bans and mutes in force, and the last
// 1000 public messages (Snapshot.History), in memory, for as long as the
// MemoryBroker lives, also while no hub has the room open. Events are
// delivered synchronously, in the room's order: when a [Link] method
// returns, every hub of the room has received its event. Its links are
// [TypingLink]s: typing notices reach every hub of the room.
//
// Use [NewMemoryBroker]; the zero MemoryBroker is not usable. A
// MemoryBroker is safe for concurrent use.
type MemoryBroker struct {
	mu    sync.Mutex
	rooms map[string]*memRoom
}

// memoryHistory is how many public messages a MemoryBroker keeps per room.
const memoryHistory = 1000

// errLinkClosed is returned by the methods of a closed memLink.
var errLinkClosed = errors.New("chat: broker link closed")

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns a MemoryBroker with no rooms.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{rooms: make(map[string]*memRoom)}
}

// A memRoom is one room of a MemoryBroker. Its lock is held while an event
// is delivered, which gives every hub the same order.
type memRoom struct {
	mu      sync.Mutex
	seq     uint64
	links   []*memLink          // open, in the order they opened
	owner   map[string]*memLink // by name key: the link that claimed it
	users   []string            // members in join order
	profs   map[string]Profile  // by name, as in users
	history []Message           // the last public messages, oldest first
	restr   map[string]Moderation
}

// restrKey is the key of a ban or mute of name key in memRoom.restr.
func restrKey(act ModAction, key string) string {
	if act == ModBan || act == ModUnban {
		return "b" + key
	}
	return "m" + key
}

// A memLink is one hub's link to a memRoom.
type memLink struct {
	r       *memRoom
	deliver func(Event)
	closed  bool // guarded by r.mu
}

var _ TypingLink = (*memLink)(nil)

// Open implements [Broker]: it delivers the room's state as an EventSync
// before it returns.
func (b *MemoryBroker) Open(room string, deliver func(Event)) (Link, error) {
	b.mu.Lock()
	r := b.rooms[room]
	if r == nil {
		r = &memRoom{owner: make(map[string]*memLink), profs: make(map[string]Profile), restr: make(map[string]Moderation)}
		b.rooms[room] = r
	}
	b.mu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	l := &memLink{r: r, deliver: deliver}
	r.links = append(r.links, l)
	var restr []Moderation
	now := time.Now()
	for k, mod := range r.restr {
		if now.Before(mod.Until) {
			restr = append(restr, mod)
		} else {
			delete(r.restr, k)
		}
	}
	deliver(Event{Kind: EventSync, Sync: &Snapshot{
		Users:        slices.Clone(r.users),
		Profiles:     maps.Clone(r.profs),
		History:      slices.Clone(r.history),
		Restrictions: restr,
	}})
	return l, nil
}

// emitLocked delivers ev to every open link of the room.
func (r *memRoom) emitLocked(ev Event) {
	for _, l := range r.links {
		l.deliver(ev)
	}
}

// inForceLocked reports whether a ban (ModBan) or mute (ModMute) of the
// name with key is in force.
func (r *memRoom) inForceLocked(act ModAction, key string) bool {
	mod, ok := r.restr[restrKey(act, key)]
	return ok && time.Now().Before(mod.Until)
}

// lock locks the room of an open link, or fails.
func (l *memLink) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.r.mu.Lock()
	if l.closed {
		l.r.mu.Unlock()
		return errLinkClosed
	}
	return nil
}

// Join implements [Link].
func (l *memLink) Join(ctx context.Context, username string, p Profile) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	r := l.r
	defer r.mu.Unlock()
	key := nameKey(username)
	switch {
	case r.owner[key] != nil:
		return fmt.Errorf("%w: %s", ErrNameTaken, quote(username))
	case r.inForceLocked(ModBan, key):
		return fmt.Errorf("%w: %s", ErrBanned, quote(username))
	}
	r.owner[key] = l
	r.users = append(r.users, username)
	if p != (Profile{}) {
		r.profs[username] = p
	}
	r.emitLocked(Event{Kind: EventJoin, Username: username, Profile: p})
	return nil
}

// Leave implements [Link].
func (l *memLink) Leave(ctx context.Context, username string) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.r.mu.Unlock()
	l.leaveLocked(nameKey(username))
	return nil
}

// leaveLocked releases the name with key, if this link holds it.
func (l *memLink) leaveLocked(key string) {
	r := l.r
	if r.owner[key] != l {
		return
	}
	delete(r.owner, key)
	i := slices.IndexFunc(r.users, func(u string) bool { return nameKey(u) == key })
	name := r.users[i]
	r.users = slices.Delete(r.users, i, i+1)
	delete(r.profs, name)
	r.emitLocked(Event{Kind: EventLeave, Username: name})
}

// Publish implements [Link].
func (l *memLink) Publish(ctx context.Context, m Message) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	r := l.r
	defer r.mu.Unlock()
	from := nameKey(m.Username)
	switch {
	case !m.System && r.inForceLocked(ModMute, from):
		return fmt.Errorf("%w: %s", ErrMuted, quote(m.Username))
	case m.ToOrigin != "" && r.owner[from] == nil:
		return fmt.Errorf("%w: %s", ErrNoSuchUser, quote(m.Username))
	case m.To != "" && m.ToOrigin == "" && r.owner[nameKey(m.To)] == nil:
		return fmt.Errorf("%w: %s", ErrNoSuchUser, quote(m.To))
	}
	r.seq++
	m.ID, m.Time = strconv.FormatUint(r.seq, 10), time.Now()
	if m.To == "" {
		if len(r.history) == memoryHistory {
			r.history = slices.Delete(r.history, 0, 1)
		}
		r.history = append(r.history, m)
	}
	r.emitLocked(Event{Kind: EventMessage, Message: m})
	return nil
}

// Moderate implements [Link].
func (l *memLink) Moderate(ctx context.Context, mod Moderation) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	r := l.r
	defer r.mu.Unlock()
	key := nameKey(mod.Username)
	switch mod.Action {
	case ModKick:
		if r.owner[key] == nil {
			return fmt.Errorf("%w: %s", ErrNoSuchUser, quote(mod.Username))
		}
	case ModBan, ModMute:
		r.restr[restrKey(mod.Action, key)] = mod
	case ModUnban, ModUnmute:
		delete(r.restr, restrKey(mod.Action, key))
	default:
		return fmt.Errorf("chat: unknown moderation action %d", mod.Action)
	}
	r.emitLocked(Event{Kind: EventModeration, Moderation: mod})
	return nil
}

// Typing implements [TypingLink]. It fails with an error wrapping
// ErrNoSuchUser if this link does not hold username.
func (l *memLink) Typing(ctx context.Context, username string) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	r := l.r
	defer r.mu.Unlock()
	if r.owner[nameKey(username)] != l {
		return fmt.Errorf("%w: %s", ErrNoSuchUser, quote(username))
	}
	r.emitLocked(Event{Kind: EventTyping, Username: username})
	return nil
}

// Close implements [Link]. It may be called more than once.
func (l *memLink) Close() error {
	r := l.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if l.closed {
		return nil
	}
	for _, u := range slices.Clone(r.users) {
		l.leaveLocked(nameKey(u)) // if it holds it
	}
	l.closed = true
	r.links = slices.DeleteFunc(r.links, func(x *memLink) bool { return x == l })
	return nil
}
