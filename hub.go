package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A Hub is one chat room: its members in join order, the order and ids of
// its messages, its history, and the fan-out of every event to the members'
// connections. Attach connections with a [Server]. A process may run any
// number of hubs; they share nothing.
//
// Use [NewHub]; the zero Hub is not usable. A Hub is safe for concurrent use.
type Hub struct {
	opts   Options
	log    *slog.Logger
	sysKey string
	link   Link // nil: this hub orders the room itself

	wg      sync.WaitGroup // connection readers and the pinger
	stop    chan struct{}  // closed when shutdown starts
	synced  chan struct{}  // closed once the room's state is known
	openErr error          // the Broker could not open the room
	out     outbox         // the write side: log, ready queue, writers
	ap      *appender      // writes messages to Options.Store; nil without one
	met     metrics        // counters for Metrics

	// ctx is cancelled when shutdown starts: it bounds reads of the Store.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards everything below. Every change to the room happens under
	// it, together with the fan-out of the event that announces it, so all
	// members see one order. Lock order: mu, then out.mu, then the
	// poller's mu.
	mu           sync.Mutex
	closed       bool
	syncedOnce   bool
	conns        map[*client]struct{}  // every connection, joined or not
	members      map[string]*member    // by name key; members of every hub
	first, last  *member               // join order
	pending      map[string]*claim     // broker: names being claimed, by key
	seq          uint64                // last message id, without a broker
	mem          recent                // recent messages: the history, resume, pages
	users        usersSnap             // cached users snapshot; zero when stale
	enc          []byte                // scratch for encoding join and leave events
	pl           *poller               // idle connections' poller, started on first use
	plTried      bool                  // a poller was started, or could not be
	bans, mutes  map[string]Moderation // in force, by name key (see moderate.go); nil: none
	tokens       map[string]*client    // upload tokens of the members' connections (see upload.go)
	typingBudget *bucket               // the typing notices this hub may forward (see typing.go)

	nMutes atomic.Int32 // len(mutes), for the message path to read without mu
}

// poller returns the hub's poller, starting it on first use; nil if the
// system has none or the hub is shutting down.
func (h *Hub) poller() *poller {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	if !h.plTried {
		h.plTried = true
		h.pl = newPoller(h)
	}
	return h.pl
}

// A member is one user of the room, on this hub or another.
type member struct {
	name, key string
	prof      Profile // the public part of its identity

	// Of a member that joined through this hub (local): id is its first
	// connection's identity (nil if it had nothing but a name), and conns
	// are its connections, in the order they came (several with
	// Options.Authenticate: tabs, devices). With a Broker, a local member
	// whose last connection has gone stays until the broker delivers its
	// leave, with no connections.
	local bool
	id    *Identity
	conns []*client
	one   [1]*client // conns' array while it has one
	typed time.Time  // when its last typing notice went out (local members)

	uploads *bucket // its upload rate, once it has uploaded (see upload.go)

	prev, next *member
}

// setLocal makes m a member that joined through this hub, with its first
// connection c.
func (m *member) setLocal(c *client) {
	m.local, m.id = true, c.id
	m.one[0] = c
	m.conns = m.one[:1:1]
}

// identity returns m's identity, as the hooks receive it.
func (m *member) identity() Identity {
	if m.id != nil {
		return *m.id
	}
	return Identity{Name: m.name}
}

// A claim is a name being claimed through the Broker for c.
type claim struct {
	c       *client
	done    chan struct{} // closed when the claim has succeeded or failed
	waiting int           // further connections of the name waiting for done (guarded by Hub.mu)
}

