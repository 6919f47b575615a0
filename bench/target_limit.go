package main

import (
	"encoding/json"
	"net"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

// The "limit" target is the floor: the least work a correct broadcast
// server on gorilla/websocket can do. Each incoming message is framed once
// as a raw, unmasked server text frame; a pointer to that frame is appended
// to every connection's queue; each connection's writer writes everything
// queued with a single writev. There are no ids, no history and no
// validation beyond "is it JSON".

func init() {
	servers["limit"] = func(mux *http.ServeMux) error {
		mux.Handle("/ws", newLimitServer())
		return nil
	}
}

type limitServer struct {
	up    websocket.Upgrader
	mu    sync.RWMutex
	conns []*limitConn
}

type limitConn struct {
	nc    net.Conn
	idx   int // position in limitServer.conns, guarded by limitServer.mu
	mu    sync.Mutex
	queue [][]byte      // frames waiting for the writer, guarded by mu
	wake  chan struct{} // capacity 1: "the queue is not empty"
	done  chan struct{} // closed when the reader ends
}

func newLimitServer() *limitServer {
	return &limitServer{up: websocket.Upgrader{
		ReadBufferSize:  1024,
		WriteBufferPool: &sync.Pool{}, // gorilla never writes here
		CheckOrigin:     func(*http.Request) bool { return true },
	}}
}

func (s *limitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &limitConn{nc: ws.NetConn(), wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	c.idx = len(s.conns)
	s.conns = append(s.conns, c)
	s.mu.Unlock()
	go c.writeLoop()

	ws.SetReadLimit(1 << 16)
	for {
		_, p, err := ws.ReadMessage()
		if err != nil {
			break
		}
		if !json.Valid(p) {
			continue
		}
		s.broadcast(serverTextFrame(p))
	}

	s.mu.Lock()
	last := s.conns[len(s.conns)-1]
	last.idx = c.idx
	s.conns[c.idx] = last
	s.conns[len(s.conns)-1] = nil
	s.conns = s.conns[:len(s.conns)-1]
	s.mu.Unlock()
	close(c.done)
	ws.Close()
}

// broadcast queues one shared frame on every connection.
func (s *limitServer) broadcast(frame []byte) {
	s.mu.RLock()
	for _, c := range s.conns {
		c.mu.Lock()
		c.queue = append(c.queue, frame)
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	s.mu.RUnlock()
}

// writeLoop writes all queued frames with one writev per wake-up.
func (c *limitConn) writeLoop() {
	var spare [][]byte
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		q := c.queue
		c.queue = spare[:0]
		c.mu.Unlock()
		bufs := net.Buffers(q)
		if _, err := bufs.WriteTo(c.nc); err != nil {
			c.nc.Close() // the reader sees the error and cleans up
			<-c.done
			return
		}
		clear(q)
		spare = q
	}
}

// serverTextFrame frames p as one unmasked, final WebSocket text frame.
func serverTextFrame(p []byte) []byte {
	n := len(p)
	var f []byte
	switch {
	case n < 126:
		f = make([]byte, 2, 2+n)
		f[1] = byte(n)
	case n < 1<<16:
		f = make([]byte, 4, 4+n)
		f[1] = 126
		f[2], f[3] = byte(n>>8), byte(n)
	default:
		f = make([]byte, 10, 10+n)
		f[1] = 127
		for i := range 8 {
			f[9-i] = byte(n >> (8 * i))
		}
	}
	f[0] = 0x81 // FIN + text
	return append(f, p...)
}
