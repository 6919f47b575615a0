package redisbroker

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hubchat/chat"
	"github.com/redis/go-redis/v9"
)

// closeTimeout bounds the script that releases a closing link's members.
const closeTimeout = 3 * time.Second

var _ chat.TypingLink = (*link)(nil)

// A link is one hub's handle on a room: an instance of the room in Redis'
// eyes, with its own id, heartbeat and members. It runs two goroutines:
// receive, which owns the subscription, delivers events and resyncs, and
// keep, which refreshes the heartbeat, sweeps dead instances and asks
// receive to resync when the link's members may be wrong.
type link struct {
	b       *Broker
	opts    Options
	log     *slog.Logger
	inst    string   // instance id, random
	base    string   // key prefix of the room
	channel string   // pub/sub channel of the room
	keys    []string // KEYS of every script: the seq key
	deliver func(chat.Event)

	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// claims is held for reading by Join and Leave and for writing by
	// claimAndLoad and Close, so that they see no call half done.
	claims  sync.RWMutex
	mu      sync.Mutex
	members map[string]member // by name key: the names this link holds
	joins   uint64            // counts joins, to order members
	psMu    sync.Mutex
	ps      *redis.PubSub // current subscription, closed by Close

	ready  atomic.Bool   // whether the state was loaded since the last reconnect
	dirty  atomic.Bool   // whether Redis may disagree with members
	resync atomic.Bool   // whether receive must reclaim and sync
	kick   chan struct{} // wakes keep early
	seen   atomic.Int64  // highest sequence number seen
	epoch  string        // of the room's data at the last sync; used by receive only
}

type member struct {
	name string
	prof string // public profile as JSON, or ""
	n    uint64 // join order on this link
}

