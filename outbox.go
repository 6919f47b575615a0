package chat

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
)

// The write side of a hub.
//
// Every broadcast frame is appended once to the hub's log, a sequence of
// byte chunks in which frames lie back to back. Each subscribed connection
// has a cursor into the log; writing to it means writing the log from its
// cursor to the end, which is a slice or two of a chunk: one writev, no
// copy, however many frames it holds. Frames for one connection only (the
// users snapshot, history, errors, private messages, pings, the close
// frame) wait in its priv list, each tagged with the log offset it follows.
//
// Connections with something to write wait in the ready queue, oldest
// first, for one of a few writer goroutines (at most GOMAXPROCS per hub,
// running only while the queue is not empty). A writer takes a connection,
// writes everything it has, and puts it back at the end of the queue if
// more arrived meanwhile. When the writers are busy the queue is long, so
// each connection's next write carries everything that arrived in between:
// batches grow with the load. When they are idle a frame is written at
// once. Presence (joins and leaves) may also wait in the later queue (see
// pacer): for the connection's gap, and while a storm of joins
// or leaves lasts, so that a room of thousands forming (every join
// announced to every member) costs one or two large writes per connection,
// after the storm, rather than one system call per frame during it, when
// the new members' handshakes need the CPU; a message, or a frame for the
// connection alone, ends the wait.
//
// A member who joins during such a storm, into a room whose users snapshot
// is large, is owed its snapshot (owedSnap) instead of being sent it with
// its join event: it waits with the presence, and when it goes out it is
// the snapshot of that moment, covering every join since, whose events the
// connection is then not sent. A room of thousands forming thus costs each
// joiner one snapshot of the whole room after the storm, rather than a
// snapshot of the room at its join during the storm and the events of all
// later joins after it. The snapshot is pinned to the log (owedSnap.fixed)
// and written at once before anything that it must not cover is appended:
// a message, a leave, a change of order.
//
// A writer does not wait on a slow connection: on Linux it writes with a
// writev that does not block and arms no timer (writeNow), elsewhere with a
// deadline tryWrite away, and what the socket does not take is handed to a
// goroutine of the connection's own (the slow list) that finishes it under
// the full WriteTimeout. A connection that falls more than SendQueue
// messages behind the log is disconnected as too slow, where a join or
// leave counts as 1/msgWeight of a message; the log keeps just enough
// chunks that every connection within that limit can still be served.
const (
	minChunk = 4 << 10
	maxChunk = 64 << 10
	tryWrite = 500 * time.Microsecond

	// msgWeight is what a message adds to a connection's lag, in units of
	// a join or leave: presence frames are small and, once a storm of them
	// is over, quickly written, so a connection may fall msgWeight times
	// as many of them behind as messages.
	msgWeight = 16
)

// wstate is where a connection is in the outbox.
type wstate uint8

const (
	wIdle    wstate = iota // nothing to write (in o.idle if subscribed)
	wReady                 // in o.ready: to be written now
	wLater                 // in o.later: to be written once its gap has passed
	wWriting               // a writer has it
	wSlow                  // its own goroutine is finishing a write (in o.slow)
	wDone                  // finished: nothing more is ever written
)

// A chunk is a piece of the log. Bytes below len(buf) never change.
type chunk struct {
	base uint64 // log offset of buf[0]
	lag  uint64 // lag units (see msgWeight) in the log before this chunk
	msgs uint64 // messages in the log before this chunk
	buf  []byte
}

// A privFrame is a frame for one connection, written once its log cursor
// reaches at.
type privFrame struct {
	at uint64
	b  []byte
}

// An owedSnap is the users snapshot (and the history after it) that a
// member joining during a storm is owed. The log from from to the point
// where the snapshot is valid holds only joins; the snapshot covers them
// and they are not written to the connection. Until fixed, the snapshot is
// valid at the log's end, as outbox.snap is.
type owedSnap struct {
	from  uint64    // log offset after the member's own join event
	fixed bool      // pinned to at, with body
	at    uint64    // fixed: the log offset at which body is valid
	body  usersSnap // fixed: the snapshot
	hist  []byte    // the history's payload, or nil
}

// A writeSide is a connection's write side: its place in the outbox. The
// outbox's mu guards it; nothing outside outbox.go touches it.
type writeSide struct {
	state     wstate
	sub       bool          // receives the hub's broadcasts
	closing   bool          // the last frame is queued: accept no more
	privMsgs  uint32        // private messages in priv, for Metrics
	off       uint64        // next log offset to write
	lag       uint64        // lag units written or skipped (see msgWeight)
	msgs      uint64        // messages in the log before off
	priv      []privFrame   // frames for this connection only
	snap      *owedSnap     // the users snapshot it is owed, if any
	idleIdx   int           // index in outbox.idle, or -1
	closeAt   uint64        // closing: write the log up to here, no further
	closeMsgs uint64        // closing: messages in the log before closeAt
	privFirst int64         // when the first private message was accepted (see stamp)
	evictBy   time.Time     // set when evicted: the last write deadline
	lastWrite time.Time     // when the last write started
	done      chan struct{} // closed when writing is finished for good
}

