package chat

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// recConn is a net.Conn that records what is written to it.
type recConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	buf      []byte
	writes   int
}

func (c *recConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	c.writes++
	return len(p), nil
}
func (c *recConn) Close() error                     { return nil }
func (c *recConn) SetWriteDeadline(time.Time) error { return nil }
func (c *recConn) SetReadDeadline(time.Time) error  { return nil }
func (c *recConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// A wireFrame is a decoded text frame.
type wireFrame struct {
	Type, Username, Body string
	Users                []string
	Messages             []struct{ Body string }
}

// frames decodes the text frames written so far.
func (c *recConn) frames(t *testing.T) []wireFrame {
	t.Helper()
	c.mu.Lock()
	b := append([]byte(nil), c.buf...)
	c.mu.Unlock()
	var out []wireFrame
	for len(b) > 0 {
		if len(b) < 2 || b[0] != 0x80|opText {
			t.Fatalf("not a final text frame: % x", b[:min(len(b), 8)])
		}
		n, h := int(b[1]&0x7f), 2
		switch n {
		case 126:
			n, h = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			n, h = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		var f wireFrame
		if err := json.Unmarshal(b[h:h+n], &f); err != nil {
			t.Fatalf("frame %q: %v", b[h:h+n], err)
		}
		out = append(out, f)
		b = b[h+n:]
	}
	return out
}

// events decodes the text frames written so far into "type:name",
// "message:body" or "users:count" strings.
func (c *recConn) events(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, f := range c.frames(t) {
		out = append(out, f.event())
	}
	return out
}

func (f wireFrame) event() string {
	switch f.Type {
	case typeMessage:
		return "message:" + f.Body
	case typeUsers:
		return fmt.Sprintf("users:%d", len(f.Users))
	default:
		return f.Type + ":" + f.Username
	}
}

// waitWritten waits until the outbox has written everything to clients.
func waitWritten(t testing.TB, h *Hub, clients []*client) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.out.mu.Lock()
		busy := 0
		for _, c := range clients {
			if c.w.state != wIdle || h.out.pendingLocked(c) {
				busy++
			}
		}
		h.out.mu.Unlock()
		if busy == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, c := range clients {
				t.Logf("state %d off %d end %d priv %d workers %d ready %d later %d", c.w.state, c.w.off, h.out.end, len(c.w.priv), h.out.workers, h.out.ready.len(), h.out.later.len())
			}
			t.Fatalf("%d clients still have frames to write", busy)
		}
		time.Sleep(time.Millisecond) // polling, with a deadline
	}
}

