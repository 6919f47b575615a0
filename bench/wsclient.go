package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// A client is one load-generator connection to a target.
type client interface {
	// send publishes msg, a JSON object {"type":"message","body":...}.
	send(msg []byte) error
	// close tears the connection down at once (TCP reset, no TIME_WAIT).
	close()
}

// wsClient is a minimal WebSocket client (RFC 6455) built for reading
// many connections cheaply: one goroutine and one 32 KiB read buffer per
// connection, no allocation per frame, and no JSON decoding: frames are
// scanned for the few fields the benchmark needs. It is used for every
// target except centrifuge.
type wsClient struct {
	id   int
	r    *runState
	nc   net.Conn
	br   *frameReader
	cent bool // speaks centrifuge's JSON protocol (see centraw.go)
	centState

	wmu  sync.Mutex // serializes writes (sender and pong replies)
	wbuf []byte
	mask [4]byte

	// Reader-goroutine state.
	scratch  []byte // assembles fragmented or large messages
	discard  int    // bytes of the last peeked payload still in br
	admitted bool   // hubchat: its own join event has arrived
	joined   bool   // hubchat: the users snapshot has arrived
	known    int    // hubchat: members this client knows about
	counted  int    // hubchat: names in the last streamed users snapshot
	frames   int64  // text messages not yet added to r.frames
	formed   bool   // hubchat: known reached the room size
	lastID   int64  // hubchat: the last message id received (runState.trackIDs)

	ready chan struct{} // closed once usable (hubchat: its join announced)
	done  chan struct{} // closed when the reader ends
}

// dialTimeout bounds one connection's TCP connect, handshake and join. It
// is generous: a server busy announcing thousands of joins may answer late,
// and how late is what the connect workload measures.
const dialTimeout = 60 * time.Second

// bigScratch holds assembly buffers for messages larger than the read
// buffer (the users snapshots of a large room), shared by all clients.
var bigScratch sync.Pool

// readBufferSize is each client's read buffer: large enough that a server
// writing big batches is read with few system calls.
const readBufferSize = 32 << 10

// wsHandshakeKey is a valid Sec-WebSocket-Key; servers only check its form.
const wsHandshakeKey = "dGhlIHNhbXBsZSBub25jZQ=="

// dialWS connects client id to ws://addr/ws?username=u<id>. If join is
// set (hubchat) it returns once the server has announced the client's
// join (its users snapshot may follow later: during a storm of joins a
// hubchat server sends it when the storm is over).
func dialWS(ctx context.Context, addr string, id int, r *runState, join bool) (client, error) {
	path := "/ws?username=u" + strconv.Itoa(id)
	if id < len(r.since) && r.since[id] > 0 {
		path += "&since=" + strconv.FormatInt(r.since[id], 10)
	}
	c, err := handshake(ctx, addr, path, id, r)
	if err != nil {
		return nil, err
	}
	if !join {
		c.admitted = true
		close(c.ready)
	}
	return c.start(ctx)
}

// start reads in the dialing goroutine until the client is ready (hubchat:
// its join announced; centrifuge: subscribed), so that setting up a connection costs
// no goroutine switch, then hands the connection to its reader goroutine.
// The handshake's deadline bounds the wait; cancelling ctx ends it at once.
func (c *wsClient) start(ctx context.Context) (client, error) {
	stop := context.AfterFunc(ctx, func() { c.nc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for !c.isReady() {
		if err := c.step(); err != nil {
			c.nc.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("before the join: %w", err)
		}
	}
	if !stop() {
		c.nc.Close()
		return nil, ctx.Err()
	}
	c.nc.SetDeadline(time.Time{})
	go c.readLoop()
	return c, nil
}

// isReady reports whether the client is usable.
func (c *wsClient) isReady() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

// clientsPerSource is how many clients share a loopback source address. A
// source address has 28,232 ephemeral ports to a given server (Linux's
// default range, 32768-60999), and connect() searches one half of them
// (one parity) first: once that half is nearly taken, at about 14,000
// connections, each connect() costs the load generator 250-700 µs of
// searching instead of ~30 µs. Blocks of 10,000 stay well clear of it.
const clientsPerSource = 10000

// sourceAddr returns the local address client id dials from: nil (the
// kernel's choice, 127.0.0.1 for a server on 127.0.0.1) for the first
// block of clients, then 127.0.0.2, 127.0.0.3, ... for each further block.
func sourceAddr(id int) net.Addr {
	k := id / clientsPerSource
	if k == 0 {
		return nil
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, byte(k/253), byte(1+k%253))}
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT on a socket about to be bound to
// a source address, so that its port is chosen at connect time, unique
// only per server address, rather than at bind time, unique per source
// address across all servers.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = setBindNoPort(int(fd))
	}); err != nil {
		return err
	}
	return serr
}