func newWriteSide() writeSide {
	return writeSide{idleIdx: -1, done: make(chan struct{})}
}

// An outbox is a hub's log, ready queue and writers: the write side of
// every connection of the hub. The hub, the server and the poller reach it
// through the methods from join to wait below, which frame what they are
// given, and nothing else.
//
// Lock order: Hub.mu, then outbox.mu, then poller.mu; never the other way
// round. The methods that carry the room's order (join, leave, message,
// reorder, unsubscribe, send of a private message) are called under
// Hub.mu; each takes mu itself.
type outbox struct {
	h          *Hub
	mu         sync.Mutex // guards the outbox and every client's writeSide
	chunks     []*chunk   // retained log, oldest first
	nextChunk  int        // size of the next chunk
	end        uint64     // log offset after the last frame
	urgent     uint64     // log offset after the last message: not to wait
	lag        uint64     // lag units appended so far: msgWeight per message, 1 per join or leave
	msgs       uint64     // messages appended so far
	stamps     stamps     // when the log's messages were accepted, for Metrics.Lag
	epoch      time.Time  // stamps count from here
	pace       pacer      // when presence is written
	snap       usersSnap  // the users snapshot valid at end, fixed; zero if unknown
	owing      []*client  // members that may owe a snapshot not yet fixed
	idle       []*client
	ready      fifo // write now
	later      fifo // write after the gap, in order of their last write
	slow       []*client
	subs       int // subscribed connections
	workers    int
	waiting    int           // writers waiting for the head of later
	wake       chan struct{} // tells a waiting writer that ready has work
	maxWorkers int
	wg         sync.WaitGroup // writer and slow-write goroutines
}

func (o *outbox) init(h *Hub) {
	o.h = h
	o.nextChunk = minChunk
	o.wake = make(chan struct{}, 1)
	o.maxWorkers = max(1, runtime.GOMAXPROCS(0))
	o.epoch = time.Now()
}

// join appends the join event payload to the log and records snap, the
// users snapshot (fixed), which includes the joiner. When the joiner is
// connected here (c != nil), c receives the log from its own join event
// on, then the snapshot and hist (the history's payload; nil: none); or,
// during a storm of joins into a large room (pacer.owe), c is owed them:
// they go out when its presence would, and the snapshot is then that of
// the moment (see owedSnap).
func (o *outbox) join(payload []byte, c *client, snap usersSnap, hist []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	owe := c != nil && o.pace.owe(now, o.subs, snap.size())
	off, lag := o.end, o.lag
	o.broadcastLocked(payload, kindPresence, time.Time{})
	o.setSnapLocked(snap)
	if c == nil {
		return
	}
	o.subscribeLocked(c, off, lag)
	if owe && c.w.sub {
		c.w.snap = &owedSnap{from: o.end, hist: hist}
		c.w.lastWrite = now // the hold is counted from the join
		o.owing = append(o.owing, c)
		return
	}
	// Sent straight from the cached payload, which later joins only
	// extend: its first bytes never change.
	parts, n := welcome(snap, hist)
	o.sendLocked(c, parts[:n]...)
}

// attach makes c, a further connection of a member who has joined
// already, receive the log from its end on, after payload (the member's
// join event, for c alone), snap (the users snapshot, fixed) and hist (the
// history's payload; nil: none). Nothing is appended to the log: the room
// sees no join.
func (o *outbox) attach(payload []byte, c *client, snap usersSnap, hist []byte) {
	frame := textFrame(payload)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.subscribeLocked(c, o.end, o.lag)
	parts, n := welcome(snap, hist)
	o.sendLocked(c, append([][]byte{frame}, parts[:n]...)...)
}

// leave appends the leave event payload to the log. The users snapshot is
// no longer known (those owed are pinned before the leave), and conns, the
// member's connections here, are sent no more of the log.
func (o *outbox) leave(payload []byte, conns []*client) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.setSnapLocked(usersSnap{})
	for _, c := range conns {
		o.unsubscribeLocked(c)
	}
	o.broadcastLocked(payload, kindPresence, time.Time{})
}

// message appends a public message's payload to the log, to be written to
// every subscriber at once. at is when the hub accepted it.
func (o *outbox) message(payload []byte, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.broadcastLocked(payload, kindMessage, at)
}