// NewHub returns a running hub configured by opts; see [Options] for the
// defaults. Stop it with [Hub.Shutdown] or [Hub.Close].
func NewHub(opts Options) *Hub {
	o := opts.withDefaults()
	h := &Hub{
		opts:    o,
		log:     o.Logger.With("room", o.Name),
		sysKey:  nameKey(o.SystemName),
		stop:    make(chan struct{}),
		synced:  make(chan struct{}),
		conns:   make(map[*client]struct{}),
		members: make(map[string]*member),
		pending: make(map[string]*claim),
		tokens:  make(map[string]*client),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.mem.init(&h.opts)
	h.out.init(h)
	if o.Store != nil {
		h.ap = newAppender(h, o.Store)
		h.loadStore()
		go h.ap.run()
	}
	if o.Origin != "" && !validOrigin(o.Origin) {
		panic("chat: invalid Options.Origin " + quote(o.Origin) + ": want 1 to 64 bytes of printable text")
	}
	if o.Broker == nil {
		h.syncedOnce = true
		close(h.synced)
	} else {
		// The broker may deliver before Open returns, from a goroutine
		// of its own: what deliver reads is set under the lock.
		link, err := o.Broker.Open(o.Name, h.deliver)
		h.mu.Lock()
		h.link, h.openErr = link, err
		h.mu.Unlock()
		if err != nil {
			h.met.brokerErrors.Add(1)
			h.log.Warn("chat: broker cannot open room", "err", err)
		}
	}
	if o.PingInterval > 0 {
		h.wg.Go(h.pinger)
	}
	return h
}

// Name returns the room's name, Options.Name.
func (h *Hub) Name() string { return h.opts.Name }

// Users returns the names of the room's members in join order. With a
// Broker, it lists the members of every hub of the room.
func (h *Hub) Users() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.usersLocked()
}

func (h *Hub) usersLocked() []string {
	names := make([]string, 0, len(h.members))
	for m := h.first; m != nil; m = m.next {
		names = append(names, m.name)
	}
	return names
}

// History returns the room's recent public messages, oldest first: what a
// user joining now would receive.
func (h *Hub) History() []Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	hist := h.mem.history()
	msgs := make([]Message, len(hist))
	for i, e := range hist {
		msgs[i] = e.msg
	}
	return msgs
}

// Post publishes a system message to every member, from Options.SystemName
// with "system":true on the wire. It enters the history like any public
// message. Post fails with [ErrHubClosed] after shutdown and with an error
// wrapping [ErrInvalidBody] for an empty or oversized body. ctx bounds the
// call to the Broker, if any; a hub without one never waits.
func (h *Hub) Post(ctx context.Context, body string) error {
	if err := validateBody(body, h.opts.MaxBodyBytes); err != nil {
		return err
	}
	return h.publish(ctx, &Message{Username: h.opts.SystemName, Body: body, System: true})
}

// Shutdown stops the hub gracefully: new connections are refused with 503,
// every client is sent a 1001 (going away) close frame, and Shutdown waits
// until every connection is closed and every goroutine of the hub has
// exited, or until ctx ends, whichever comes first. A client that does not
// answer the close frame is dropped after a grace of 2 seconds, whatever it
// sends meanwhile. If ctx ends first, the
// remaining connections are closed at once and Shutdown returns ctx.Err()
// after their goroutines exit. Shutdown may be called more than once.
//
// With Options.Store, Shutdown then waits, again until ctx ends at most,
// for every message still queued for the Store to be written; if ctx ends
// first, the rest are lost (with a Warn) and Shutdown returns ctx.Err().
//
// Shutdown does not stop the http.Server a [Server] is mounted on: call it
// before [http.Server.Shutdown], which does not wait for hijacked
// connections such as WebSockets.
func (h *Hub) Shutdown(ctx context.Context) error { return h.shutdown(ctx, ctx) }

// shutdown is Shutdown, with the wait for the Store bounded by flush.
func (h *Hub) shutdown(ctx, flush context.Context) error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.stop)
		h.cancel()
		for c := range h.conns {
			h.out.close(c, closeGoingAway, errTextClosed)
		}
	}
	h.mu.Unlock()

	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		h.out.wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		h.mu.Lock()
		for c := range h.conns {
			c.closeConn()
		}
		h.mu.Unlock()
		<-done
	}
	// Every reader has ended: nothing is parked any more.
	h.mu.Lock()
	pl := h.pl
	h.pl = nil
	h.mu.Unlock()
	if pl != nil {
		pl.close()
	}
	if h.link != nil {
		if cerr := h.link.Close(); cerr != nil {
			h.met.brokerErrors.Add(1)
			if err == nil {
				err = fmt.Errorf("chat: closing broker link: %w", cerr)
			}
		}
	}
	// Nothing is delivered any more: what is queued is all there is.
	if h.ap != nil {
		if ferr := h.ap.flush(flush); ferr != nil && err == nil {
			err = ferr
		}
	}
	return err
}

