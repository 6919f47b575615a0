package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

	// ctx is cancelled when shutdown starts: it bounds reads of the Store.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards everything below. Every change to the room happens under
	// it, together with the fan-out of the event that announces it, so all
	// members see one order. Lock order: mu, then out.mu, then the
	// poller's mu.
	mu          sync.Mutex
	closed      bool
	syncedOnce  bool
	conns       map[*client]struct{}  // every connection, joined or not
	members     map[string]*member    // by name key; members of every hub
	first, last *member               // join order
	pending     map[string]*client    // broker: claimed, awaiting EventJoin
	seq         uint64                // last message id, without a broker
	mem         recent                // recent messages: the history, resume, pages
	usersJSON   []byte                // cached users payload; nil when stale
	enc         []byte                // scratch for encoding join and leave events
	pl          *poller               // idle connections' poller, started on first use
	plTried     bool                  // a poller was started, or could not be
	bans, mutes map[string]Moderation // in force, by name key (see moderate.go); nil: none

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
	name, key  string
	c          *client // nil if connected to another hub
	prev, next *member
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
		pending: make(map[string]*client),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.mem.init(&h.opts)
	h.out.init(h)
	if o.Store != nil {
		h.ap = newAppender(h, o.Store)
		h.loadStore()
		go h.ap.run()
	}
	if o.Broker == nil {
		h.syncedOnce = true
		close(h.synced)
	} else if h.link, h.openErr = o.Broker.Open(o.Name, h.deliver); h.openErr != nil {
		h.log.Warn("chat: broker cannot open room", "err", h.openErr)
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
		if cerr := h.link.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("chat: closing broker link: %w", cerr)
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

// join makes c a member named name (already validated). Without a broker
// the join is applied at once; with one, the name is claimed through the
// Link and the join completes when the broker delivers the EventJoin.
func (h *Hub) join(ctx context.Context, c *client, name string) error {
	key := nameKey(name)
	h.mu.Lock()
	if err := h.admitLocked(name, key); err != nil {
		h.mu.Unlock()
		return err
	}
	if h.link == nil {
		h.applyJoinLocked(name, key, c)
		h.mu.Unlock()
		return nil
	}
	h.pending[key] = c
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, h.opts.JoinTimeout)
	defer cancel()
	claimed := false
	err := h.waitSynced(ctx)
	if err == nil {
		err = h.link.Join(ctx, name)
		claimed = err == nil
	}
	if err == nil {
		select {
		case <-c.joined:
			return nil
		case <-ctx.Done():
			err = ctx.Err()
		case <-h.stop:
			err = ErrHubClosed
		}
	}
	h.mu.Lock()
	if h.pending[key] == c {
		delete(h.pending, key)
	}
	joined := c.member != nil
	h.mu.Unlock()
	if joined {
		return nil // the EventJoin won the race with the timeout
	}
	if claimed {
		h.releaseName(name)
	}
	if errors.Is(err, ErrNameTaken) {
		return errorf(ErrNameTaken, "username %s is taken", quote(name))
	}
	if errors.Is(err, ErrBanned) { // banned on another hub just now
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.bannedErrLocked(name, key, false)
	}
	h.log.Warn("chat: join through broker failed", "user", name, "err", err)
	return errors.New(errTextUnavailable)
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
		h.log.Warn("chat: leave through broker failed", "user", name, "err", err)
	}
}

// admitLocked checks whether a user named name (with key) may join.
func (h *Hub) admitLocked(name, key string) error {
	switch {
	case h.closed:
		return ErrHubClosed
	case key == h.sysKey:
		return errorf(ErrInvalidName, "username %s is reserved", quote(name))
	case len(h.bans) > 0 && h.bannedErrLocked(name, key, true) != nil:
		return h.bannedErrLocked(name, key, true)
	case h.members[key] != nil || h.pending[key] != nil:
		return errorf(ErrNameTaken, "username %s is taken", quote(name))
	case h.opts.MaxUsers > 0 && len(h.members)+len(h.pending) >= h.opts.MaxUsers:
		return ErrRoomFull
	}
	return nil
}

// leave removes c, a member, from the room.
func (h *Hub) leave(c *client) {
	h.mu.Lock()
	m := c.member
	if m == nil || h.members[m.key] != m {
		h.mu.Unlock()
		return // already removed by a sync
	}
	if h.link == nil {
		h.applyLeaveLocked(m.key)
		h.mu.Unlock()
		return
	}
	closed := h.closed
	h.out.unsubscribe(c) // it is going: send it nothing more
	h.mu.Unlock()
	if !closed { // on shutdown, Link.Close releases every name at once
		h.releaseName(m.name)
	}
}