// typing appends a typing notice's payload to the log. It is written
// with presence, without weight (see kindTyping).
func (o *outbox) typing(payload []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.broadcastLocked(payload, kindTyping, time.Time{})
}

// reorder records a change of the members other than a join or a leave:
// the users snapshot is no longer known, and those owed are pinned.
func (o *outbox) reorder() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.setSnapLocked(usersSnap{})
}

// unsubscribe stops sending c the log.
func (o *outbox) unsubscribe(c *client) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.unsubscribeLocked(c)
}

// send queues a text frame around payload for each of to alone (a private
// message, an error), after the log written to it so far. It never
// blocks: a connection with SendQueue frames waiting is disconnected as
// too slow, so every stream that continues is complete.
func (o *outbox) send(payload []byte, to ...*client) {
	frame := textFrame(payload)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range to {
		o.sendLocked(c, frame)
	}
}

// private queues a private message's payload, which the hub accepted at
// at, for each of to alone, as send does.
func (o *outbox) private(payload []byte, at time.Time, to ...*client) {
	frame := textFrame(payload)
	t := o.stamp(at)
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range to {
		if o.sendLocked(c, frame) {
			if c.w.privMsgs == 0 {
				c.w.privFirst = t
			}
			c.w.privMsgs++
		}
	}
}

// pong answers c's ping, whose payload was payload.
func (o *outbox) pong(c *client, payload []byte) {
	frame := controlFrame(opPong, payload)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sendLocked(c, frame)
}

// ping pings each of conns.
func (o *outbox) ping(conns []*client) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range conns {
		o.sendLocked(c, pingFrame)
	}
}

// greet queues resp, the connection's 101 response, as its first bytes.
// If hold is set it is not written until something else is queued for c
// (its join: its own join event and the users snapshot; or an error and
// the close frame), so that the upgrade and the join's outcome reach the
// client in one write.
func (o *outbox) greet(c *client, resp []byte, hold bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c.w.priv == nil {
		// Room for the welcome after it too: the snapshot and the
		// history in up to six parts (see welcome).
		c.w.priv = make([]privFrame, 0, 7)
	}
	c.w.priv = append(c.w.priv, privFrame{at: o.end, b: resp})
	if !hold {
		o.scheduleLocked(c)
	}
}

// sendFramed queues frame, a whole frame that gorilla has built (the close
// frame after a protocol error, say), for c alone; a close frame ends c's
// output.
func (o *outbox) sendFramed(c *client, frame []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(frame) > 0 && frame[0]&0x0f == opClose {
		o.closeFrameLocked(c, frame)
	} else {
		o.sendLocked(c, frame)
	}
}

// close queues a close frame with code and reason after everything queued
// for c so far (closeNoFrame: none, the writer just finishes); then c
// accepts no more frames.
func (o *outbox) close(c *client, code int, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closeLocked(c, code, reason)
}

// evict closes c as close does and, unless c was closing already, counts
// it among the evictions for cause.
func (o *outbox) evict(c *client, cause evictCause, code int, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !c.w.closing {
		o.h.met.evicted(cause)
	}
	o.closeLocked(c, code, reason)
}

// release ends c's output after what is queued and waits until it has been
// written, or has failed.
func (o *outbox) release(c *client) {
	o.close(c, closeNoFrame, "")
	<-c.w.done
}

// wait waits until every writer and slow-write goroutine has exited.
func (o *outbox) wait() { o.wg.Wait() }

// What a frame broadcast through the log is.
const (
	// kindMessage is a message: written at once, msgWeight lag units.
	kindMessage = iota
	// kindPresence is a join or leave: written after the gap, held in
	// a storm (see pacer), 1 lag unit.
	kindPresence
	// kindTyping is a typing notice: written as presence is, but no
	// part of a storm, and of no weight, so that it never makes a
	// connection too slow; an owed snapshot that covers it skips it.
	kindTyping
)