func newLink(b *Broker, room string, deliver func(chat.Event)) *link {
	id := make([]byte, 8)
	crand.Read(id)
	base := b.opts.Prefix + "{" + room + "}:"
	l := &link{
		b:       b,
		opts:    b.opts,
		inst:    fmt.Sprintf("%x", id),
		base:    base,
		channel: base + "events",
		keys:    []string{base + "seq"},
		deliver: deliver,
		members: make(map[string]member),
		kick:    make(chan struct{}, 1),
	}
	l.log = b.opts.Logger.With("room", room, "instance", l.inst)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

func (l *link) start() {
	l.wg.Add(2)
	go l.receive()
	go l.keep()
}

// Join implements [chat.Link].
func (l *link) Join(ctx context.Context, username string, p chat.Profile) error {
	l.claims.RLock()
	defer l.claims.RUnlock()
	if err := l.usable(); err != nil {
		return err
	}
	key := chat.NameKey(username)
	prof := encodeProfile(p)
	ok, err := joinScript.Run(ctx, l.b.rdb, l.keys, l.base, l.channel, l.inst, l.ttl(), key, username, prof).Int()
	if err != nil {
		// The name may or may not be claimed. members does not hold it,
		// and the sync that keep requests makes Redis agree.
		l.markDirty()
		return fmt.Errorf("redisbroker: join %q: %w", username, err)
	}
	switch ok {
	case 0:
		return fmt.Errorf("%w: %q", chat.ErrNameTaken, username)
	case -1:
		return fmt.Errorf("%w: %q", chat.ErrBanned, username)
	}
	l.mu.Lock()
	l.joins++
	l.members[key] = member{name: username, prof: prof, n: l.joins}
	l.mu.Unlock()
	return nil
}

// Leave implements [chat.Link].
func (l *link) Leave(ctx context.Context, username string) error {
	l.claims.RLock()
	defer l.claims.RUnlock()
	if l.ctx.Err() != nil {
		return ErrClosed
	}
	key := chat.NameKey(username)
	l.mu.Lock()
	delete(l.members, key)
	l.mu.Unlock()
	if err := leaveScript.Run(ctx, l.b.rdb, l.keys, l.base, l.channel, l.inst, key).Err(); err != nil {
		l.markDirty()
		return fmt.Errorf("redisbroker: leave %q: %w", username, err)
	}
	return nil
}

// Publish implements [chat.Link]. A private message to a name no member of
// the room holds fails with an error wrapping chat.ErrNoSuchUser (for one
// to outside the room, m.ToOrigin set, if its sender is no member), and a
// message from a muted name (unless it is a system message) with one
// wrapping chat.ErrMuted.
func (l *link) Publish(ctx context.Context, m chat.Message) error {
	if err := l.usable(); err != nil {
		return err
	}
	w := wireMessage{User: m.Username, Body: m.Body, To: m.To, System: m.System, Origin: m.Origin, ToOrigin: m.ToOrigin}
	if f := m.File; f != nil {
		w.File = &wireFile{ID: f.ID, Name: f.Name, Size: f.Size, Type: f.Type}
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return err
	}
	to, from := "", ""
	switch {
	case m.ToOrigin != "":
		// To outside the room: the member it concerns is its sender,
		// whom the script checks in the recipient's place.
		to = chat.NameKey(m.Username)
	case m.To != "":
		to = chat.NameKey(m.To)
	}
	if !m.System {
		from = chat.NameKey(m.Username)
	}
	ok, err := publishScript.Run(ctx, l.b.rdb, l.keys, l.base, l.channel, l.opts.HistorySize, to, payload, from).Int()
	if err != nil {
		return fmt.Errorf("redisbroker: publish: %w", err)
	}
	switch ok {
	case 0:
		return fmt.Errorf("%w: %q", chat.ErrNoSuchUser, m.To)
	case -1:
		return fmt.Errorf("%w: %q", chat.ErrMuted, m.Username)
	}
	return nil
}

// Typing implements [chat.TypingLink]: a typing notice is published on the
// room's channel without a sequence number, and neither logged nor
// stored, so an instance that is catching up or reconnecting misses it.
// It fails with an error wrapping chat.ErrNoSuchUser if this link does not
// hold username.
func (l *link) Typing(ctx context.Context, username string) error {
	if err := l.usable(); err != nil {
		return err
	}
	if !l.holds(chat.NameKey(username)) {
		return fmt.Errorf("%w: %q", chat.ErrNoSuchUser, username)
	}
	payload, err := json.Marshal(struct {
		Kind string `json:"k"`
		User string `json:"u"`
	}{"t", username})
	if err != nil {
		return err
	}
	if err := l.b.rdb.Publish(ctx, l.channel, payload).Err(); err != nil {
		return fmt.Errorf("redisbroker: typing: %w", err)
	}
	return nil
}

// modActions are the names of the moderation actions in events.
var modActions = map[chat.ModAction]string{
	chat.ModKick:   "kick",
	chat.ModBan:    "ban",
	chat.ModUnban:  "unban",
	chat.ModMute:   "mute",
	chat.ModUnmute: "unmute",
}

// Moderate implements [chat.Link]. A ban or mute is a Redis key that
// expires at mod.Until (by the clock of the calling process), so that it
// ends even if no hub is running then. A kick of a name no member of the
// room holds fails with an error wrapping chat.ErrNoSuchUser.
func (l *link) Moderate(ctx context.Context, mod chat.Moderation) error {
	if err := l.usable(); err != nil {
		return err
	}
	act, ok := modActions[mod.Action]
	if !ok {
		return fmt.Errorf("redisbroker: unknown moderation action %d", mod.Action)
	}
	var ttl, until int64
	if mod.Action == chat.ModBan || mod.Action == chat.ModMute {
		ttl = max(1, time.Until(mod.Until).Milliseconds())
		until = mod.Until.UnixMilli()
	}
	done, err := moderateScript.Run(ctx, l.b.rdb, l.keys, l.base, l.channel,
		act, chat.NameKey(mod.Username), mod.Username, mod.Reason, ttl, until).Int()
	if err != nil {
		return fmt.Errorf("redisbroker: %s %q: %w", act, mod.Username, err)
	}
	if done == 0 {
		return fmt.Errorf("%w: %q", chat.ErrNoSuchUser, mod.Username)
	}
	return nil
}

// Close implements [chat.Link]. If Redis cannot be reached, the link's
// members stay in the room until MemberTTL has passed, as if the process
// had died.
func (l *link) Close() error {
	l.closeOnce.Do(func() {
		l.cancel()
		l.psMu.Lock()
		if l.ps != nil {
			l.ps.Close() // interrupts receive
		}
		l.psMu.Unlock()
		l.wg.Wait()

		l.claims.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		err := closeScript.Run(ctx, l.b.rdb, l.keys, l.base, l.channel, l.inst).Err()
		cancel()
		l.claims.Unlock()
		l.b.forget(l)
		if err != nil {
			l.closeErr = fmt.Errorf("redisbroker: releasing members (they expire in %v): %w", l.opts.MemberTTL, err)
		}
	})
	return l.closeErr
}

// usable returns an error if Join and Publish must fail at once: after
// Close, and between losing the connection to Redis and the sync that
// follows the reconnect. Until that sync the link has not re-claimed its
// members nor restored the room's sequence, should Redis have lost them.
func (l *link) usable() error {
	switch {
	case l.ctx.Err() != nil:
		return ErrClosed
	case !l.ready.Load():
		return ErrUnavailable
	}
	return nil
}

// pongTimeout is how long receive waits for the answer to a ping before it
// considers the subscription's connection dead.
func (l *link) pongTimeout() time.Duration { return max(2*l.opts.HeartbeatInterval, 3*time.Second) }

func (l *link) ttl() int64 { return l.opts.MemberTTL.Milliseconds() }

func (l *link) markDirty() {
	l.dirty.Store(true)
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// saw records seq as seen, for syncScript's floor.
func (l *link) saw(seq int64) {
	for {
		old := l.seen.Load()
		if seq <= old || l.seen.CompareAndSwap(old, seq) {
			return
		}
	}
}

// syncReply is the decoded reply of syncScript.
type syncReply struct {
	lost   []string       // names claimed by another instance meanwhile
	epoch  string         // of the room's data
	seq    int64          // the room's last sequence number
	events []wireEvent    // if catching up: the events after last
	snap   *chat.Snapshot // otherwise: the room's state
}

// claimAndLoad runs syncScript: it makes the names Redis records for this
// link exactly its members, re-claiming them if Redis lost them, and
// returns either the events after last or the room's state.
func (l *link) claimAndLoad(ctx context.Context, last int64) (*syncReply, error) {
	l.claims.Lock()
	defer l.claims.Unlock()
	l.dirty.Store(false)
	l.mu.Lock()
	keys := make([]string, 0, len(l.members))
	for k := range l.members {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(l.members[a].n, l.members[b].n) })
	args := []any{l.base, l.channel, l.inst, l.ttl(), l.seen.Load(), last, l.epoch, crand.Text()}
	for _, k := range keys {
		args = append(args, k, l.members[k].name, l.members[k].prof)
	}
	l.mu.Unlock()

	res, err := syncScript.Run(ctx, l.b.rdb, l.keys, args...).Slice()
	if err != nil {
		l.dirty.Store(true)
		return nil, err
	}
	r, err := decodeSyncReply(res)
	if err != nil {
		return nil, err
	}
	if len(r.lost) > 0 {
		l.mu.Lock()
		for _, name := range r.lost {
			delete(l.members, chat.NameKey(name))
		}
		l.mu.Unlock()
		l.log.Warn("redisbroker: names claimed on another instance during an outage", "names", r.lost)
	}
	return r, nil
}

// holds reports whether the link holds the name with key.
func (l *link) holds(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.members[key]
	return ok
}

// requestSync makes receive re-claim the link's members and catch up. A
// ping wakes it up: the pong arrives at once.
func (l *link) requestSync() {
	l.resync.Store(true)
	l.psMu.Lock()
	ps := l.ps
	l.psMu.Unlock()
	if ps != nil {
		ps.Ping(l.ctx)
	}
}

// keep refreshes the heartbeat every HeartbeatInterval, which also sweeps
// dead instances. If the heartbeat had expired (the link's members may have
// been swept) or a call failed midway, it has receive re-claim them.
func (l *link) keep() {
	defer l.wg.Done()
	t := time.NewTicker(l.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		case <-l.kick:
		}
		ctx, cancel := context.WithTimeout(l.ctx, l.opts.HeartbeatInterval)
		alive, err := heartbeatScript.Run(ctx, l.b.rdb, l.keys, l.base, l.channel, l.inst, l.ttl()).Int()
		cancel()
		switch {
		case err != nil:
			if l.ctx.Err() == nil {
				l.log.Debug("redisbroker: heartbeat failed", "err", err)
			}
		case alive == 0 || l.dirty.Load():
			l.requestSync()
		}
	}
}

