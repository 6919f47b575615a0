package main

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"
)

// runState is shared by all clients of one workload against one target. It
// counts deliveries, records latencies, tracks per-message completion for
// the senders' windows and, for hubchat, room formation. All methods are
// safe for concurrent use by the clients' reader goroutines.
type runState struct {
	// Room formation (hubchat): the number of members every client must know.
	roomSize int
	formed   atomic.Int64
	formedAt atomic.Int64 // UnixNano when the last client got to know everyone
	formedCh chan struct{}

	received atomic.Int64 // message deliveries
	probes   atomic.Int64 // deliveries of waitRegistered's probes
	reads    atomic.Int64 // read calls on all raw clients' connections
	bytes    atomic.Int64 // bytes those calls read
	dials    hist         // each client's time from dialing to ready (dialAll)
	frames   atomic.Int64 // text messages received by raw clients
	hist     atomic.Pointer[hist]

	// Completion tracking for windowed senders: slots[s][n%len] counts the
	// deliveries of sender s's message n; when it reaches expect, one unit
	// of sems[s] is released.
	expect int32
	slots  [][]atomic.Int32
	sems   []chan struct{}

	closing     atomic.Bool  // teardown: disconnects are expected
	disconnects atomic.Int64 // connections the server closed mid-run
	leaves      atomic.Int64 // hubchat leave frames seen
	errFrames   atomic.Int64 // hubchat error frames seen

	// Resume (hubchat, huge workload): with trackIDs each client keeps the
	// id of the last message it received; since[id], if not 0, is the id
	// client id resumes after when it connects. History frames are counted
	// by their "resume" flag.
	trackIDs   bool
	since      []int64
	resumed    atomic.Int64
	notResumed atomic.Int64

	mu        sync.Mutex
	firstErrs []string // a few sample problems, for the report
}

func newRunState(roomSize int) *runState {
	r := &runState{roomSize: roomSize, formedCh: make(chan struct{})}
	r.hist.Store(new(hist))
	return r
}

// note keeps a few sample problem descriptions.
func (r *runState) note(s string) {
	r.mu.Lock()
	if len(r.firstErrs) < 3 {
		r.firstErrs = append(r.firstErrs, s)
	}
	r.mu.Unlock()
}

// problems returns the sample problems seen so far.
func (r *runState) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.firstErrs...)
}

// lost records that a connection ended; during teardown that is expected.
func (r *runState) lost(c *wsClient, err error) {
	if r.closing.Load() {
		return
	}
	r.disconnects.Add(1)
	r.note("client u" + itoa(c.id) + " disconnected: " + err.Error())
}

// setWindow prepares completion tracking for senders with the given window,
// each message expecting expect deliveries.
func (r *runState) setWindow(senders, window, expect int) {
	r.expect = int32(expect)
	r.slots = make([][]atomic.Int32, senders)
	r.sems = make([]chan struct{}, senders)
	for s := range senders {
		r.slots[s] = make([]atomic.Int32, 4*window)
		r.sems[s] = make(chan struct{}, window)
	}
}

// resetCounts starts a new measurement phase.
func (r *runState) resetCounts() {
	r.received.Store(0)
	r.reads.Store(0)
	r.frames.Store(0)
	r.hist.Store(new(hist))
}

var (
	bodyMarker  = []byte(`"body":"t=`)
	typePrefix  = []byte(`{"type":"`)
	typeKey     = []byte(`"type":"`)
	usersKey    = []byte(`"users":[`)
	idKey       = []byte(`"id":"`)
	resumeTrue  = []byte(`"resume":true`)
	resumeFalse = []byte(`"resume":false`)
)

// messageID returns the id of a hubchat message frame, which follows its
// type, or 0.
func messageID(p []byte) int64 {
	i := bytes.Index(p[:min(len(p), 64)], idKey)
	if i < 0 {
		return 0
	}
	id, _ := parseUint(p[i+len(idKey):])
	return max(id, 0)
}

// framesPerRead returns the text frames received per read call, or 0 if
// unknown (centrifuge-go clients).
func (r *runState) framesPerRead() float64 {
	if n := r.reads.Load(); n > 0 {
		return float64(r.frames.Load()) / float64(n)
	}
	return 0
}

const joinPrefix = `{"type":"join",`

// frameType returns the value of the "type" field of a JSON frame that
// starts with it (as every frame in this benchmark does), else searches
// the first 64 bytes.
func frameType(p []byte) []byte {
	var rest []byte
	if bytes.HasPrefix(p, typePrefix) {
		rest = p[len(typePrefix):]
	} else {
		i := bytes.Index(p[:min(len(p), 64)], typeKey)
		if i < 0 {
			return nil
		}
		rest = p[i+len(typeKey):]
	}
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return nil
}