// TestOutboxStreams: members joining in a burst while messages are posted
// each receive, exactly once and in the room's order, every join after
// their own, their snapshot right after their join, and every message;
// presence is coalesced into few writes, and once everything is written
// the log keeps no more than the chunk being filled.
func TestOutboxStreams(t *testing.T) {
	h := NewHub(Options{HistorySize: -1, PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	const n = 200
	conns := make([]*recConn, n)
	clients := make([]*client, n)
	var want []string // the room's broadcast order
	for i := range n {
		conns[i] = &recConn{}
		clients[i] = newClient(h, nil, nil)
		clients[i].nc = conns[i]
		name := "u" + strconv.Itoa(i)
		h.mu.Lock()
		h.applyJoinLocked(name, nameKey(name), Profile{}, clients[i])
		want = append(want, "join:"+name)
		if i%20 == 19 {
			body := "after " + name
			h.seq++
			h.applyMessageLocked(&Message{ID: strconv.FormatUint(h.seq, 10), Username: name, Body: body, Time: time.Now()})
			want = append(want, "message:"+body)
		}
		h.mu.Unlock()
	}
	waitWritten(t, h, clients)

	writes := 0
	for i, c := range conns {
		first := 0
		for want[first] != "join:u"+strconv.Itoa(i) {
			first++
		}
		wantI := append([]string{want[first], fmt.Sprintf("users:%d", i+1)}, want[first+1:]...)
		if diff := cmp.Diff(wantI, c.events(t)); diff != "" {
			t.Fatalf("u%d's stream (-want +got):\n%s", i, diff)
		}
		writes += c.writes
	}
	// Each member would need one write per event if nothing were batched.
	events := 0
	for i := range n {
		events += n - i
	}
	t.Logf("%d events in %d writes", events, writes)
	h.out.mu.Lock()
	chunks := len(h.out.chunks)
	h.out.mu.Unlock()
	if chunks > 1 {
		t.Errorf("log keeps %d chunks after everything was written, want at most 1", chunks)
	}
}

// TestOutboxOwedSnapshot: members joining a large room in a storm, while
// members of another process join and leave and messages are posted, may
// be owed their users snapshot. Each receives its own join event first;
// then one snapshot, which is the room as it was at some point after that
// join with only joins in between (the snapshot covers them, and their
// events are not sent), and the history as of its join; then every event
// after that point, exactly once and in the room's order. A private
// message queued for it while it waits follows its snapshot.
func TestOutboxOwedSnapshot(t *testing.T) {
	h := NewHub(Options{HistorySize: 2, PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	const n = 400
	pad := strings.Repeat("x", 24) // 4 KiB of snapshot after ~130 names
	var (
		room    []string // the room's broadcast order
		bodies  []string // public messages so far
		remotes []string // members of another process, oldest first
		joinAt  = make([]int, n)
		histAt  = make([][]string, n)
		conns   = make([]*recConn, n)
		clients = make([]*client, n)
	)
	for i := range n {
		conns[i] = &recConn{}
		clients[i] = newClient(h, nil, nil)
		clients[i].nc = conns[i]
		name := fmt.Sprintf("%s-%03d", pad, i)
		h.mu.Lock()
		h.applyJoinLocked(name, nameKey(name), Profile{}, clients[i])
		joinAt[i] = len(room)
		room = append(room, "join:"+name)
		histAt[i] = slices.Clone(bodies[max(0, len(bodies)-2):])
		switch {
		case i%25 == 12: // private, to the member who joined just before
			to, body := fmt.Sprintf("%s-%03d", pad, i-1), "psst "+name
			h.applyMessageLocked(&Message{ID: "0", Username: name, To: to, Body: body, Time: time.Now()})
			room = append(room, "pm:"+name+":"+to+":"+body)
		case i%25 == 24:
			body := "after " + name
			h.seq++
			h.applyMessageLocked(&Message{ID: strconv.FormatUint(h.seq, 10), Username: name, Body: body, Time: time.Now()})
			room = append(room, "message:"+body)
			bodies = append(bodies, body)
		case i%10 == 3:
			r := fmt.Sprintf("%s-r%03d", pad, i)
			h.applyJoinLocked(r, nameKey(r), Profile{}, nil)
			room = append(room, "join:"+r)
			remotes = append(remotes, r)
		case i%10 == 7 && len(remotes) > 0:
			r := remotes[0]
			remotes = remotes[1:]
			h.applyLeaveLocked(nameKey(r))
			room = append(room, "leave:"+r)
		}
		// A snapshot pinned before a message or leave is written at once,
		// not held back with the presence.
		waiting, state := -1, wIdle
		h.out.mu.Lock()
		for j, c := range clients[:i+1] {
			if c.w.snap != nil && c.w.snap.fixed && (c.w.state == wIdle || c.w.state == wLater) {
				waiting, state = j, c.w.state
			}
		}
		h.out.mu.Unlock()
		h.mu.Unlock()
		if waiting >= 0 {
			t.Fatalf("client %d: pinned snapshot waits (state %d)", waiting, state)
		}
	}
	waitWritten(t, h, clients)

	owed := 0
	for i, c := range conns {
		// What the room sends client i: broadcasts, and the private
		// messages from or to it.
		self := fmt.Sprintf("%s-%03d", pad, i)
		var view []string
		own := -1
		for j, e := range room {
			if j == joinAt[i] {
				own = len(view)
			}
			if rest, ok := strings.CutPrefix(e, "pm:"); ok {
				parts := strings.SplitN(rest, ":", 3)
				if parts[0] == self || parts[1] == self {
					view = append(view, "message:"+parts[2])
				}
				continue
			}
			view = append(view, e)
		}
		fs := c.frames(t)
		if len(fs) < 3 || fs[0].event() != view[own] || fs[1].Type != typeUsers || fs[2].Type != "history" {
			t.Fatalf("client %d: stream starts %v, want its join, users, history", i, fs[:min(3, len(fs))])
		}
		// Find the point of the room's order at which the snapshot is the
		// member list, with only joins (and private messages, which then
		// follow the snapshot) between the client's join and it.
		var members []string
		apply := func(e string) {
			typ, name, _ := strings.Cut(e, ":")
			switch typ {
			case "join":
				members = append(members, name)
			case "leave":
				members = slices.DeleteFunc(members, func(m string) bool { return m == name })
			}
		}
		for _, e := range view[:own+1] {
			apply(e)
		}
		k := own + 1
		var moved []string
		for !slices.Equal(members, fs[1].Users) {
			switch {
			case k < len(view) && strings.HasPrefix(view[k], "join:"):
				apply(view[k])
			case k < len(view) && strings.HasPrefix(view[k], "message:psst "):
				moved = append(moved, view[k])
			default:
				t.Fatalf("client %d: snapshot of %d names is the room at no point after its join with only joins since", i, len(fs[1].Users))
			}
			k++
		}
		if k > own+1 {
			owed++
		}
		var hist []string
		for _, m := range fs[2].Messages {
			hist = append(hist, m.Body)
		}
		if diff := cmp.Diff(histAt[i], hist, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("client %d: history (-want +got):\n%s", i, diff)
		}
		var got []string
		for _, f := range fs[3:] {
			got = append(got, f.event())
		}
		if diff := cmp.Diff(append(moved, view[k:]...), got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("client %d: events after its snapshot (-want +got):\n%s", i, diff)
		}
	}
	t.Logf("%d of %d snapshots covered later joins", owed, n)
	if owed == 0 {
		t.Error("no snapshot was owed and covered later joins")
	}
}

// TestOutboxSnapshotAtOnce: outside a storm, a member joining a large room
// gets its snapshot right after its join, even just after another join:
// each of two joiners in quick succession receives a snapshot without the
// other, then the other's join event.
func TestOutboxSnapshotAtOnce(t *testing.T) {
	h := NewHub(Options{HistorySize: -1, PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	pad := strings.Repeat("x", 24)
	h.mu.Lock()
	for i := range 200 { // members of another process: a snapshot of 6 KiB
		r := fmt.Sprintf("%s-r%03d", pad, i)
		h.applyJoinLocked(r, nameKey(r), Profile{}, nil)
	}
	h.out.mu.Lock()
	h.out.pace.last = time.Now().Add(-time.Hour) // the storm is long over
	h.out.mu.Unlock()
	ca, cb := newClient(h, nil, nil), newClient(h, nil, nil)
	a, b := &recConn{}, &recConn{}
	ca.nc, cb.nc = a, b
	h.applyJoinLocked("a", "a", Profile{}, ca)
	h.applyJoinLocked("b", "b", Profile{}, cb)
	h.mu.Unlock()
	waitWritten(t, h, []*client{ca, cb})
	if diff := cmp.Diff([]string{"join:a", "users:201", "join:b"}, a.events(t)); diff != "" {
		t.Errorf("a's stream (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"join:b", "users:202"}, b.events(t)); diff != "" {
		t.Errorf("b's stream (-want +got):\n%s", diff)
	}
}

// TestOutboxEvictsLagging: a connection more than SendQueue frames behind
// is disconnected with 1008 instead of its backlog being written, while the
// others receive everything.
func TestOutboxEvictsLagging(t *testing.T) {
	h := NewHub(Options{SendQueue: 8, HistorySize: -1, PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	fast, lag := &recConn{}, &recConn{}
	cf, cl := newClient(h, nil, nil), newClient(h, nil, nil)
	cf.nc, cl.nc = fast, lag
	h.mu.Lock()
	h.applyJoinLocked("fast", "fast", Profile{}, cf)
	h.applyJoinLocked("lag", "lag", Profile{}, cl)
	h.mu.Unlock()
	waitWritten(t, h, []*client{cf, cl})

	// Hold lag back as a stuck writer would, then post past its limit.
	h.out.mu.Lock()
	h.out.unidleLocked(cl)
	cl.w.state = wSlow
	h.out.slow = append(h.out.slow, cl)
	h.out.mu.Unlock()
	for i := range 10 {
		if err := h.Post(t.Context(), "m"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		waitWritten(t, h, []*client{cf}) // fast keeps up
	}
	h.out.mu.Lock()
	closing, evicted := cl.w.closing, !cl.w.evictBy.IsZero()
	h.out.slow = h.out.slow[:0]
	cl.w.state = wWriting
	h.out.doneLocked(cl, &batch{first: -1}, nil, &tally{}) // the stuck write finishes
	h.out.startLocked()
	h.out.mu.Unlock()
	if !closing || !evicted {
		t.Fatalf("lag: closing %v, evicted %v after falling 10 frames behind a SendQueue of 8", closing, evicted)
	}
	select {
	case <-cl.w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("lag's close frame was not written")
	}
	lag.mu.Lock()
	tail := lag.buf[len(lag.buf)-len(errTextSlow)-4:]
	lag.mu.Unlock()
	if tail[0] != 0x80|opClose || binary.BigEndian.Uint16(tail[2:]) != closePolicy {
		t.Errorf("lag's last frame % x, want a 1008 close", tail[:4])
	}
	waitWritten(t, h, []*client{cf})
	got := fast.events(t)
	if len(got) != 2+1+10 || got[len(got)-1] != "message:m9" {
		t.Errorf("fast received %v, want its join, users, lag's join and 10 messages", got)
	}
}

// TestOutboxPresenceLag: joins and leaves count 1/msgWeight of a message
// towards SendQueue, so a join storm that a stuck connection falls behind
// on does not disconnect it, and once unstuck it receives every event.
func TestOutboxPresenceLag(t *testing.T) {
	h := NewHub(Options{SendQueue: 8, HistorySize: -1, PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	lag := &recConn{}
	cl := newClient(h, nil, nil)
	cl.nc = lag
	h.mu.Lock()
	h.applyJoinLocked("lag", "lag", Profile{}, cl)
	h.mu.Unlock()
	waitWritten(t, h, []*client{cl})

	h.out.mu.Lock()
	h.out.unidleLocked(cl)
	cl.w.state = wSlow
	h.out.slow = append(h.out.slow, cl)
	h.out.mu.Unlock()
	const joins = 5 * 8 // five times SendQueue, well within SendQueue*msgWeight
	want := []string{"join:lag", "users:1"}
	h.mu.Lock()
	for i := range joins {
		name := "u" + strconv.Itoa(i)
		h.applyJoinLocked(name, name, Profile{}, nil) // a member of another process
		want = append(want, "join:"+name)
	}
	h.mu.Unlock()
	h.out.mu.Lock()
	closing := cl.w.closing
	h.out.slow = h.out.slow[:0]
	cl.w.state = wWriting
	h.out.doneLocked(cl, &batch{first: -1}, nil, &tally{})
	h.out.startLocked()
	h.out.mu.Unlock()
	if closing {
		t.Fatalf("disconnected after %d joins with SendQueue 8; presence should count 1/%d", joins, msgWeight)
	}
	waitWritten(t, h, []*client{cl})
	if diff := cmp.Diff(want, lag.events(t)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
}

// TestOutboxSlowResumes: over a real socket (written with writeNow where
// the platform has it), a client that stops reading until its socket is
// full is handed to a slow write, and once it reads again it receives
// every frame in order, including frames written after the slow write's
// deadline has passed.
func TestOutboxSlowResumes(t *testing.T) {
	const writeTimeout = time.Second
	h := NewHub(Options{HistorySize: -1, PingInterval: -1, RateLimit: -1, WriteTimeout: writeTimeout,
		Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	sc, cc := tcpPair(t)
	// A small send buffer, so that a few hundred KiB fill the socket (a
	// small receive buffer too would stall loopback TCP, whose segments
	// are 64 KiB, in zero-window probes).
	_ = sc.(*net.TCPConn).SetWriteBuffer(4 << 10)

	c := newClient(h, nil, nil)
	c.nc, c.rc = sc, rawConnOf(sc)
	h.mu.Lock()
	h.applyJoinLocked("reader", "reader", Profile{}, c)
	h.mu.Unlock()

	body := strings.Repeat("x", 1000)
	want := []string{"join:reader", "users:1"}
	post := func(i int) {
		t.Helper()
		b := body + strconv.Itoa(i)
		if err := h.Post(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		want = append(want, "message:"+b)
	}
	// Post until the writer has had to leave the connection to a slow
	// write (bounded: 2,000 frames are far more than the buffers hold).
	var slowSince time.Time
	for i := 0; slowSince.IsZero(); i++ {
		if i == 2000 {
			t.Fatal("the socket never filled")
		}
		post(i)
		h.out.mu.Lock()
		if c.w.state == wSlow {
			slowSince = time.Now()
		}
		h.out.mu.Unlock()
	}

	var got []byte
	buf := make([]byte, 64<<10)
	readFrames := func(n int) {
		t.Helper()
		_ = cc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for countFrames(got) < n {
			k, err := cc.Read(buf)
			if err != nil {
				t.Fatalf("read after %d of %d frames: %v", countFrames(got), n, err)
			}
			got = append(got, buf[:k]...)
		}
	}
	readFrames(len(want))
	waitWritten(t, h, []*client{c})
	// Let the slow write's deadline pass, then write again.
	for time.Since(slowSince) < writeTimeout+100*time.Millisecond {
		time.Sleep(10 * time.Millisecond) // waiting for wall time, not for an event
	}
	for i := range 3 {
		post(-1 - i)
	}
	readFrames(len(want))
	rec := &recConn{buf: got}
	if diff := cmp.Diff(want, rec.events(t)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	h.out.mu.Lock()
	closing := c.w.closing
	h.out.mu.Unlock()
	if closing {
		t.Error("the client was disconnected")
	}
}

// countFrames counts the complete unmasked frames at the start of b.
func countFrames(b []byte) int {
	n := 0
	for len(b) >= 2 {
		l, h := int(b[1]&0x7f), 2
		switch l {
		case 126:
			if len(b) < 4 {
				return n
			}
			l, h = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return n
			}
			l, h = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		if len(b) < h+l {
			return n
		}
		b = b[h+l:]
		n++
	}
	return n
}

// TestRawConnOf: only a plain socket is written to directly, and on Linux
// it is; a wrapper that embeds one keeps its own Write.
func TestRawConnOf(t *testing.T) {
	_, nc := tcpPair(t)
	type counting struct{ *net.TCPConn }
	if rc := rawConnOf(counting{nc.(*net.TCPConn)}); rc != nil {
		t.Error("rawConnOf returned the raw connection under a wrapper")
	}
	if rc := rawConnOf(nc); (rc != nil) != (runtime.GOOS == "linux") {
		t.Errorf("rawConnOf(*net.TCPConn) = %v on %s", rc, runtime.GOOS)
	}
}

// tcpPair returns both ends of a loopback TCP connection, closed when the
// test ends.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}

// TestOutboxGreetHeld: a held 101 response is not written on its own but
// with the join that follows it, ahead of the join event and the snapshot;
// on Linux in one writev, which a loopback reader receives in one read.
func TestOutboxGreetHeld(t *testing.T) {
	h := NewHub(Options{HistorySize: -1, PingInterval: -1, RateLimit: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	sc, cc := tcpPair(t)
	c := newClient(h, nil, sc)
	resp := []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n")
	h.out.greet(c, resp, true)
	h.out.mu.Lock()
	state, ready, workers := c.w.state, h.out.ready.len(), h.out.workers
	h.out.mu.Unlock()
	if state != wIdle || ready != 0 || workers != 0 {
		t.Fatalf("after a held greeting: state %d, %d ready, %d writers; want nothing scheduled", state, ready, workers)
	}

	h.mu.Lock()
	h.applyJoinLocked("alice", "alice", Profile{}, c)
	h.mu.Unlock()
	_ = cc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	var got []byte
	for reads := 1; ; reads++ {
		n, err := cc.Read(buf)
		if err != nil {
			t.Fatalf("read %d: %v (have %q)", reads, err, got)
		}
		got = append(got, buf[:n]...)
		if len(got) >= len(resp) && countFrames(got[len(resp):]) >= 2 {
			if reads > 1 && runtime.GOOS == "linux" {
				t.Errorf("the welcome took %d reads, want 1 (one writev)", reads)
			}
			break
		}
	}
	if !strings.HasPrefix(string(got), string(resp)) {
		t.Fatalf("the connection's first bytes are %q, want the 101 response", got[:min(len(got), len(resp))])
	}
	rec := &recConn{buf: got[len(resp):]}
	if diff := cmp.Diff([]string{"join:alice", "users:1"}, rec.events(t)); diff != "" {
		t.Errorf("frames after the response (-want +got):\n%s", diff)
	}
}

// TestHijackedConn: what gorilla writes during the upgrade is kept, not
// written; after it, its writes are queued behind the outbox's frames, and
// its close frame ends the connection's output: a frame queued after it is
// dropped. Its write deadlines do not reach the connection.
func TestHijackedConn(t *testing.T) {
	h := NewHub(Options{HistorySize: -1, PingInterval: -1, RateLimit: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	rec := &recConn{}
	hc := &hijackedConn{Conn: rec}
	resp := []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n")
	if n, err := hc.Write(resp); n != len(resp) || err != nil {
		t.Fatalf("Write during the upgrade = %d, %v", n, err)
	}
	if rec.writes != 0 || string(hc.resp) != string(resp) {
		t.Fatalf("during the upgrade: %d writes, kept %q; want none and the response", rec.writes, hc.resp)
	}
	if err := hc.SetDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}

	c := newClient(h, nil, rec)
	hc.c = c
	h.out.greet(c, hc.resp, false)
	pong := controlFrame(opPong, []byte("p"))
	closing := closeFrame(closeTooBig, "")
	for _, f := range [][]byte{pong, closing} {
		if n, err := hc.Write(f); n != len(f) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	h.out.send(appendError(nil, "late"), c)
	select {
	case <-c.w.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the outbox did not finish after gorilla's close frame")
	}
	rec.mu.Lock()
	got := string(rec.buf)
	rec.mu.Unlock()
	if want := string(resp) + string(pong) + string(closing); got != want {
		t.Errorf("written %q, want %q: the response, the pong and the close frame", got, want)
	}
}

// TestOutboxMessageNotLater: a connection written while the next message
// came goes back to the ready queue, not to later: writers serve later
// only once ready is empty, and in a room that messages keep busy ready
// never is, so such a connection waited, with a message that is never to
// wait, until the messages stopped (seconds, in a room of 20,000 at 10
// messages/s). The test takes the steps of a writer itself.
func TestOutboxMessageNotLater(t *testing.T) {
	h := NewHub(Options{HistorySize: -1, PingInterval: -1, RateLimit: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	conn := &recConn{}
	c := newClient(h, nil, conn)
	h.mu.Lock()
	h.applyJoinLocked("alice", "alice", Profile{}, c)
	h.mu.Unlock()
	waitWritten(t, h, []*client{c})

	o := &h.out
	var (
		b  batch
		tl tally
	)
	o.mu.Lock()
	o.broadcastLocked([]byte(`{"type":"message","body":"1"}`), kindMessage, time.Now())
	if got := o.nextLocked(); got != c || !o.takeLocked(c, &b) {
		o.mu.Unlock()
		t.Fatal("alice is not ready to be written after a message")
	}
	o.mu.Unlock()
	if _, err := o.writeOnce(c, &b); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	o.broadcastLocked([]byte(`{"type":"message","body":"2"}`), kindMessage, time.Now())
	o.doneLocked(c, &b, nil, &tl)
	state := c.w.state
	// A writer would go on to the next connection; this one hands over
	// (the writer started for the first message may have ended already).
	o.startLocked()
	o.mu.Unlock()
	if state != wReady {
		t.Errorf("after a write, with a message pending: state %d, want %d (ready)", state, wReady)
	}
	waitWritten(t, h, []*client{c})
	want := []string{"join:alice", "users:1", "message:1", "message:2"}
	if diff := cmp.Diff(want, conn.events(t)); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
}