// httpEnd ends the response headers.
var httpEnd = []byte("\r\n\r\n")

// handshake opens a WebSocket connection to path on addr, with a deadline
// for the handshake and the join set; the caller calls start. The response
// is read into the frame buffer, so that the frames sent with it (a hubchat
// server's first write carries the join and the users snapshot too) are
// read by the same system call.
func handshake(ctx context.Context, addr, path string, id int, r *runState) (*wsClient, error) {
	d := net.Dialer{Timeout: dialTimeout, LocalAddr: sourceAddr(id), Control: bindNoPort}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &wsClient{id: id, r: r, nc: nc, ready: make(chan struct{}), done: make(chan struct{})}
	binary.LittleEndian.PutUint32(c.mask[:], rand.Uint32())
	deadline := time.Now().Add(dialTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	nc.SetDeadline(deadline)
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + wsHandshakeKey +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	c.br = newFrameReader(nc, readBufferSize)
	c.br.onRead = c.countRead
	c.br.onBytes = func(n int) { r.bytes.Add(int64(n)) }
	b := c.br
	for {
		if i := bytes.Index(b.buf[:b.w], httpEnd); i >= 0 {
			status, _, _ := bytes.Cut(b.buf[:i], []byte("\r\n"))
			if !bytes.HasPrefix(status, []byte("HTTP/1.1 101 ")) {
				nc.Close()
				return nil, fmt.Errorf("handshake: %s", status)
			}
			b.Discard(i + len(httpEnd))
			return c, nil
		}
		if b.w == b.size {
			nc.Close()
			return nil, errors.New("handshake: response headers too long")
		}
		n, err := b.fill()
		b.w += n
		if err != nil && n == 0 {
			nc.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
	}
}

// countRead counts a read that fills the client's buffer, i.e. a read
// system call; frames per read shows how well a server batches its writes.
func (c *wsClient) countRead() {
	c.r.reads.Add(1)
	if c.frames > 0 {
		// Counted here, before the reader may block, rather than once per
		// frame on a counter all clients share.
		c.r.frames.Add(c.frames)
		c.frames = 0
	}
}

// WebSocket opcodes.
const (
	opCont  = 0
	opText  = 1
	opClose = 8
	opPing  = 9
	opPong  = 10
)

func (c *wsClient) readLoop() {
	defer close(c.done)
	for {
		if err := c.step(); err != nil {
			c.r.lost(c, err)
			return
		}
	}
}

// step reads and handles one message; it fails when the connection ends.
func (c *wsClient) step() error {
	if c.joined {
		c.joinRun()
	}
	p, op, err := c.next()
	if err != nil {
		return err
	}
	switch op {
	case opText:
		c.frames++
		if c.cent {
			c.onCentrifuge(p)
		} else {
			c.r.onFrame(c, p)
		}
	case opUsersCounted:
		c.frames++
		c.r.onUsers(c, c.counted)
	case opClose:
		code := 0
		if len(p) >= 2 {
			code = int(binary.BigEndian.Uint16(p))
		}
		return fmt.Errorf("close frame %d %q", code, p[min(2, len(p)):])
	}
	if cap(c.scratch) > readBufferSize {
		// Do not keep a big users snapshot per client; share it.
		b := c.scratch[:0]
		bigScratch.Put(&b)
		c.scratch = nil
	}
	return nil
}

// joinRun consumes the complete join frames at the front of the read
// buffer in one tight loop, counting each as onJoin does: forming a room
// of 10,000 sends the load generator ~50 M of them, and parsing them one
// call of next at a time made it the bottleneck.
func (c *wsClient) joinRun() {
	b := c.br
	if c.discard > 0 {
		b.Discard(c.discard)
		c.discard = 0
	}
	buf := b.buf[b.r:b.w]
	i, k := 0, 0
	for len(buf)-i >= 2 && buf[i] == 0x80|opText {
		n := int(buf[i+1]) // < 126: a short, unmasked frame
		if n >= 126 || n <= len(joinPrefix) || len(buf)-i < 2+n ||
			string(buf[i+2:i+2+len(joinPrefix)]) != joinPrefix {
			break
		}
		i += 2 + n
		k++
	}
	if k > 0 {
		b.Discard(i)
		c.frames += int64(k)
		c.known += k
		c.r.checkFormed(c)
	}
}

// header reads one frame header.
func (c *wsClient) header() (fin bool, op byte, n int, err error) {
	if c.discard > 0 {
		c.br.Discard(c.discard)
		c.discard = 0
	}
	h, err := c.br.Peek(2)
	if err != nil {
		return
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	if h[1]&0x80 != 0 {
		return false, 0, 0, errors.New("masked server frame")
	}
	switch l := h[1] & 0x7f; l {
	case 126:
		if h, err = c.br.Peek(4); err != nil {
			return
		}
		n = int(binary.BigEndian.Uint16(h[2:]))
		c.br.Discard(4)
	case 127:
		if h, err = c.br.Peek(10); err != nil {
			return
		}
		n = int(binary.BigEndian.Uint64(h[2:]))
		c.br.Discard(10)
	default:
		n = int(l)
		c.br.Discard(2)
	}
	if n < 0 || n > 64<<20 {
		return false, 0, 0, fmt.Errorf("frame of %d bytes", n)
	}
	return
}

// next returns the next complete message (or control frame) and its
// opcode. The payload is valid until the following call.
func (c *wsClient) next() ([]byte, byte, error) {
	fin, op, n, err := c.header()
	if err != nil {
		return nil, 0, err
	}
	if op >= opClose || (fin && n <= c.br.Size()) {
		// Common case: a control frame, or a whole message that fits in
		// the read buffer: hand out the buffered bytes without copying.
		p, err := c.br.Peek(n)
		if err != nil {
			return nil, 0, err
		}
		c.discard = n
		if op == opPing {
			c.writeFrame(opPong, p) //nolint:errcheck // a failed write shows up on read
		}
		return p, op, nil
	}
	if fin && op == opText && !c.cent {
		// A large hubchat message is a users snapshot: count its names as
		// they arrive, rather than assemble it to count them afterwards.
		if h, err := c.br.Peek(min(n, 64)); err == nil && string(frameType(h)) == "users" {
			return nil, opUsersCounted, c.countStreamed(n)
		}
	}
	// A fragmented or large message: assemble it in scratch. header()
	// discards any control frame payload peeked in between.
	if c.scratch == nil {
		if p, ok := bigScratch.Get().(*[]byte); ok {
			c.scratch = *p
		}
	}
	c.scratch = c.scratch[:0]
	msgOp := op
	for {
		start := len(c.scratch)
		c.scratch = slices.Grow(c.scratch, n)[:start+n]
		if _, err := io.ReadFull(c.br, c.scratch[start:]); err != nil {
			return nil, 0, err
		}
		if fin {
			return c.scratch, msgOp, nil
		}
		for {
			if fin, op, n, err = c.header(); err != nil {
				return nil, 0, err
			}
			if op < opClose {
				break
			}
			// Control frames may interleave with fragments.
			p, err := c.br.Peek(n)
			if err != nil {
				return nil, 0, err
			}
			c.discard = n
			switch op {
			case opPing:
				c.writeFrame(opPong, p) //nolint:errcheck // a failed write shows up on read
			case opClose:
				return p, op, nil
			}
		}
	}
}

// opUsersCounted is what next returns for a users snapshot too large for
// the read buffer, whose names countStreamed has counted into c.counted:
// not a WebSocket opcode (those have four bits).
const opUsersCounted = 0x10

// countStreamed consumes the n-byte payload of a users snapshot from the
// read buffer, piece by piece, and sets c.counted to the number of names
// in it. next has peeked 64 bytes, so the first piece holds the list's key.
func (c *wsClient) countStreamed(n int) error {
	var u usersCounter
	for n > 0 {
		p, err := c.br.Some(n)
		if err != nil {
			return err
		}
		if !u.feed(p) {
			return errors.New("users snapshot without its list in the first bytes")
		}
		c.br.Discard(len(p))
		n -= len(p)
	}
	c.counted = u.names()
	return nil
}

// writeFrame writes one masked client frame.
func (c *wsClient) writeFrame(op byte, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, c.mask[:]...)
	start := len(b)
	b = append(b, p...)
	for i := range p {
		b[start+i] ^= c.mask[i&3]
	}
	c.wbuf = b
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

func (c *wsClient) send(msg []byte) error {
	if c.cent {
		return c.centPublish(msg)
	}
	return c.writeFrame(opText, msg)
}

func (c *wsClient) close() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.SetLinger(0) // reset: no TIME_WAIT left on the loopback ports
	}
	c.nc.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// frameReader is a read buffer like bufio.Reader's, cut down to what next
// needs, with no interface call per frame. Over a TCP connection it holds
// its buffer only while it holds unconsumed bytes: when everything read
// has been consumed and the socket has nothing more, the buffer goes back
// to a pool shared by all clients, and the reader waits for the socket
// without one (see fill). An idle client then costs its goroutine and a
// few hundred bytes, not readBufferSize.
type frameReader struct {
	src     io.Reader       // read with src.Read when rc is nil (tests over net.Pipe)
	rc      syscall.RawConn // read with read(2) when the socket is readable
	onRead  func()          // if set, called before every read
	onBytes func(n int)     // if set, called with the bytes of every read
	size    int
	buf     []byte  // nil while lent to the pool
	pooled  *[]byte // buf's box in readBufs, if it comes from there
	r, w    int
}

// newFrameReader returns a reader of src with a buffer of size bytes,
// lent to the pool while empty if src is a socket.
func newFrameReader(src io.Reader, size int) *frameReader {
	b := &frameReader{src: src, size: size}
	if sc, ok := src.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			b.rc = rc
		}
	}
	return b
}