// Close closes every connection at once, without waiting for clients to
// acknowledge the close frame, and returns when every goroutine of the hub
// has exited. Use [Hub.Shutdown] to let clients see the 1001 close. With
// Options.Store, Close still waits up to WriteTimeout for the messages
// queued for the Store to be written.
func (h *Hub) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	flush, cancelFlush := context.WithTimeout(context.Background(), h.opts.WriteTimeout)
	defer cancelFlush()
	if err := h.shutdown(ctx, flush); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// pinger pings every connection each PingInterval; the read deadline,
// extended by every frame and pong, catches the ones that stop answering.
func (h *Hub) pinger() {
	t := time.NewTicker(h.opts.PingInterval)
	defer t.Stop()
	var conns []*client
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		for c := range h.conns {
			conns = append(conns, c)
		}
		h.mu.Unlock()
		h.out.ping(conns)
		clear(conns)
		conns = conns[:0]
	}
}

// addConn registers a new connection, or reports false after shutdown.
func (h *Hub) addConn(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	return true
}

// removeConn forgets a connection whose reader is about to exit.
func (h *Hub) removeConn(c *client) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	h.wg.Done()
}

// join makes c a member named name (already validated), with c.id, and
// reports whether c is its first connection (the member is new), and the
// member's name, which is name unless c is a further connection of a
// member whose name has another case. Without a
// broker the join is applied at once; with one, the name is claimed
// through the Link and the join completes when the broker delivers the
// EventJoin. With Options.Authenticate, a connection whose name is a
// member's here already becomes another connection of that member (see
// attachLocked).
func (h *Hub) join(ctx context.Context, c *client, name string) (member string, first bool, err error) {
	key := nameKey(name)
	ctx, cancel := context.WithTimeout(ctx, h.opts.JoinTimeout)
	defer cancel()
	h.mu.Lock()
	for {
		if err := h.allowedLocked(name, key); err != nil {
			h.mu.Unlock()
			return "", false, err
		}
		if h.shared() {
			if m := h.members[key]; m != nil && len(m.conns) > 0 {
				h.attachLocked(m, c)
				h.mu.Unlock()
				return m.name, false, nil
			}
			if p := h.pending[key]; p != nil {
				// The member's first connection is claiming the name:
				// wait for the outcome, then try again.
				p.waiting++
				h.mu.Unlock()
				select {
				case <-p.done:
				case <-ctx.Done():
					return "", false, h.joinFailed(name, ctx.Err())
				case <-h.stop:
					return "", false, ErrHubClosed
				}
				h.mu.Lock()
				continue
			}
		}
		break
	}
	if err := h.admitLocked(name, key); err != nil {
		h.mu.Unlock()
		return "", false, err
	}
	if h.link == nil {
		h.applyJoinLocked(name, key, c.profile(), c)
		h.mu.Unlock()
		return name, true, nil
	}
	cl := &claim{c: c, done: make(chan struct{})}
	h.pending[key] = cl
	h.mu.Unlock()
	defer close(cl.done)

	claimed := false
	err = h.waitSynced(ctx)
	if err == nil {
		err = h.link.Join(ctx, name, c.profile())
		claimed = err == nil
	}
	if err == nil {
		select {
		case <-c.joined:
			return name, true, nil
		case <-ctx.Done():
			err = ctx.Err()
		case <-h.stop:
			err = ErrHubClosed
		}
	}
	h.mu.Lock()
	if h.pending[key] == cl {
		delete(h.pending, key)
	}
	joined := c.member != nil
	h.mu.Unlock()
	if joined {
		return name, true, nil // the EventJoin won the race with the timeout
	}
	if claimed {
		h.releaseName(name)
	}
	return "", false, h.joinFailed(name, err)
}