// subscribe replaces the subscription, closing old if not nil. It returns
// nil once the link is closed.
func (l *link) subscribe(old *redis.PubSub) *redis.PubSub {
	l.psMu.Lock()
	defer l.psMu.Unlock()
	if old != nil {
		old.Close()
	}
	l.ps = nil
	if l.ctx.Err() != nil {
		return nil
	}
	// Subscribe does not fail: if Redis is unreachable it connects on the
	// first ReceiveTimeout.
	l.ps = l.b.sub.Subscribe(l.ctx, l.channel)
	return l.ps
}

// receive reads the room's channel and delivers its events in sequence
// order. After every (re)subscription it syncs (see sync), then delivers
// the events that follow. It syncs again when the sequence numbers skip
// (an event was lost), when the link's own member is removed by another
// instance (its heartbeat expired) and when keep asks.
func (l *link) receive() {
	defer l.wg.Done()
	var (
		ps        = l.subscribe(nil)
		last      int64     // sequence number of the last event delivered
		synced    bool      // whether last is the state of this subscription
		wantSync  bool      // whether to sync
		retry     time.Time // when to try a failed sync again
		pinged    time.Time // when the unanswered ping was sent, or zero
		connected = true    // whether the last attempt succeeded, for logs
		bo        backoff
	)
	for ps != nil {
		if l.resync.Swap(false) {
			synced, wantSync = false, true
		}
		if wantSync && !time.Now().Before(retry) {
			if err := l.sync(&last); err != nil {
				retry = time.Now().Add(bo.next())
				if l.ctx.Err() == nil {
					l.log.Debug("redisbroker: sync failed", "err", err)
				}
			} else {
				synced, wantSync = true, false
				bo.reset()
				if !connected {
					connected = true
					l.log.Info("redisbroker: reconnected and resynchronized", "seq", last)
				}
			}
		}
		timeout := l.opts.HeartbeatInterval
		if wantSync {
			timeout = max(time.Until(retry), time.Millisecond)
		}
		msg, err := ps.ReceiveTimeout(l.ctx, timeout)
		if l.ctx.Err() != nil {
			return
		}
		if err != nil {
			if !isTimeout(err) {
				// The connection broke: the subscription reconnects on
				// the next call, and the new subscribe confirmation
				// triggers a sync.
				synced, pinged = false, time.Time{}
				l.ready.Store(false)
				if connected {
					connected = false
					l.log.Warn("redisbroker: subscription lost, reconnecting", "err", err)
				}
				sleep(l.ctx, bo.next())
				continue
			}
			switch {
			case wantSync:
			case pinged.IsZero():
				if ps.Ping(l.ctx) == nil {
					pinged = time.Now()
				}
			case time.Since(pinged) > l.pongTimeout():
				// No pong: assume the connection is dead, start over.
				l.log.Warn("redisbroker: subscription unresponsive, reconnecting")
				synced, pinged, connected = false, time.Time{}, false
				l.ready.Store(false)
				ps = l.subscribe(ps)
			}
			continue
		}
		pinged = time.Time{}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				synced, wantSync, retry = false, true, time.Time{}
			}
		case *redis.Message:
			if !synced {
				continue // the coming sync includes it
			}
			w, err := decodeEvent(m.Payload)
			switch {
			case err != nil:
				l.log.Warn("redisbroker: ignoring malformed event", "err", err)
			case w.Kind == "t": // typing: outside the sequence
				l.deliver(chat.Event{Kind: chat.EventTyping, Username: w.User})
			case w.Seq <= last: // already delivered
			case w.Seq > last+1: // lost events: catch up
				synced, wantSync = false, true
			case w.Kind == "l" && l.holds(chat.NameKey(w.User)):
				// Another instance swept our member: our heartbeat
				// expired. Re-claim it before going on.
				synced, wantSync = false, true
			default:
				last = w.Seq
				l.saw(last)
				l.forward(w)
			}
		}
	}
}