// broadcastLocked appends a text frame around payload, a frame of kind,
// to the log and wakes every idle subscriber: at once for a message,
// which the hub accepted at at, after the gap for presence and typing
// notices.
func (o *outbox) broadcastLocked(payload []byte, kind int, at time.Time) {
	presence := kind != kindMessage
	if !presence {
		o.fixOwedLocked() // a snapshot must not cover a message
	}
	n := frameHeaderLen(len(payload)) + len(payload)
	var ch *chunk
	if k := len(o.chunks); k > 0 && cap(o.chunks[k-1].buf)-len(o.chunks[k-1].buf) >= n {
		ch = o.chunks[k-1]
	} else {
		size := max(n, o.nextChunk)
		o.nextChunk = min(maxChunk, 2*o.nextChunk)
		ch = &chunk{base: o.end, lag: o.lag, msgs: o.msgs, buf: make([]byte, 0, size)}
		o.chunks = append(o.chunks, ch)
	}
	ch.buf = appendFrameHeader(ch.buf, opText, len(payload))
	ch.buf = append(ch.buf, payload...)
	o.end += uint64(n)
	var now time.Time
	switch kind {
	case kindPresence:
		o.lag++
		now = time.Now()
		o.pace.presence(now, o.subs)
	case kindTyping:
		now = time.Now()
	default:
		o.lag += msgWeight
		o.msgs++
		o.stamps.push(o.stamp(at))
		o.urgent = o.end
		o.wakeLocked()
	}

	// Drop chunks no connection within the SendQueue limit still needs.
	limit := o.lagLimit()
	for len(o.chunks) > 1 && o.lag-o.chunks[1].lag >= limit {
		o.chunks[0] = nil
		o.chunks = o.chunks[1:]
		o.stamps.trim(o.chunks[0].msgs)
	}
	for _, c := range o.slow {
		if o.behindLocked(c) > limit {
			o.evictLocked(c)
		}
	}
	if len(o.idle) > 0 {
		for _, c := range o.idle {
			c.w.idleIdx = -1
			if !presence || o.pace.idleDue(now, c.w.lastWrite, o.subs) {
				c.w.state = wReady
				o.ready.push(c)
			} else {
				c.w.state = wLater
				o.later.push(c)
			}
		}
		clear(o.idle)
		o.idle = o.idle[:0]
		o.startLocked()
	}
}

// subscribeLocked makes c receive the log from offset off, which is lag
// lag units into it and has no message after it (only presence).
func (o *outbox) subscribeLocked(c *client, off, lag uint64) {
	if c.w.closing {
		return
	}
	if !c.w.sub {
		o.subs++
	}
	c.w.sub, c.w.off, c.w.lag, c.w.msgs = true, off, lag, o.msgs
	o.scheduleLocked(c)
}

// unsubscribeLocked stops sending c the log.
func (o *outbox) unsubscribeLocked(c *client) {
	if c.w.sub {
		o.subs--
	}
	c.w.sub = false
	c.w.snap = nil
	o.unidleLocked(c)
}

// sendLocked queues frame parts for c alone, after the log written so far,
// and reports whether it did.
func (o *outbox) sendLocked(c *client, parts ...[]byte) bool {
	if c.w.closing {
		return false
	}
	if len(c.w.priv) >= o.h.opts.SendQueue {
		o.evictLocked(c)
		return false
	}
	for _, p := range parts {
		c.w.priv = append(c.w.priv, privFrame{at: o.end, b: p})
	}
	o.scheduleLocked(c)
	return true
}

// setSnapLocked records body, the users snapshot (fixed), as the
// snapshot at the log's end (zero: not known, after a change that is not
// a join, about to be appended). Bytes of body never change. A change of
// the members that body does not describe fixes every owed snapshot
// first.
func (o *outbox) setSnapLocked(body usersSnap) {
	if !body.known() {
		o.fixOwedLocked()
	}
	o.snap = body
}

// fixLocked pins s, an owed snapshot, to the log's end.
func (o *outbox) fixLocked(s *owedSnap) {
	s.fixed, s.at, s.body = true, o.end, o.snap
}

// fixOwedLocked pins every owed snapshot not yet pinned to the log's end
// and has it written now: a pinned snapshot holds on to the members'
// encoding of its moment, which a leave is about to replace.
func (o *outbox) fixOwedLocked() {
	for _, c := range o.owing {
		if s := c.w.snap; s != nil && !s.fixed {
			o.fixLocked(s)
			o.scheduleLocked(c)
		}
	}
	clear(o.owing)
	o.owing = o.owing[:0]
	if cap(o.owing) > 1024 {
		o.owing = nil // a storm's worth
	}
}

// closeLocked is close with o.mu held.
func (o *outbox) closeLocked(c *client, code int, reason string) {
	var frame []byte
	if code != closeNoFrame {
		frame = closeFrame(code, reason)
	}
	o.closeFrameLocked(c, frame)
}

// closeFrameLocked queues frame, a close frame (nil: none), after
// everything queued so far; then c accepts no more frames.
func (o *outbox) closeFrameLocked(c *client, frame []byte) {
	if c.w.closing {
		return
	}
	c.w.closing = true
	c.w.closeAt, c.w.closeMsgs = o.end, o.msgs
	c.w.snap = nil // the log is written up to the close instead
	if frame != nil {
		c.w.priv = append(c.w.priv, privFrame{at: o.end, b: frame})
		// The server has decided to close: the client has the close
		// grace to answer, which nothing it sends extends, and the
		// member leaves now (its reader, woken, does that).
		c.fixReadBy(time.Now().Add(closeGraceTimeout))
		c.wake()
	}
	if c.w.state == wIdle && !o.pendingLocked(c) {
		o.finishLocked(c)
		return
	}
	o.scheduleLocked(c)
}

