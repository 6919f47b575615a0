package chat

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
)

// A poller lets a hub's idle connections wait without a goroutine each.
//
// A member's reader that has read everything the client sent (gorilla's
// read buffer is empty) parks its connection: it registers the socket,
// one-shot, with the poller's epoll instance and ends. When the socket
// becomes readable the poller starts a new reader goroutine, which reads
// on where the last one stopped. Pings and pongs from a parked client are
// answered by the poller without waking a reader (parkedControl), so an
// idle connection stays goroutine-free between keepalives. Read deadlines
// of parked connections are the poller's to enforce (sweep), and anything
// that ends a connection from outside wakes its reader (client.wake).
//
// The epoll instance is itself waited on through the runtime's network
// poller, so the poller goroutine blocks no thread.
type poller struct {
	h    *Hub
	epfd int
	f    *os.File // epfd, for the runtime's poller
	rc   syscall.RawConn
	done chan struct{} // closed when run returns

	mu      sync.Mutex         // last in the lock order: Hub.mu, outbox.mu, mu
	closed  bool               // epfd is closed or closing: register nothing
	clients map[uint64]*client // registered connections, by pid
	next    uint64
}

// newPoller returns a started poller for h, or nil if the system has none.
func newPoller(h *Hub) *poller {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err == nil {
		// Fails if the runtime's poller did not take the epoll instance.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil
	}
	p := &poller{h: h, epfd: epfd, f: f, rc: rc, done: make(chan struct{}), clients: make(map[uint64]*client)}
	go p.run()
	return p
}

// close stops the poller and waits for its goroutine. Connections still
// parked must have been woken (Hub.Shutdown wakes them all first).
func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.f.Close() // ends run's wait
	<-p.done
}

// sweepEvery is how often, at most, parked connections' read deadlines
// are checked.
const sweepEvery = time.Second

func (p *poller) run() {
	defer close(p.done)
	defer func() {
		// Closed, or the wait failed: nothing is resumed from here on, so
		// wake every connection still parked.
		p.mu.Lock()
		p.closed = true
		var parked []*client
		for _, c := range p.clients {
			parked = append(parked, c)
		}
		p.mu.Unlock()
		for _, c := range parked {
			c.wake()
		}
	}()
	evs := make([]syscall.EpollEvent, 256)
	every := min(sweepEvery, p.h.opts.ReadTimeout/4)
	next := time.Now().Add(every)
	for {
		_ = p.f.SetReadDeadline(next)
		var n int
		err := p.rc.Read(func(fd uintptr) bool {
			var err error
			n, err = syscall.EpollWait(int(fd), evs, 0)
			return n > 0 || (err != nil && err != syscall.EINTR)
		})
		if errors.Is(err, os.ErrDeadlineExceeded) || !time.Now().Before(next) {
			p.sweep()
			next = time.Now().Add(every)
			if err != nil {
				continue
			}
		}
		if err != nil {
			return // closed
		}
		for _, ev := range evs[:n] {
			p.fire(uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32)
		}
	}
}

// fire handles readiness of the connection registered as pid.
func (p *poller) fire(pid uint64) {
	p.mu.Lock()
	c := p.clients[pid]
	p.mu.Unlock()
	if c == nil || !c.rstate.CompareAndSwap(rParked, rPolling) {
		return // gone, or woken meanwhile
	}
	// rPolling: the socket is this goroutine's until the state changes.
	if !c.parkedControl() || c.ending.Load() {
		c.rstate.Store(rRunning)
		go c.resume()
		return
	}
	// Answered pings or pongs: park again, as the reader would, or read
	// on if that fails.
	if !p.park(c) {
		go c.resume()
	}
}

// maxControlFrame is the longest control frame a client may send: a
// 2-byte header, a 4-byte mask and 125 bytes of payload.
const maxControlFrame = 2 + 4 + 125