// sync brings the hub up to date after a (re)subscription, a gap or a
// request of keep, and sets *last to the room's sequence number. It first
// re-claims the link's members. Then, if Redis still logs every event
// after *last, it delivers those events: nothing is lost. Otherwise (the
// first sync, Redis lost the room, or more than 1000 events were missed)
// it delivers the room's state as an EventSync. If some members' names
// were claimed on another instance meanwhile, it first delivers the state
// without them, so that the hub drops its members of those names, then
// the real state, in which the names belong to others.
func (l *link) sync(last *int64) error {
	ctx, cancel := context.WithTimeout(l.ctx, max(l.opts.HeartbeatInterval, time.Second))
	defer cancel()
	r, err := l.claimAndLoad(ctx, *last)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	l.epoch = r.epoch
	l.saw(r.seq)
	l.ready.Store(true) // before the hub hears of the sync and calls Join
	if r.snap == nil {
		for _, w := range r.events {
			if w.Seq > *last {
				*last = w.Seq
				l.forward(w)
			}
		}
		return nil
	}
	*last = r.seq
	if len(r.lost) > 0 {
		gone := make(map[string]bool, len(r.lost))
		for _, name := range r.lost {
			gone[chat.NameKey(name)] = true
		}
		without := *r.snap
		without.Users = slices.DeleteFunc(slices.Clone(r.snap.Users), func(u string) bool {
			return gone[chat.NameKey(u)]
		})
		l.deliver(chat.Event{Kind: chat.EventSync, Sync: &without})
	}
	l.deliver(chat.Event{Kind: chat.EventSync, Sync: r.snap})
	return nil
}