// evictLocked disconnects c as too slow: what it has not taken is dropped,
// and the write under way and the close frame get a short grace, not a
// full WriteTimeout.
func (o *outbox) evictLocked(c *client) {
	if c.w.closing {
		return // closing already, or done
	}
	o.h.log.Debug("chat: disconnecting slow client", "remote", c.nc.RemoteAddr())
	o.h.met.evicted(evictSlow)
	c.w.off, c.w.lag, c.w.msgs = o.end, o.lag, o.msgs
	clear(c.w.priv)
	c.w.priv = c.w.priv[:0]
	c.w.privMsgs = 0
	c.w.evictBy = time.Now().Add(closeGraceTimeout)
	if c.w.state == wSlow {
		_ = c.nc.SetWriteDeadline(c.w.evictBy)
	}
	o.closeLocked(c, closePolicy, errTextSlow)
}

// lagLimit is how far behind, in lag units, a connection may fall.
func (o *outbox) lagLimit() uint64 {
	return uint64(o.h.opts.SendQueue) * msgWeight
}

// behindLocked is how far behind c is, in lag units: msgWeight for each
// message it has yet to write and 1 for each join or leave (0 if it is not
// subscribed).
func (o *outbox) behindLocked(c *client) uint64 {
	if !c.w.sub {
		return 0
	}
	return o.lag - c.w.lag
}

// pendingLocked reports whether c has anything to write.
func (o *outbox) pendingLocked(c *client) bool {
	return len(c.w.priv) > 0 || c.w.snap != nil || (c.w.sub && c.w.off < o.limitLocked(c))
}

// limitLocked is the log offset c may be written up to.
func (o *outbox) limitLocked(c *client) uint64 {
	if c.w.closing {
		return min(c.w.closeAt, o.end)
	}
	return o.end
}

// scheduleLocked puts c in the ready queue if it is idle or waiting for
// its gap: frames for it alone (its welcome, pongs, errors, the close
// frame) go out at once.
func (o *outbox) scheduleLocked(c *client) {
	if c.w.state != wIdle && c.w.state != wLater {
		return // it is or will be looked at anyway
	}
	o.unidleLocked(c) // its entry in later, if any, is skipped
	c.w.state = wReady
	o.ready.push(c)
	o.startLocked()
}

func (o *outbox) unidleLocked(c *client) {
	i := c.w.idleIdx
	if i < 0 {
		return
	}
	last := len(o.idle) - 1
	o.idle[i] = o.idle[last]
	o.idle[i].w.idleIdx = i
	o.idle[last] = nil
	o.idle = o.idle[:last]
	c.w.idleIdx = -1
}

// fileLocked returns c, just written, to the ready queue or the idle list.
func (o *outbox) fileLocked(c *client) {
	switch {
	case len(c.w.priv) > 0 || (c.w.snap != nil && c.w.snap.fixed) || (c.w.sub && c.w.off < o.urgent):
		// Frames for it alone, or a message, which is never held back:
		// round again with the others. later is served only when ready
		// is empty, which in a room kept busy by messages it never is.
		c.w.state = wReady
		o.ready.push(c)
	case o.pendingLocked(c):
		c.w.state = wLater
		o.later.push(c)
	case c.w.closing:
		o.finishLocked(c)
	default:
		c.w.state = wIdle
		if c.w.sub {
			c.w.idleIdx = len(o.idle)
			o.idle = append(o.idle, c)
		}
		if cap(c.w.priv) > 8 {
			c.w.priv = nil
		}
	}
}

// finishLocked ends c's writing for good.
func (o *outbox) finishLocked(c *client) {
	o.unsubscribeLocked(c)
	c.w.state = wDone
	c.w.priv = nil
	c.w.privMsgs = 0
	close(c.w.done)
}

// failLocked ends c after a failed write.
func (o *outbox) failLocked(c *client) {
	c.w.closing = true
	o.finishLocked(c)
	c.closeConn()
}

func (o *outbox) startLocked() {
	if o.ready.len() == 0 && o.later.len() == 0 {
		return
	}
	if o.ready.len() > 0 {
		o.wakeLocked()
	}
	if o.workers < o.maxWorkers {
		o.workers++
		o.wg.Add(1)
		go o.writer()
	}
}