// joinFailed returns the error for a join through the broker that failed
// with err.
func (h *Hub) joinFailed(name string, err error) error {
	if errors.Is(err, ErrNameTaken) {
		return errorf(ErrNameTaken, "username %s is taken", quote(name))
	}
	if errors.Is(err, ErrBanned) { // banned on another hub just now
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.bannedErrLocked(name, nameKey(name), false)
	}
	if !errors.Is(err, ErrHubClosed) {
		h.met.brokerErrors.Add(1)
	}
	h.log.Warn("chat: join through broker failed", "user", name, "err", err)
	return errors.New(errTextUnavailable)
}

// shared reports whether connections with the same name are one member:
// with Options.Authenticate, which vouches for the name.
func (h *Hub) shared() bool { return h.opts.Authenticate != nil }

// attachLocked makes c another connection of m, a member connected here:
// the room sees no join; c receives its own join event (to it alone), the
// users snapshot and the history, then the room's events, as a joiner
// does.
func (h *Hub) attachLocked(m *member, c *client) {
	m.conns = append(m.conns, c)
	c.member = m
	h.enc = appendJoinEvent(h.enc[:0], m.name, m.prof)
	h.out.attach(h.enc, c, h.usersSnapLocked(), h.joinHistoryLocked(c, m))
	close(c.joined)
	h.log.Debug("chat: another connection", "user", m.name, "conns", len(m.conns))
}

func (h *Hub) waitSynced(ctx context.Context) error {
	if h.openErr != nil {
		return h.openErr
	}
	select {
	case <-h.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// releaseName gives a claimed name back to the broker, bounded in time.
func (h *Hub) releaseName(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.WriteTimeout)
	defer cancel()
	if err := h.link.Leave(ctx, name); err != nil {
		h.met.brokerErrors.Add(1)
		h.log.Warn("chat: leave through broker failed", "user", name, "err", err)
	}
}

// allowedLocked checks whether a connection named name (with key) may
// join, as a new member or as another connection of a member.
func (h *Hub) allowedLocked(name, key string) error {
	switch {
	case h.closed:
		return ErrHubClosed
	case key == h.sysKey:
		return errorf(ErrInvalidName, "username %s is reserved", quote(name))
	case len(h.bans) > 0 && h.bannedErrLocked(name, key, true) != nil:
		return h.bannedErrLocked(name, key, true)
	}
	return nil
}

// admitLocked checks whether a new member named name (with key) may join,
// once allowedLocked has.
func (h *Hub) admitLocked(name, key string) error {
	switch {
	case h.members[key] != nil || h.pending[key] != nil:
		return errorf(ErrNameTaken, "username %s is taken", quote(name))
	case h.opts.MaxUsers > 0 && len(h.members)+len(h.pending) >= h.opts.MaxUsers:
		return ErrRoomFull
	}
	return nil
}

// leave takes c, a member's connection, out of the room. If it was the
// member's last, the member leaves, and leave returns the member's
// identity and true.
func (h *Hub) leave(c *client) (Identity, bool) {
	h.mu.Lock()
	m := c.member
	i := -1
	if m != nil {
		i = slices.Index(m.conns, c)
	}
	if i < 0 {
		h.mu.Unlock()
		return Identity{}, false
	}
	m.conns = slices.Delete(m.conns, i, i+1)
	last := len(m.conns) == 0
	switch {
	case h.members[m.key] != m:
		// Already removed by the broker, its leave announced.
	case !last:
		h.out.unsubscribe(c) // the member stays: the room sees nothing
	case h.link == nil:
		h.applyLeaveLocked(m.key)
	default:
		closed := h.closed
		h.out.unsubscribe(c) // it is going: send it nothing more
		h.mu.Unlock()
		if !closed { // on shutdown, Link.Close releases every name at once
			h.releaseName(m.name)
		}
		return m.identity(), true
	}
	h.mu.Unlock()
	return m.identity(), last
}

// publish assigns m its id and time and sends it to the room: everyone, or
// the sender and m.To for a private message.
func (h *Hub) publish(ctx context.Context, m *Message) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrHubClosed
	}
	if m.To != "" && m.ToOrigin == "" {
		to := h.members[nameKey(m.To)]
		if to == nil {
			h.mu.Unlock()
			return errorf(ErrNoSuchUser, "user %s is not here", quote(m.To))
		}
		m.To = to.name
	}
	if h.link == nil {
		h.seq++
		m.ID = strconv.FormatUint(h.seq, 10)
		m.Time = time.Now()
		h.applyMessageLocked(m)
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, h.opts.WriteTimeout)
	defer cancel()
	if err := h.link.Publish(ctx, *m); err != nil {
		if errors.Is(err, ErrNoSuchUser) { // the recipient left meanwhile
			return errorf(ErrNoSuchUser, "user %s is not here", quote(m.To))
		}
		if errors.Is(err, ErrMuted) { // muted on another hub just now
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.mutedErrLocked(nameKey(m.Username), false)
		}
		h.met.brokerErrors.Add(1)
		h.log.Warn("chat: publish through broker failed", "err", err)
		return rejected(rejectUnavailable, errors.New(errTextUnavailable))
	}
	return nil
}