// onFrame handles one text message from a wsClient.
func (r *runState) onFrame(c *wsClient, p []byte) {
	// Fast path for the commonest frame of a forming room.
	if len(p) > len(joinPrefix) && string(p[:len(joinPrefix)]) == joinPrefix {
		r.onJoin(c)
		return
	}
	switch string(frameType(p)) {
	case "message":
		if r.trackIDs {
			c.lastID = max(c.lastID, messageID(p))
		}
		r.onBodies(p)
	case "history":
		if bytes.Contains(p, resumeTrue) {
			r.resumed.Add(1)
		} else if bytes.Contains(p, resumeFalse) {
			r.notResumed.Add(1)
		}
	case "join":
		r.onJoin(c)
	case "users":
		r.onUsers(c, countUsers(p))
	case "leave":
		r.leaves.Add(1)
		if c.joined {
			c.known--
		}
	case "error":
		r.errFrames.Add(1)
		r.note("error frame to u" + itoa(c.id) + ": " + string(p))
	}
}

// onUsers handles a users snapshot naming n members: client c knows the
// room from here on.
func (r *runState) onUsers(c *wsClient, n int) {
	c.known = n
	c.joined = true
	r.admit(c)
	r.checkFormed(c)
}

// onJoin handles a join event: the first is client c's own, the server's
// answer to its join; those after its snapshot add a member it knows.
func (r *runState) onJoin(c *wsClient) {
	if c.joined {
		c.known++
		r.checkFormed(c)
		return
	}
	r.admit(c)
}

// admit marks client c as connected and joined: the server has announced
// its join.
func (r *runState) admit(c *wsClient) {
	if !c.admitted {
		c.admitted = true
		close(c.ready)
	}
}

// countUsers counts the names in a {"type":"users","users":[...]} frame.
func countUsers(p []byte) int {
	var u usersCounter
	u.feed(p)
	return u.names()
}

// A usersCounter counts the names of a users snapshot fed to it in pieces,
// the first of which holds the list's key; benchmark names contain no
// quotes, escapes or brackets.
type usersCounter struct {
	inList, done bool
	quotes       int
}

// feed counts the quotes in p, the next piece of the snapshot, that lie
// inside the list. It reports false if p is the first piece and has no
// list.
func (u *usersCounter) feed(p []byte) bool {
	if !u.inList {
		i := bytes.Index(p, usersKey)
		if i < 0 {
			return false
		}
		p, u.inList = p[i+len(usersKey):], true
	}
	if !u.done {
		if j := bytes.IndexByte(p, ']'); j >= 0 {
			p, u.done = p[:j], true
		}
		u.quotes += bytes.Count(p, []byte{'"'})
	}
	return true
}

// names is the number of names counted so far.
func (u *usersCounter) names() int { return u.quotes / 2 }

// checkFormed notes when client c knows every member of the room.
func (r *runState) checkFormed(c *wsClient) {
	if c.formed || r.roomSize <= 0 || c.known < r.roomSize {
		return
	}
	c.formed = true
	if r.formed.Add(1) == int64(r.roomSize) {
		r.formedAt.Store(time.Now().UnixNano())
		close(r.formedCh)
	}
}

// onBodies handles every benchmark body "t=<ns> s=<sender> n=<seq>" in p
// (one per message; gorilla's example may coalesce several per frame).
func (r *runState) onBodies(p []byte) {
	now := time.Now().UnixNano()
	h := r.hist.Load()
	for {
		i := bytes.Index(p, bodyMarker)
		if i < 0 {
			return
		}
		p = p[i+len(bodyMarker):]
		t, rest := parseUint(p)
		s, rest := parseField(rest, " s=")
		n, rest := parseField(rest, " n=")
		p = rest
		if t < 0 || s < 0 || n < 0 {
			r.note("unparsable body")
			continue
		}
		if int(s) >= len(r.slots) { // a probe from outside the window
			r.probes.Add(1)
			continue
		}
		h.add(now - t)
		r.received.Add(1)
		r.complete(int(s), n)
	}
}

// complete counts one delivery of sender s's message n and releases a
// window slot when every client has received it.
func (r *runState) complete(s int, n int64) {
	if s >= len(r.slots) {
		return
	}
	slots := r.slots[s]
	if slots[n%int64(len(slots))].Add(1) == r.expect {
		select {
		case <-r.sems[s]:
		default:
		}
	}
}

// parseUint parses leading decimal digits; -1 if there are none.
func parseUint(p []byte) (int64, []byte) {
	var v int64
	i := 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		v = v*10 + int64(p[i]-'0')
		i++
	}
	if i == 0 {
		return -1, p
	}
	return v, p[i:]
}

// parseField parses prefix followed by a decimal number.
func parseField(p []byte, prefix string) (int64, []byte) {
	if len(p) < len(prefix) || string(p[:len(prefix)]) != prefix {
		return -1, p
	}
	return parseUint(p[len(prefix):])
}

// appendMessage appends the JSON message a client sends:
// {"type":"message","body":"t=<ns> s=<sender> n=<seq>[ p=<pad>]"}.
func appendMessage(b []byte, t int64, s int, n int64, pad int) []byte {
	b = append(b, `{"type":"message","body":"t=`...)
	b = appendInt(b, t)
	b = append(b, " s="...)
	b = appendInt(b, int64(s))
	b = append(b, " n="...)
	b = appendInt(b, n)
	if pad > 0 {
		b = append(b, " p="...)
		for range pad {
			b = append(b, 'x')
		}
	}
	return append(b, `"}`...)
}