// wakeLocked tells a writer waiting for the gap of later's head that
// there is work now.
func (o *outbox) wakeLocked() {
	if o.waiting > 0 {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// holdLocked is how much longer, from now, c with presence (or an owed
// snapshot) only is to wait (see pacer.due); at most 0 if it is to be
// written now. A message is never held back, and presence only as long as
// the backlog stays well within SendQueue.
func (o *outbox) holdLocked(c *client, now time.Time) time.Duration {
	if c.w.off < o.urgent || o.behindLocked(c) > o.lagLimit()/2 {
		return 0
	}
	return o.pace.due(c.w.lastWrite, o.subs, c.w.snap != nil).Sub(now)
}

// snapDueLocked reports whether c's owed snapshot, not yet fixed, is to be
// written now: when its presence would be (holdLocked), or with a frame
// queued for it alone after its join (which must not wait and must not
// come before the snapshot).
func (o *outbox) snapDueLocked(c *client) bool {
	if n := len(c.w.priv); n > 0 && c.w.priv[n-1].at >= c.w.snap.from {
		return true
	}
	return o.holdLocked(c, time.Now()) <= 0
}

// nextLocked returns the next connection to write, waiting (without the
// lock) for the head of later if nothing is ready; nil if both are empty.
func (o *outbox) nextLocked() *client {
	for {
		if c := o.ready.pop(); c != nil {
			if c.w.state == wReady {
				return c
			}
			continue
		}
		c := o.later.peek()
		if c == nil {
			return nil
		}
		if c.w.state != wLater {
			o.later.pop()
			continue
		}
		wait := o.holdLocked(c, time.Now())
		if wait <= 0 {
			o.later.pop()
			c.w.state = wReady
			return c
		}
		o.waiting++
		o.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-o.wake:
			t.Stop()
		}
		o.mu.Lock()
		o.waiting--
	}
}

// A fifo is a queue of connections.
type fifo struct {
	items []*client
	head  int
}

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) push(c *client) { q.items = append(q.items, c) }

func (q *fifo) peek() *client {
	if q.head == len(q.items) {
		return nil
	}
	return q.items[q.head]
}

func (q *fifo) pop() *client {
	c := q.peek()
	if c == nil {
		return nil
	}
	q.items[q.head] = nil
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head >= 1024 && 2*q.head >= len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return c
}

// A batch is one write to one connection.
type batch struct {
	out      net.Buffers
	end, lag uint64    // c's cursor once written
	endMsgs  uint64    // messages in the log before end
	final    bool      // the connection is finished once written
	deadline time.Time // the eviction deadline, if any
	raw      rawWriter // writeNow's state

	// For Metrics: the bytes and messages in out, when the oldest of
	// those was accepted (see stamp; -1 if unknown), and when the write
	// started.
	bytes int
	msgs  uint64
	first int64
	at    time.Time
}

// stamp is the time at, when the hub accepted a message, as kept in
// stamps and writeSide.privFirst: in nanoseconds since the outbox's epoch
// (monotonic, when at has a monotonic reading), and at least 0.
func (o *outbox) stamp(at time.Time) int64 {
	return max(at.Sub(o.epoch).Nanoseconds(), 0)
}

// takeLocked fills b with everything c has to write and reports whether
// there is anything. c.w.state is wWriting on return if so.
func (o *outbox) takeLocked(c *client, b *batch) bool {
	if o.behindLocked(c) > o.lagLimit() {
		o.evictLocked(c)
	}
	if !o.pendingLocked(c) {
		o.fileLocked(c)
		return false
	}
	c.w.state = wWriting
	b.out = b.out[:0]
	pos, limit := c.w.off, o.limitLocked(c)
	s := c.w.snap
	if s != nil && !s.fixed && o.snapDueLocked(c) {
		o.fixLocked(s)
	}
	for _, p := range c.w.priv {
		if s != nil && p.at >= s.from {
			// A frame after the join: the snapshot (due, so fixed)
			// goes first, and frames queued in the log it covers
			// follow it.
			b.out, pos = o.appendOwed(b.out, pos, s)
			s, c.w.snap = nil, nil
		}
		if c.w.sub && p.at > pos {
			b.out = o.appendLog(b.out, pos, p.at)
			pos = p.at
		}
		b.out = append(b.out, p.b)
	}
	clear(c.w.priv)
	c.w.priv = c.w.priv[:0]
	b.msgs, b.first = uint64(c.w.privMsgs), -1
	if b.msgs > 0 {
		b.first = c.w.privFirst
	}
	c.w.privMsgs = 0
	lag := o.lag
	if s != nil {
		b.out, pos = o.appendOwed(b.out, pos, s)
		if s.fixed {
			s, c.w.snap = nil, nil
		} else {
			lag = c.w.lag // the joins after s.from are still to be covered
		}
	}
	if s == nil && c.w.sub && pos < limit {
		b.out = o.appendLog(b.out, pos, limit)
		pos = limit
	}
	b.end, b.lag = max(c.w.off, pos), lag
	b.final = c.w.closing
	b.deadline = c.w.evictBy

	// The messages of the log in b: those before b.end and not before
	// c.w.off. Unsubscribed, c is written none; with an owed snapshot
	// not yet fixed, it is written the log up to the joins the snapshot
	// is to cover, and no message has come since; else the log up to
	// limit.
	b.endMsgs = c.w.msgs
	switch {
	case !c.w.sub:
	case s != nil || !c.w.closing:
		b.endMsgs = o.msgs
	default:
		b.endMsgs = c.w.closeMsgs
	}
	if b.endMsgs > c.w.msgs {
		if t, ok := o.stamps.at(c.w.msgs); ok && (b.first < 0 || t < b.first) {
			b.first = t
		}
		b.msgs += b.endMsgs - c.w.msgs
	}
	b.bytes = 0
	for _, p := range b.out {
		b.bytes += len(p)
	}
	return true
}