// readBufs holds the read buffers (*[]byte of readBufferSize) of clients
// that have nothing buffered.
var readBufs = sync.Pool{New: func() any {
	b := make([]byte, readBufferSize)
	return &b
}}

// fill reads once into the free part of the buffer and returns the number
// of bytes read, taking a buffer from the pool first if it has none. On a
// socket it waits for readability with an empty buffer lent back to the
// pool.
func (b *frameReader) fill() (int, error) {
	if b.onRead != nil {
		b.onRead()
	}
	if b.rc == nil {
		b.take()
		n, err := b.src.Read(b.buf[b.w:])
		b.got(n)
		return n, err
	}
	var (
		n    int
		rerr error
	)
	err := b.rc.Read(func(fd uintptr) bool {
		b.take()
		for {
			n, rerr = syscall.Read(int(fd), b.buf[b.w:])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			b.lend()
			return false // wait for the socket, then try again
		}
		return true
	})
	b.got(n)
	switch {
	case err != nil:
		return 0, err // deadline, closed
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// got counts n bytes read.
func (b *frameReader) got(n int) {
	if b.onBytes != nil && n > 0 {
		b.onBytes(n)
	}
}

// take gives the reader a buffer if it has none.
func (b *frameReader) take() {
	switch {
	case b.buf != nil:
	case b.rc != nil && b.size == readBufferSize:
		b.pooled = readBufs.Get().(*[]byte)
		b.buf = *b.pooled
	default:
		b.buf = make([]byte, b.size)
	}
}

// lend returns a pooled buffer that holds nothing unconsumed to the pool.
func (b *frameReader) lend() {
	if b.pooled == nil || b.r != b.w {
		return
	}
	readBufs.Put(b.pooled)
	b.pooled, b.buf, b.r, b.w = nil, nil, 0, 0
}

// Size returns the buffer's size: the largest Peek.
func (b *frameReader) Size() int { return b.size }

// Peek returns the next n bytes (n <= Size) without consuming them.
func (b *frameReader) Peek(n int) ([]byte, error) {
	for b.w-b.r < n {
		if b.r > 0 && b.size-b.r < n {
			b.w = copy(b.buf, b.buf[b.r:b.w])
			b.r = 0
		}
		m, err := b.fill()
		b.w += m
		if err != nil && b.w-b.r < n {
			return nil, err
		}
	}
	return b.buf[b.r : b.r+n], nil
}

// Some returns between 1 and n buffered bytes, reading only if none are
// buffered, without consuming them.
func (b *frameReader) Some(n int) ([]byte, error) {
	if b.r == b.w {
		if _, err := b.Peek(1); err != nil {
			return nil, err
		}
	}
	return b.buf[b.r:min(b.w, b.r+n)], nil
}

// Discard consumes n buffered bytes.
func (b *frameReader) Discard(n int) {
	b.r += n
	if b.r == b.w {
		b.r, b.w = 0, 0
	}
}

// Read reads into p from the buffer, or from the source if it is empty.
func (b *frameReader) Read(p []byte) (int, error) {
	if b.r == b.w {
		if b.rc == nil && len(p) >= b.size {
			return b.src.Read(p)
		}
		if _, err := b.Peek(1); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.Discard(n)
	return n, nil
}