// publish assigns m its id and time and sends it to the room: everyone, or
// the sender and m.To for a private message.
func (h *Hub) publish(ctx context.Context, m *Message) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrHubClosed
	}
	if m.To != "" {
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
		h.log.Warn("chat: publish through broker failed", "err", err)
		return errors.New(errTextUnavailable)
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
			c := h.pending[key]
			delete(h.pending, key)
			h.applyJoinLocked(ev.Username, key, c)
		}
	case EventLeave:
		key := nameKey(ev.Username)
		if m := h.members[key]; m != nil && m.c != nil {
			// A local member the broker no longer counts: let it reconnect.
			// (If it is leaving already, this does nothing.)
			h.out.close(m.c, closeTryAgain, errTextUnavailable)
		}
		h.applyLeaveLocked(key)
	case EventMessage:
		m := ev.Message
		h.applyMessageLocked(&m)
	case EventModeration:
		h.applyModerationLocked(ev.Moderation)
	}
}

// applyJoinLocked adds a member, announces it to everyone, and, when the
// member is connected here (c != nil), sends c the users snapshot and the
// history after its own join event (see announceJoinLocked).
func (h *Hub) applyJoinLocked(name, key string, c *client) {
	m := &member{name: name, key: key, c: c, prev: h.last}
	if h.last != nil {
		h.last.next = m
	} else {
		h.first = m
	}
	h.last = m
	h.members[key] = m
	if h.usersJSON != nil {
		h.usersJSON = appendUsersTail(h.usersJSON, name)
	}
	h.announceJoinLocked(m, c)
	h.log.Debug("chat: join", "user", name, "local", c != nil)
}

// announceJoinLocked announces m's join to every local member and, when m
// is connected here (c != nil), has the outbox send c the users snapshot
// and the history right after its own join event, or owe them (see
// outbox.join).
func (h *Hub) announceJoinLocked(m *member, c *client) {
	h.enc = appendNameEvent(h.enc[:0], typeJoin, m.name)
	var hist []byte
	if c != nil {
		c.member = m
		if h.usersJSON == nil {
			h.usersJSON = appendUsers(nil, h.usersLocked())
		}
		hist = h.joinHistoryLocked(c, m)
	}
	h.out.join(h.enc, c, usersBody(h.usersJSON), hist)
	if c != nil {
		close(c.joined)
	}
}

// usersBody is the payload of the encoded users snapshot b without
// usersEnd, capped so that appending to it cannot change b (nil if b is).
func usersBody(b []byte) []byte {
	if b == nil {
		return nil
	}
	n := len(b) - len(usersEnd)
	return b[:n:n]
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
	h.usersJSON = nil
	h.enc = appendNameEvent(h.enc[:0], typeLeave, m.name)
	h.out.leave(h.enc, m.c)
	h.log.Debug("chat: leave", "user", m.name, "local", m.c != nil)
}

// applyMessageLocked encodes m once and queues the same frame on every
// recipient: all local members, or the sender and recipient of a private
// message. Every message enters the hub's memory (see recent); public
// ones make the history. It never blocks: a client that falls SendQueue
// messages behind is disconnected instead.
func (h *Hub) applyMessageLocked(m *Message) {
	obj := appendMessageJSON(nil, m)
	id := h.seq // publish has just assigned it
	if h.link != nil {
		id, _ = strconv.ParseUint(m.ID, 10, 64)
	}
	if m.To != "" {
		var to [2]*client
		n := 0
		fk, tk := nameKey(m.Username), nameKey(m.To)
		from, rcpt := h.members[fk], h.members[tk]
		if from != nil && from.c != nil {
			to[n] = from.c
			n++
		}
		if rcpt != nil && rcpt.c != nil && rcpt != from {
			to[n] = rcpt.c
			n++
		}
		if n > 0 {
			h.out.send(obj, to[:n]...)
		}
		h.mem.add(entry{id: id, msg: *m, json: obj, from: fk, to: tk})
		h.storeLocked(m, from)
		return
	}
	h.mem.add(entry{id: id, msg: *m, json: obj})
	h.storeLocked(m, nil)
	h.out.message(obj)
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
			if m.c != nil { // our member lost its name: let it reconnect
				h.out.close(m.c, closeTryAgain, errTextUnavailable)
			}
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
			m = &member{name: name, key: key, c: h.pending[key]}
			delete(h.pending, key)
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
	h.usersJSON = nil
	h.out.reorder()
	for _, m := range added {
		h.announceJoinLocked(m, m.c)
	}
	h.setRestrictionsLocked(s.Restrictions)
}