// appendOwed appends to out the log from pos up to s.from (c's own join
// event, if not written yet) and, if s is fixed, the snapshot, which
// covers the log from there to s.at; it returns the log offset reached.
func (o *outbox) appendOwed(out net.Buffers, pos uint64, s *owedSnap) (net.Buffers, uint64) {
	if pos < s.from {
		out = o.appendLog(out, pos, s.from)
		pos = s.from
	}
	if !s.fixed {
		return out, pos
	}
	parts, n := welcome(s.body, s.hist)
	return append(out, parts[:n]...), s.at
}

// appendLog appends the log bytes [from, to) to out, a slice per chunk.
func (o *outbox) appendLog(out net.Buffers, from, to uint64) net.Buffers {
	i := len(o.chunks) - 1
	for i > 0 && o.chunks[i].base > from {
		i--
	}
	for ; i < len(o.chunks) && from < to; i++ {
		ch := o.chunks[i]
		lo := from - ch.base
		hi := min(to-ch.base, uint64(len(ch.buf)))
		if lo < hi {
			out = append(out, ch.buf[lo:hi])
		}
		from = ch.base + hi
	}
	return out
}

// writeOnce writes b to c without waiting for a slow client: where the
// connection allows, with a writev that does not block (writeNow), else
// with a deadline tryWrite away. blocked reports that part of b is left.
func (o *outbox) writeOnce(c *client, b *batch) (blocked bool, err error) {
	if c.rc != nil {
		return writeNow(c.rc, &b.out, &b.raw)
	}
	dl := c.w.lastWrite.Add(tryWrite)
	if !b.deadline.IsZero() && b.deadline.Before(dl) {
		dl = b.deadline
	}
	_ = c.nc.SetWriteDeadline(dl)
	_, err = b.out.WriteTo(c.nc)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && len(b.out) > 0 {
		return true, nil
	}
	return false, err
}

// writer serves the ready and later queues until both are empty.
func (o *outbox) writer() {
	defer o.wg.Done()
	var b batch
	var t tally
	o.mu.Lock()
	for {
		c := o.nextLocked()
		if c == nil {
			break
		}
		if !o.takeLocked(c, &b) {
			continue
		}
		c.w.lastWrite = time.Now()
		b.at = c.w.lastWrite
		o.mu.Unlock()

		blocked, err := o.writeOnce(c, &b)
		o.mu.Lock()
		if blocked && !b.deadline.IsZero() && !time.Now().Before(b.deadline) {
			err = os.ErrDeadlineExceeded
		}
		if blocked && err == nil {
			// Not finished at once: let the connection finish on its own.
			c.w.state = wSlow
			o.slow = append(o.slow, c)
			slow := batch{out: append(net.Buffers(nil), b.out...), end: b.end, lag: b.lag, endMsgs: b.endMsgs, final: b.final,
				bytes: b.bytes, msgs: b.msgs, first: b.first, at: b.at}
			o.wg.Add(1)
			go o.slowWrite(c, &slow)
		} else {
			o.doneLocked(c, &b, err, &t)
			if t.writes >= tallyEvery {
				t.flush(&o.h.met)
			}
		}
		clear(b.out)
		b.out = b.out[:0]
	}
	t.flush(&o.h.met)
	o.workers--
	if o.workers == 0 {
		// Both queues are empty: let a large room's queues go.
		for _, q := range []*fifo{&o.ready, &o.later} {
			if cap(q.items) > 1024 {
				q.items = nil
			}
		}
	}
	if o.workers == 0 && len(o.slow) == 0 && len(o.chunks) > 1 {
		// Every subscriber is idle, at the end of the log: only the chunk
		// being filled is still of use.
		last := o.chunks[len(o.chunks)-1]
		clear(o.chunks)
		o.chunks = append(o.chunks[:0], last)
		o.stamps.trim(last.msgs)
	}
	o.mu.Unlock()
}

