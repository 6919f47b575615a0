package chat

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"
)

// A Store keeps a room's messages beyond the life of the process, so that
// a restart loses no history and a client that reconnects can resume where
// it left off. Set Options.Store to use one; without it a hub keeps its
// recent history in memory only.
//
// The module github.com/hubchat/chat/sqlitestore provides an embedded
// store in one SQLite file; github.com/hubchat/chat/pgstore one on
// PostgreSQL for rooms served by several processes.
//
// Message IDs are decimal strings of unsigned integers, increasing within
// a room but not contiguous (a [Broker] numbers joins and leaves too);
// stores compare them as numbers. A private message (Message.To set)
// belongs to its two ends: reads for a user include the private messages
// sent by or to that user (names compared under [NameKey]) and no others.
//
// Implementations must be safe for concurrent use. A hub calls Append from
// one goroutine of its own, off its lock, with many messages at a time
// (group commit), so fan-out never waits for the store; reads come from
// connections' goroutines.
type Store interface {
	// Append stores msgs for room. They have their IDs and Times set and
	// come in increasing ID order. A message whose ID the room holds
	// already is skipped without error, so that hubs sharing a Broker may
	// append the same message.
	Append(ctx context.Context, room string, msgs []Message) error

	// Latest returns the room's last n public messages, oldest first.
	Latest(ctx context.Context, room string, n int) ([]Message, error)

	// After returns the first n messages of the room with IDs greater than
	// after, oldest first: the public ones and the private ones of user.
	// It fails with an error wrapping [ErrNotRetained] if the store no
	// longer holds every such message (it dropped old messages).
	After(ctx context.Context, room, user, after string, n int) ([]Message, error)

	// Before returns the last n messages of the room with IDs less than
	// before, oldest first: the public ones and the private ones of user.
	Before(ctx context.Context, room, user, before string, n int) ([]Message, error)

	// LastID returns the greatest ID the room holds, public or private, or
	// "" if it holds none. A hub without a Broker numbers its messages on
	// from there after a restart.
	LastID(ctx context.Context, room string) (string, error)
}

// ErrNotRetained means a [Store] no longer holds every message after the
// requested one: a client resuming from there has missed something.
var ErrNotRetained = errors.New("chat: messages no longer retained")

// Group commit. With a Store, every message the hub accepts is queued, under
// the hub's lock, for one goroutine of the hub's (appender.run) that writes
// everything queued with one Store.Append, in ID order: while an Append is
// under way the next messages gather, so batches grow with the load and
// fan-out never waits for the store. A failed Append is retried with
// backoff, with a Warn each time. While the store is down the queue grows
// up to maxAppendQueue messages; then the oldest half of it is dropped,
// with a Warn, so that a long outage costs bounded memory (those messages
// stay in the hub's memory but never reach the Store).
const (
	maxAppendBatch = 512
	maxAppendQueue = 16 << 10
	minAppendRetry = 100 * time.Millisecond
	maxAppendRetry = 5 * time.Second
)

// An appender writes a hub's messages to its Store.
type appender struct {
	h     *Hub
	store Store

	// Guarded by h.mu.
	q    []Message // waiting, in ID order; the first busy are being appended
	busy int
	lost uint64 // the greatest ID dropped from q, never stored

	wake   chan struct{} // the queue is no longer empty
	quit   chan struct{} // closed by Shutdown: append what is queued and exit
	quitMu sync.Once
	ctx    context.Context // cancelled when Shutdown stops waiting
	cancel context.CancelFunc
	done   chan struct{} // closed when run has exited
}