// deliver applies an event from the Broker. The broker calls it in the
// room's order, one event at a time.
func (h *Hub) deliver(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ev.Kind {
	case EventSync:
		if ev.Sync != nil {
			h.applySyncLocked(ev.Sync)
		}
		if !h.syncedOnce {
			h.syncedOnce = true
			close(h.synced)
		}
	case EventJoin:
		key := nameKey(ev.Username)
		if h.members[key] == nil {
			var c *client
			if cl := h.pending[key]; cl != nil {
				c = cl.c
				delete(h.pending, key)
			}
			h.applyJoinLocked(ev.Username, key, ev.Profile, c)
		}
	case EventLeave:
		key := nameKey(ev.Username)
		if m := h.members[key]; m != nil {
			// A local member the broker no longer counts: let it reconnect.
			// (If it is leaving already, this does nothing.)
			h.closeConnsLocked(m, closeTryAgain, errTextUnavailable)
		}
		h.applyLeaveLocked(key)
	case EventMessage:
		m := ev.Message
		h.applyMessageLocked(&m)
	case EventModeration:
		h.applyModerationLocked(ev.Moderation)
	case EventTyping:
		h.applyTypingLocked(ev.Username, time.Now())
	}
}

// closeConnsLocked closes m's connections here, if any, with code and
// reason: evictions for Metrics (Evictions.Other).
func (h *Hub) closeConnsLocked(m *member, code int, reason string) {
	for _, c := range m.conns {
		h.out.evict(c, evictOther, code, reason)
	}
}

// applyJoinLocked adds a member with profile p, announces it to everyone,
// and, when the member is connected here (c != nil), sends c the users
// snapshot and the history after its own join event (see
// announceJoinLocked).
func (h *Hub) applyJoinLocked(name, key string, p Profile, c *client) {
	m := &member{name: name, key: key, prof: p, prev: h.last}
	if c != nil {
		m.setLocal(c)
	}
	if h.last != nil {
		h.last.next = m
	} else {
		h.first = m
	}
	h.last = m
	h.members[key] = m
	if h.users.known() {
		h.users.add(name, p)
	}
	h.announceJoinLocked(m, c)
	h.log.Debug("chat: join", "user", name, "local", c != nil)
}

// announceJoinLocked announces m's join to every local member and, when m
// is connected here (c != nil), has the outbox send c the users snapshot
// and the history right after its own join event, or owe them (see
// outbox.join).
func (h *Hub) announceJoinLocked(m *member, c *client) {
	h.enc = appendJoinEvent(h.enc[:0], m.name, m.prof)
	var (
		hist []byte
		snap usersSnap // unknown, for a member of another hub
	)
	if c != nil {
		c.member = m
		snap = h.usersSnapLocked()
		hist = h.joinHistoryLocked(c, m)
	} else if h.users.known() {
		snap = h.users.fixed()
	}
	h.out.join(h.enc, c, snap, hist)
	if c != nil {
		close(c.joined)
	}
}

// usersSnapLocked returns the users snapshot, fixed, encoding it if the
// cache is stale. Joins extend the cache; other changes of the members
// make it stale.
func (h *Hub) usersSnapLocked() usersSnap {
	if !h.users.known() {
		h.users = newUsersSnap(h.first)
	}
	return h.users.fixed()
}