// slowWrite finishes a batch that a writer could not finish at once, under
// the connection's full write deadline.
func (o *outbox) slowWrite(c *client, b *batch) {
	defer o.wg.Done()
	o.mu.Lock()
	dl := c.w.evictBy
	if dl.IsZero() {
		dl = time.Now().Add(o.h.opts.WriteTimeout)
	}
	_ = c.nc.SetWriteDeadline(dl)
	o.mu.Unlock()
	_, err := b.out.WriteTo(c.nc)
	o.mu.Lock()
	if err == nil && c.rc != nil && c.w.evictBy.IsZero() {
		// writeNow fails once a deadline has passed.
		err = c.nc.SetWriteDeadline(time.Time{})
	}
	for i, s := range o.slow {
		if s == c {
			last := len(o.slow) - 1
			o.slow[i] = o.slow[last]
			o.slow[last] = nil
			o.slow = o.slow[:last]
			break
		}
	}
	var t tally
	o.doneLocked(c, b, err, &t)
	t.flush(&o.h.met) // under mu, as the writers do: an idle outbox has counted all
	o.startLocked()
	o.mu.Unlock()
}

// doneLocked records the outcome of writing b to c, and counts it in t
// if it succeeded.
func (o *outbox) doneLocked(c *client, b *batch, err error, t *tally) {
	if err != nil {
		o.failLocked(c)
		return
	}
	var lag time.Duration
	if b.first >= 0 {
		lag = b.at.Sub(o.epoch) - time.Duration(b.first)
	}
	t.add(b.bytes, b.msgs, lag)
	if c.w.off < b.end {
		c.w.off, c.w.lag, c.w.msgs = b.end, b.lag, b.endMsgs
	}
	if b.final {
		// The close frame is out; give the client a moment to answer.
		c.fixReadBy(time.Now().Add(closeGraceTimeout))
		c.wake()
		o.finishLocked(c)
		return
	}
	o.fileLocked(c)
}

// WebSocket framing, done here only: the hub and the connections hand the
// outbox payloads. Server frames are never masked (RFC 6455 section 5.1),
// so a frame is a 2-10 byte header followed by the payload, and one encoded
// frame can be written to every connection as it is.

const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// maxFrameHeader is the longest frame header.
const maxFrameHeader = 10

// frameHeaderLen is the length of a frame header for a payload of n bytes.
func frameHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	}
	return 10
}

// appendFrameHeader appends the header of a complete, final, unmasked frame
// with opcode op and a payload of n bytes.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

// newFrame returns a complete, final, unmasked frame with the given opcode
// around payload, built by calling fill on a buffer with room for the header.
func newFrame(op byte, payloadLen int, fill func([]byte) []byte) []byte {
	b := make([]byte, 0, frameHeaderLen(payloadLen)+payloadLen)
	return fill(appendFrameHeader(b, op, payloadLen))
}

// textFrame frames an encoded JSON payload as one text frame.
func textFrame(payload []byte) []byte {
	return newFrame(opText, len(payload), func(b []byte) []byte { return append(b, payload...) })
}

// closeFrame builds a close frame with a status code and a reason, which is
// cut to fit the 125-byte limit of control frames.
func closeFrame(code int, reason string) []byte {
	reason = truncate(reason, 120)
	return newFrame(opClose, 2+len(reason), func(b []byte) []byte {
		b = binary.BigEndian.AppendUint16(b, uint16(code))
		return append(b, reason...)
	})
}

// controlFrame builds a ping or pong with a payload of at most 125 bytes.
func controlFrame(op byte, payload []byte) []byte {
	return newFrame(op, len(payload), func(b []byte) []byte { return append(b, payload...) })
}

// pingFrame is shared by every ping: frames are never modified once built.
var pingFrame = controlFrame(opPing, nil)

// welcome returns the parts of a joiner's welcome: the users snapshot
// frame around snap and, unless hist is nil, the history frame around
// hist. The payloads are not copied; the frame headers and the pieces
// between snap's parts share one small buffer.
func welcome(snap usersSnap, hist []byte) (parts [6][]byte, n int) {
	b := make([]byte, 0, 2*maxFrameHeader+len(profsStart)+len(profsEnd))
	b = appendFrameHeader(b, opText, snap.size())
	parts[0], parts[1], n = b, snap.list, 2
	i := len(b)
	if len(snap.profs) == 0 {
		b = append(b, usersEnd...)
	} else {
		b = append(b, profsStart...)
		parts[2], parts[3], n = b[i:], snap.profs, 4
		i = len(b)
		b = append(b, profsEnd...)
	}
	if hist != nil {
		b = appendFrameHeader(b, opText, len(hist))
	}
	parts[n] = b[i:]
	n++
	if hist != nil {
		parts[n] = hist
		n++
	}
	return parts, n
}