// forward delivers an event, except a no-op, or the leave of a name this
// link holds: another instance swept it after the link's heartbeat
// expired, and the link has re-claimed it since, which the hub need not
// hear of.
func (l *link) forward(w wireEvent) {
	ev := w.event()
	if ev.Kind == 0 || ev.Kind == chat.EventLeave && l.holds(chat.NameKey(ev.Username)) {
		return
	}
	l.deliver(ev)
}

// wireMessage is a message as published, without its id and time.
type wireMessage struct {
	User     string    `json:"u"`
	Body     string    `json:"b"`
	To       string    `json:"to,omitempty"`
	System   bool      `json:"sys,omitempty"`
	File     *wireFile `json:"f,omitempty"`
	Origin   string    `json:"o,omitempty"`
	ToOrigin string    `json:"xo,omitempty"`
}

// wireFile is a message's attachment as published.
type wireFile struct {
	ID   string `json:"i"`
	Name string `json:"n"`
	Size int64  `json:"s"`
	Type string `json:"t"`
}

// wireProfile is a member's public profile as published.
type wireProfile struct {
	Display string `json:"d,omitempty"`
	Avatar  string `json:"a,omitempty"`
}

// encodeProfile returns p as published, or "" if p is empty.
func encodeProfile(p chat.Profile) string {
	if p == (chat.Profile{}) {
		return ""
	}
	b, _ := json.Marshal(wireProfile{Display: p.Display, Avatar: p.Avatar}) // strings only: cannot fail
	return string(b)
}

// decodeProfile decodes a published profile ("" or malformed: none).
func decodeProfile(s string) chat.Profile {
	var w wireProfile
	if s != "" {
		_ = json.Unmarshal([]byte(s), &w)
	}
	return chat.Profile{Display: w.Display, Avatar: w.Avatar}
}

// wireEvent is an event as published; see scripts.go.
type wireEvent struct {
	Seq    int64       `json:"s"`
	Kind   string      `json:"k"`
	User   string      `json:"u"`
	Prof   wireProfile `json:"p"` // of a join
	Time   int64       `json:"t"`
	Msg    wireMessage `json:"m"`
	Action string      `json:"a"` // of a moderation
	Reason string      `json:"r"` // of a kick or ban
	Until  int64       `json:"e"` // end of a ban or mute, Unix ms
}