func newAppender(h *Hub, s Store) *appender {
	a := &appender{
		h:     h,
		store: s,
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a
}

// pushLocked queues m, a message the hub has just accepted, for the store.
// It never blocks.
func (a *appender) pushLocked(m *Message) {
	if len(a.q) >= maxAppendQueue {
		drop := (len(a.q) - a.busy) / 2
		if id, err := strconv.ParseUint(a.q[a.busy+drop-1].ID, 10, 64); err == nil {
			a.lost = max(a.lost, id)
		}
		copy(a.q[a.busy:], a.q[a.busy+drop:])
		clear(a.q[len(a.q)-drop:])
		a.q = a.q[:len(a.q)-drop]
		a.h.log.Warn("chat: store is behind, dropping the oldest messages waiting for it",
			"dropped", drop, "waiting", len(a.q))
	}
	a.q = append(a.q, *m)
	if len(a.q) == 1 {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// run appends what is queued until Shutdown has it flush the queue (quit)
// or gives up (ctx).
func (a *appender) run() {
	defer close(a.done)
	h := a.h
	var retry time.Duration
	for {
		h.mu.Lock()
		n := min(len(a.q), maxAppendBatch)
		batch := slices.Clone(a.q[:n])
		a.busy = n
		h.mu.Unlock()
		if n == 0 {
			select {
			case <-a.wake:
			case <-a.quit:
				h.mu.Lock()
				empty := len(a.q) == 0
				h.mu.Unlock()
				if empty {
					return
				}
			case <-a.ctx.Done():
				return
			}
			continue
		}

		ctx, cancel := context.WithTimeout(a.ctx, h.opts.WriteTimeout)
		err := a.store.Append(ctx, h.opts.Name, batch)
		cancel()
		h.mu.Lock()
		if err == nil {
			k := copy(a.q, a.q[a.busy:])
			clear(a.q[k:])
			a.q = a.q[:k]
			if cap(a.q) > 4*maxAppendBatch && k < maxAppendBatch {
				a.q = slices.Clip(a.q) // a backlog's worth
			}
		}
		a.busy = 0
		waiting := len(a.q)
		h.mu.Unlock()
		if err == nil {
			if retry > 0 {
				h.log.Warn("chat: store append works again", "waiting", waiting)
			}
			retry = 0
			continue
		}
		if a.ctx.Err() != nil {
			return
		}
		h.met.storeErrors.Add(1)
		retry = min(maxAppendRetry, max(minAppendRetry, 2*retry))
		h.log.Warn("chat: store append failed, retrying", "err", err, "waiting", waiting, "retry_in", retry)
		t := time.NewTimer(retry)
		select {
		case <-t.C:
		case <-a.ctx.Done():
			t.Stop()
			return
		}
	}
}

// flush has run append everything queued and exit, waiting until it has
// or until ctx ends; then it stops run, loses what is still queued (with
// a Warn) and returns ctx.Err().
func (a *appender) flush(ctx context.Context) error {
	a.quitMu.Do(func() { close(a.quit) })
	var err error
	select {
	case <-a.done:
	case <-ctx.Done():
		err = ctx.Err()
		a.cancel()
		<-a.done
		a.h.mu.Lock()
		lost := len(a.q)
		a.h.mu.Unlock()
		if lost > 0 {
			a.h.log.Warn("chat: shutdown ended before the store had every message", "lost", lost)
		}
	}
	a.cancel()
	return err
}

// loadStore reads from the Store what NewHub needs: the last message ID,
// from which a hub without a Broker numbers on, and the history (a hub
// with a Broker gets it from the Broker). A Store that cannot be read is
// no reason not to serve: the hub logs a Warn and starts with what it
// could read. If the last ID is unknown, a hub without a Broker numbers
// its messages from the clock (Unix microseconds) instead, which no
// earlier ID can exceed, so that IDs still never repeat.
func (h *Hub) loadStore() {
	s, room := h.opts.Store, h.opts.Name
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.WriteTimeout)
	defer cancel()
	var last uint64
	id, err := s.LastID(ctx, room)
	if err == nil && id != "" {
		last, err = strconv.ParseUint(id, 10, 64)
	}
	if err != nil {
		h.met.storeErrors.Add(1)
		if h.opts.Broker == nil {
			last = uint64(time.Now().UnixMicro())
			h.log.Warn("chat: cannot read the store's last message id; numbering messages from the clock",
				"err", err, "from", last)
		} else {
			h.log.Warn("chat: cannot read the store's last message id", "err", err)
		}
	}
	if h.opts.Broker == nil {
		h.seq = last
	}
	h.mem.base, h.mem.last = last, last
	if h.opts.Broker != nil || h.opts.HistorySize <= 0 {
		return
	}
	msgs, err := s.Latest(ctx, room, h.opts.HistorySize)
	if err != nil {
		h.met.storeErrors.Add(1)
		h.log.Warn("chat: cannot read the history from the store; starting without it", "err", err)
		return
	}
	for _, m := range msgs {
		id, err := strconv.ParseUint(m.ID, 10, 64)
		if err != nil {
			h.met.storeErrors.Add(1)
			h.log.Warn("chat: invalid message id in the store", "id", m.ID)
			continue
		}
		h.mem.add(entry{id: id, msg: m, json: appendMessageJSON(nil, &m, h.opts.FilesURL, "")}) // a Store keeps no Origin
	}
}

// storeLocked queues m, just accepted, for the Store, if any. With a
// Broker, where every hub of the room delivers every message, a message is
// stored by the hub its sender is connected to (from, if known, is the
// sender), and a system message, or one whose sender is no member (from
// outside the room: see Hub.Deliver), by every hub (the Store skips the
// copies: Hub.Post on any hub stores it even if that hub stops at once).
func (h *Hub) storeLocked(m *Message, from *member) {
	if h.ap == nil {
		return
	}
	if h.opts.Broker != nil && !m.System {
		if from == nil {
			from = h.members[nameKey(m.Username)]
		}
		if from != nil && !from.local {
			return
		}
	}
	h.ap.pushLocked(m)
}