// parkedControl answers what a parked client has sent if it is nothing but
// whole pings and pongs (a pong extends the read deadline; a ping is
// answered), consuming them from the socket, and reports whether it did;
// it also reports true if the socket has nothing to read. Anything else
// (data, a close, a partial frame, the end of the stream) is left for the
// reader. gorilla's read buffer is empty while parked, so whole frames
// taken here leave its parser where it was.
func (c *client) parkedControl() bool {
	var buf [4 * maxControlFrame]byte
	n, again := 0, false
	err := c.rc.Control(func(fd uintptr) {
		var err error
		n, _, err = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		again = err == syscall.EAGAIN
		if err != nil {
			n = -1
		}
	})
	if err != nil || n < 0 {
		return again
	}
	if n == 0 || n == len(buf) {
		return false // the end of the stream, or more than control frames
	}
	type control struct {
		op      byte
		payload []byte
	}
	var frames [4]control
	k := 0
	for b := buf[:n]; len(b) > 0; k++ {
		if k == len(frames) || len(b) < 6 {
			return false
		}
		op, size := b[0], int(b[1]&0x7f)
		if (op != 0x80|opPing && op != 0x80|opPong) || b[1]&0x80 == 0 || size > 125 || len(b) < 6+size {
			return false
		}
		payload := b[6 : 6+size]
		for i := range payload {
			payload[i] ^= b[2+i%4]
		}
		frames[k] = control{op & 0x0f, payload}
		b = b[6+size:]
	}
	// Take exactly what was peeked: it is all whole control frames.
	var sink [len(buf)]byte
	taken := 0
	if err := c.rc.Control(func(fd uintptr) {
		taken, _, _ = syscall.Recvfrom(int(fd), sink[:n], syscall.MSG_DONTWAIT)
	}); err != nil || taken != n {
		c.nc.Close() // the stream is out of step: end it
		return false
	}
	c.extendRead()
	for _, f := range frames[:k] {
		if f.op == opPing {
			c.h.out.pong(c, f.payload)
		}
	}
	return true
}

// sweep wakes parked connections whose read deadline has passed, so that
// their readers fail and clean up.
func (p *poller) sweep() {
	now := time.Now().UnixNano()
	var due []*client
	p.mu.Lock()
	for _, c := range p.clients {
		if c.rstate.Load() == rParked && c.readBy.Load() <= now {
			due = append(due, c)
		}
	}
	p.mu.Unlock()
	for _, c := range due {
		if c.ending.CompareAndSwap(false, true) {
			// Not ending for another reason already: a read timeout.
			c.h.met.evicted(evictReadTimeout)
		}
		c.wake()
	}
}

// park registers c, whose reader has nothing buffered, to be resumed when
// its socket becomes readable, and reports whether it did: the reader must
// then end. If not, the reader goes on reading.
func (p *poller) park(c *client) bool {
	c.rstate.Store(rParked)
	if c.ending.Load() || !p.arm(c) {
		// Read on, unless a wake has started another reader meanwhile.
		return !c.rstate.CompareAndSwap(rParked, rRunning)
	}
	return true
}

// arm (re)registers c's socket, one-shot, for readability.
func (p *poller) arm(c *client) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	op := syscall.EPOLL_CTL_MOD
	if c.pid == 0 {
		p.next++
		c.pid = p.next
		p.clients[c.pid] = c
		op = syscall.EPOLL_CTL_ADD
	}
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(c.pid)),
		Pad:    int32(uint32(c.pid >> 32)),
	}
	var err error
	// Control holds the socket open: its number cannot be reused meanwhile.
	if cerr := c.rc.Control(func(fd uintptr) {
		err = syscall.EpollCtl(p.epfd, op, int(fd), &ev)
	}); cerr != nil || err != nil {
		return false
	}
	return true
}

// forget drops c, whose connection has ended, from the poller.
func (p *poller) forget(c *client) {
	p.mu.Lock()
	delete(p.clients, c.pid)
	p.mu.Unlock()
}