// decodeEvent decodes a published or logged event.
func decodeEvent(payload string) (wireEvent, error) {
	var w wireEvent
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return w, err
	}
	if w.Seq <= 0 && w.Kind != "t" {
		return w, fmt.Errorf("event without sequence number: %.100q", payload)
	}
	return w, nil
}

// event returns the Event to deliver. A no-op, or an event of a kind this
// version does not know, has Kind 0.
func (w *wireEvent) event() chat.Event {
	switch w.Kind {
	case "j":
		return chat.Event{Kind: chat.EventJoin, Username: w.User,
			Profile: chat.Profile{Display: w.Prof.Display, Avatar: w.Prof.Avatar}}
	case "l":
		return chat.Event{Kind: chat.EventLeave, Username: w.User}
	case "m":
		m := chat.Message{
			ID:       strconv.FormatInt(w.Seq, 10),
			Username: w.Msg.User,
			Body:     w.Msg.Body,
			To:       w.Msg.To,
			System:   w.Msg.System,
			Origin:   w.Msg.Origin,
			ToOrigin: w.Msg.ToOrigin,
			Time:     time.UnixMilli(w.Time),
		}
		if f := w.Msg.File; f != nil {
			m.File = &chat.File{ID: f.ID, Name: f.Name, Size: f.Size, Type: f.Type}
		}
		return chat.Event{Kind: chat.EventMessage, Message: m}
	case "x":
		for act, name := range modActions {
			if name == w.Action {
				mod := chat.Moderation{Action: act, Username: w.User, Reason: w.Reason}
				if w.Until != 0 {
					mod.Until = time.UnixMilli(w.Until)
				}
				return chat.Event{Kind: chat.EventModeration, Moderation: mod}
			}
		}
	}
	return chat.Event{}
}

// decodeSyncReply decodes the reply of syncScript.
func decodeSyncReply(res []any) (*syncReply, error) {
	strs := func(v any) []string {
		list, _ := v.([]any)
		out := make([]string, 0, len(list))
		for _, x := range list {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	if len(res) < 5 {
		return nil, fmt.Errorf("unexpected reply %v", res)
	}
	r := &syncReply{lost: strs(res[0])}
	r.epoch, _ = res[1].(string)
	seq, _ := res[2].(string)
	var err error
	if r.seq, err = strconv.ParseInt(seq, 10, 64); err != nil {
		return nil, err
	}
	if mode, _ := res[3].(string); mode == "e" {
		for _, p := range strs(res[4]) {
			w, err := decodeEvent(p)
			if err != nil {
				return nil, err
			}
			r.events = append(r.events, w)
		}
		return r, nil
	}
	if len(res) != 8 {
		return nil, fmt.Errorf("unexpected reply %v", res)
	}
	r.snap = &chat.Snapshot{Users: strs(res[4]), History: []chat.Message{}}
	for i, p := range strs(res[7]) {
		if p == "" || i >= len(r.snap.Users) {
			continue
		}
		if r.snap.Profiles == nil {
			r.snap.Profiles = make(map[string]chat.Profile)
		}
		r.snap.Profiles[r.snap.Users[i]] = decodeProfile(p)
	}
	for _, p := range strs(res[5]) {
		w, err := decodeEvent(p)
		if err != nil || w.Kind != "m" {
			return nil, fmt.Errorf("bad history entry %.100q", p)
		}
		r.snap.History = append(r.snap.History, w.event().Message)
	}
	for _, p := range strs(res[6]) {
		// A ban or mute of a kind this version does not know is skipped.
		if w, err := decodeEvent(p); err == nil {
			if ev := w.event(); ev.Kind == chat.EventModeration {
				r.snap.Restrictions = append(r.snap.Restrictions, ev.Moderation)
			}
		}
	}
	return r, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// backoff yields exponentially growing, jittered delays from 50 ms to 2 s.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	b.d = min(max(2*b.d, 50*time.Millisecond), 2*time.Second)
	return b.d/2 + rand.N(b.d/2)
}

func (b *backoff) reset() { b.d = 0 }

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