// applyLeaveLocked removes the member with key, if any, and announces it.
func (h *Hub) applyLeaveLocked(key string) {
	m := h.members[key]
	if m == nil {
		return
	}
	if m.prev != nil {
		m.prev.next = m.next
	} else {
		h.first = m.next
	}
	if m.next != nil {
		m.next.prev = m.prev
	} else {
		h.last = m.prev
	}
	delete(h.members, key)
	h.users = usersSnap{}
	h.enc = appendNameEvent(h.enc[:0], typeLeave, m.name)
	h.out.leave(h.enc, m.conns)
	h.log.Debug("chat: leave", "user", m.name, "local", m.local)
}

// applyMessageLocked encodes m once and queues the same frame on every
// recipient: all local members, or the sender and recipient of a private
// message. Every message enters the hub's memory (see recent); public
// ones make the history. It never blocks: a client that falls SendQueue
// messages behind is disconnected instead.
func (h *Hub) applyMessageLocked(m *Message) {
	obj := appendMessageJSON(nil, m, h.opts.FilesURL, h.opts.Origin)
	id := h.seq // publish has just assigned it
	at := m.Time
	if h.opts.Broker != nil {
		id, _ = strconv.ParseUint(m.ID, 10, 64)
		at = time.Now() // not another process's clock: see Metrics.Lag
	}
	if m.To != "" {
		// To every connection of the sender and of the recipient. A
		// sender from elsewhere (another hub of the room, or outside it)
		// has no connection here, and no member here is a recipient
		// outside the room, whatever its name: their keys stay empty,
		// which matches no member's in memory either.
		var buf [2]*client
		to := buf[:0]
		var fk, tk string
		var from, rcpt *member
		if m.Origin == "" || m.Origin == h.opts.Origin {
			fk = nameKey(m.Username)
			from = h.members[fk]
		}
		if m.ToOrigin == "" {
			tk = nameKey(m.To)
			rcpt = h.members[tk]
		}
		if from != nil {
			to = append(to, from.conns...)
		}
		if rcpt != nil && rcpt != from {
			to = append(to, rcpt.conns...)
		}
		if len(to) > 0 {
			h.out.private(obj, at, to...)
		}
		h.mem.add(entry{id: id, msg: *m, json: obj, from: fk, to: tk})
		h.storeLocked(m, from)
		return
	}
	h.mem.add(entry{id: id, msg: *m, json: obj})
	h.storeLocked(m, nil)
	h.out.message(obj, at)
}

// applySyncLocked replaces the hub's view of the room with s, announcing
// the differences to local members as leaves and joins.
func (h *Hub) applySyncLocked(s *Snapshot) {
	keep := make(map[string]bool, len(s.Users))
	for _, name := range s.Users {
		keep[nameKey(name)] = true
	}
	for m := h.first; m != nil; {
		next := m.next
		if !keep[m.key] {
			h.applyLeaveLocked(m.key)
			// Our member lost its name: let it reconnect.
			h.closeConnsLocked(m, closeTryAgain, errTextUnavailable)
		}
		m = next
	}

	h.mem.sync(s.History)

	// Relink in the snapshot's order, then announce the newcomers.
	var added []*member
	h.first, h.last = nil, nil
	for _, name := range s.Users {
		key := nameKey(name)
		m := h.members[key]
		if m == nil {
			m = &member{name: name, key: key, prof: s.Profiles[name]}
			if cl := h.pending[key]; cl != nil {
				m.setLocal(cl.c)
				delete(h.pending, key)
			}
			h.members[key] = m
			added = append(added, m)
		}
		m.prev, m.next = h.last, nil
		if h.last != nil {
			h.last.next = m
		} else {
			h.first = m
		}
		h.last = m
	}
	h.users = usersSnap{}
	h.out.reorder()
	for _, m := range added {
		var c *client
		if len(m.conns) > 0 {
			c = m.conns[0]
		}
		h.announceJoinLocked(m, c)
	}
	h.setRestrictionsLocked(s.Restrictions)
}
