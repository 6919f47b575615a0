package chat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Close codes sent by the server (RFC 6455 section 7.4.1).
const (
	closeNormal       = websocket.CloseNormalClosure   // 1000
	closeGoingAway    = websocket.CloseGoingAway       // 1001: shutdown
	closePolicy       = websocket.ClosePolicyViolation // 1008: bad name, too slow, room full
	closeTooBig       = websocket.CloseMessageTooBig   // 1009: frame over ReadLimit
	closeTryAgain     = websocket.CloseTryAgainLater   // 1013: broker trouble
	closeGraceTimeout = 2 * time.Second                // wait for the client's close reply
	closeNoFrame      = 0                              // finish without sending a close frame
)

// A Server is an [http.Handler] that upgrades requests to WebSocket
// connections and attaches them to its [Hub]. Mount it on any pattern of any
// mux; several Servers may share a Hub. The username comes from
// Options.Authenticate, else the ?username= query parameter, else the
// client's first frame.
//
// Responses before the upgrade: 400 for a request that is not a WebSocket
// upgrade, 401 when Authenticate fails, 403 for a Host not allowed by
// Options.AllowedHosts or a cross-origin request not allowed by
// Options.OriginPatterns, and 503 after the hub has shut down.
//
// ServeHTTP returns as soon as the connection is upgraded; the connection
// then belongs to the hub, which closes it on [Hub.Shutdown]. When the
// username is known at the upgrade (from Authenticate or the query), the
// 101 response waits for the join's outcome and goes out with it in one
// write: the client's join event, the users snapshot and the history, or
// an error frame and the close. A client that sends its name in its first
// frame gets the response at once. Middleware
// wrapping a Server must let the ResponseWriter be hijacked: implement
// [http.Hijacker], or an Unwrap method as [http.ResponseController]
// expects.
//
// Use [NewServer]; the zero Server is not usable. A Server is safe for
// concurrent use.
type Server struct {
	hub      *Hub
	upgrader websocket.Upgrader
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a Server that attaches connections to h.
func NewServer(h *Hub) *Server {
	s := &Server{hub: h}
	s.upgrader = websocket.Upgrader{
		// No HandshakeTimeout: it only bounds the write of the 101 response
		// into a new connection's empty send buffer. Arming and clearing
		// that write deadline leaves its timer queued, so the outbox's
		// first, much nearer, write deadline moves a queued timer earlier,
		// which costs the runtime a pass over all of its timers (one per
		// connection): 7% of the server's CPU while a room of 10,000 forms.
		//
		// gorilla takes the read buffer the hijacker hands it, of
		// readBufferSize bytes (see hijacker.Hijack).
		ReadBufferSize: 0,
		// The hub writes pre-built frames straight to the connection, so
		// gorilla's write buffer is never needed: a pool that is never
		// drawn from keeps idle connections from holding one.
		WriteBufferPool: &sync.Pool{},
		// ServeHTTP checks the origin before the upgrade, with a clearer
		// answer than gorilla's.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			http.Error(w, reason.Error(), status)
		},
	}
	return s
}

// Hub returns the hub the server attaches connections to.
func (s *Server) Hub() *Hub { return s.hub }

// ServeHTTP upgrades the request and hands the connection to the hub.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := s.hub
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		http.Error(w, ErrHubClosed.Error(), http.StatusServiceUnavailable)
		return
	}
	if !h.checkHost(r) {
		http.Error(w, "chat: host "+r.Host+" not allowed", http.StatusForbidden)
		return
	}
	if !h.checkOrigin(r) {
		http.Error(w, "chat: origin "+r.Header.Get("Origin")+" not allowed", http.StatusForbidden)
		return
	}
	name, ok := queryParam(r.URL.RawQuery, "username")
	var nameErr error // the name cannot be had: refuse the join at once
	if !ok {
		nameErr = errorf(ErrInvalidName, "%s", errTextBadQuery)
	}
	fromAuth := false
	var ident *Identity // from Authenticate, if it says more than a name
	if h.opts.Authenticate != nil && websocket.IsWebSocketUpgrade(r) {
		id, err := h.opts.Authenticate(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		name = id.Name
		if id, err = id.checkExtras(); err != nil {
			h.log.Warn("chat: identity refused", "user", clip(name), "err", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if !id.bare() {
			id = id.clone()
			ident = &id
		}
		name, nameErr, fromAuth = id.Name, nil, true
	}
	hj := &hijacker{ResponseWriter: w}
	ws, err := s.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		return // the upgrader has answered with a 4xx
	}
	hc := hj.conn
	c := newClient(h, ws, hc.Conn)
	c.br = hj.br
	c.id = ident
	if !h.addConn(c) {
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.nc.Write(append(hc.resp, closeFrame(closeGoingAway, errTextClosed)...))
		c.nc.Close()
		return
	}
	// From here on the outbox writes everything, the 101 response first.
	// When the name is known already, the response waits for the join's
	// outcome; otherwise the client waits for it before it sends its join.
	nameInFrame := name == "" && !fromAuth && nameErr == nil
	hc.c = c
	h.out.greet(c, hc.resp, !nameInFrame)
	hc.resp = nil
	since, ok := queryParam(r.URL.RawQuery, "since")
	if !ok {
		since = "malformed" // not an ID: the plain history, "resume":false
	}
	go c.serve(name, nameErr, since, nameInFrame)
}

// A hijacker hands gorilla's upgrader a hijackedConn in place of the
// request's connection. It finds the connection through
// [http.ResponseController], so middleware that wraps the ResponseWriter
// need only provide an Unwrap method.
type hijacker struct {
	http.ResponseWriter
	conn *hijackedConn
	br   *bufio.Reader // the read buffer handed to gorilla, if ours
}

func (hj *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(hj.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// net/http leaves the deadlines of its ReadTimeout and WriteTimeout
	// on the hijacked connection. The hub sets its own read deadlines, but
	// the outbox's writes that do not block (writeNow) set none and fail
	// once a stale one has passed, so clear both. (It fails only on a
	// closed connection, where the next read or write fails too.)
	_ = nc.SetDeadline(time.Time{})
	hj.conn = &hijackedConn{Conn: nc}
	if brw.Reader.Buffered() == 0 {
		// gorilla reads through a small buffer of ours (the upgrader's
		// ReadBufferSize is 0, so it takes the hijacked one), which the
		// reader must see empty before it parks the connection. (With
		// bytes buffered already, gorilla refuses the upgrade.)
		hj.br = bufio.NewReaderSize(hj.conn, readBufferSize)
		brw = bufio.NewReadWriter(hj.br, brw.Writer)
	}
	return hj.conn, brw, nil
}

// readBufferSize is each connection's read buffer: frames are read in
// pieces anyway, and a small buffer keeps idle connections small.
const readBufferSize = 1024

// A hijackedConn is a connection as gorilla sees it: gorilla reads from it
// directly, but whatever it writes goes through the hub's outbox, the one
// writer of every connection. The 101 response written during the upgrade
// is kept in resp, for the outbox to write with the first frames (one
// write where there were two); the close frame gorilla writes after a
// protocol error or an oversized frame is queued after the frames queued
// before it, never in the middle of the outbox's writes, and ends the
// connection's output. Write deadlines are the outbox's alone.
type hijackedConn struct {
	net.Conn
	c    *client // nil during the upgrade
	resp []byte  // the 101 response, until the outbox has it
}

func (hc *hijackedConn) Write(p []byte) (int, error) {
	if hc.c == nil {
		hc.resp = append(hc.resp, p...)
		return len(p), nil
	}
	hc.c.h.out.sendFramed(hc.c, bytes.Clone(p))
	return len(p), nil
}

// SetWriteDeadline does nothing: the outbox sets the write deadlines.
func (hc *hijackedConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets only the read deadline; see SetWriteDeadline.
func (hc *hijackedConn) SetDeadline(t time.Time) error { return hc.Conn.SetReadDeadline(t) }

// queryParam returns the first value of key in the raw query ("" if
// there is none), without building the map of every parameter as
// url.ParseQuery would. ok is false if that value is malformed: it fails
// to percent-decode, or holds a semicolon, which url.ParseQuery refuses.
func queryParam(raw, key string) (v string, ok bool) {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(k); err != nil || k != key {
			continue
		}
		if strings.Contains(v, ";") {
			return "", false
		}
		v, err := url.QueryUnescape(v)
		return v, err == nil
	}
	return "", true
}

// checkHost allows any host if Options.AllowedHosts is empty, else only
// hosts that match one of its patterns.
func (h *Hub) checkHost(r *http.Request) bool {
	if len(h.opts.AllowedHosts) == 0 {
		return true
	}
	return matchHost(h.opts.AllowedHosts, r.Host)
}

// matchHost reports whether host matches one of patterns, case-insensitively.
func matchHost(patterns []string, host string) bool {
	host = strings.ToLower(host)
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), host); ok {
			return true
		}
	}
	return false
}

// checkOrigin allows requests without an Origin header, from the server's
// own host, and from hosts matching Options.OriginPatterns.
func (h *Hub) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Host)
	if host == strings.ToLower(r.Host) {
		return true
	}
	return matchHost(h.opts.OriginPatterns, host)
}

// A client is one connection. Its reader goroutine (serve) owns the read
// side and the member's lifetime; the hub's outbox owns the write side (w,
// see outbox.go), so an idle connection has no writer goroutine and no
// write buffer.
type client struct {
	h      *Hub
	ws     *websocket.Conn
	nc     net.Conn
	rc     syscall.RawConn // nc's, for writes that do not block; nil if none
	joined chan struct{}   // closed when the join has been applied

	// The read side. br is gorilla's read buffer. A member's reader may
	// park the connection with the hub's poller and end; a new reader
	// goroutine resumes where it stopped (see poller).
	br      *bufio.Reader
	name    string    // the member's name, while a member
	id      *Identity // from Authenticate, if it said more than the name
	lim     *bucket   // the rate limit, if any
	rstate  atomic.Int32
	ending  atomic.Bool  // the connection is ending: see wake
	readBy  atomic.Int64 // the read deadline, Unix ns, for the poller
	fixedBy atomic.Int64 // a read deadline nothing extends, Unix ns, or 0: see fixReadBy
	pl      *poller      // the poller c is registered with, if any
	pid     uint64       // c's id with pl (guarded by pl.mu)

	// Owned by h.mu.
	member *member    // the member c is a connection of, once joined
	res    *resumeReq // what it asks for to resume, until its join
	token  string     // its upload token, once joined with uploads on

	// Owned by h.out.mu.
	w writeSide
}

// newClient returns the client of ws, whose connection is nc (both nil in
// tests of the outbox alone).
func newClient(h *Hub, ws *websocket.Conn, nc net.Conn) *client {
	c := &client{
		h:      h,
		ws:     ws,
		nc:     nc,
		joined: make(chan struct{}),
		w:      newWriteSide(),
	}
	if nc != nil {
		c.rc = rawConnOf(nc)
	}
	return c
}

// Reader states (client.rstate).
const (
	rRunning int32 = iota // a goroutine reads
	rParked               // registered with the poller; no goroutine
	rPolling              // parked, and the poller is reading control frames
)

// serve is the connection's reader: it joins (as name, or with the name
// its first frame asks for if nameInFrame, or not at all if nameErr says
// why; resuming after the message since, or the one the join frame names,
// if any), then reads, validates and publishes frames until the
// connection ends (see readFrames), then leaves and cleans up (end).
func (c *client) serve(name string, nameErr error, since string, nameInFrame bool) {
	h := c.h
	c.ws.SetReadLimit(h.opts.ReadLimit)
	c.ws.SetPingHandler(func(data string) error {
		c.extendRead()
		h.out.pong(c, []byte(data))
		return nil
	})
	c.ws.SetPongHandler(func(string) error {
		c.extendRead()
		return nil
	})
	c.ws.SetCloseHandler(func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			code = closeNormal
		}
		h.out.close(c, code, "")
		return nil
	})

	if nameInFrame {
		// The join frame is due within JoinTimeout, which pings and pongs
		// do not extend (unless the close grace has begun already).
		joinBy := time.Now().Add(h.opts.JoinTimeout).UnixNano()
		c.fixedBy.CompareAndSwap(0, joinBy)
		c.extendRead()
		n, s, ok := c.readJoin()
		if !ok {
			c.end()
			return
		}
		c.fixedBy.CompareAndSwap(joinBy, 0)
		name = n
		if s != "" {
			since = s
		}
	}
	c.extendRead()
	valid, err := name, nameErr
	if err == nil {
		valid, err = ValidateUsername(name)
	}
	if err == nil && h.opts.CheckName != nil {
		if cerr := h.opts.CheckName(valid); cerr != nil {
			err = errorf(ErrInvalidName, "%s", publicText(cerr))
		}
	}
	first := false
	if err == nil {
		if c.id != nil {
			c.id.Name = valid
		}
		if since != "" {
			c.res = h.prepareResume(valid, since)
		}
		valid, first, err = h.join(context.Background(), c, valid)
	}
	if err != nil {
		h.log.Debug("chat: join refused", "user", name, "err", err)
		c.refuse(err)
		c.end()
		return
	}
	c.name = valid
	if c.id != nil && c.id.Name != valid {
		c.id.Name = valid // the member's, in its case
	}
	if h.opts.Files != nil {
		h.mu.Lock()
		up := h.grantUploadLocked(c)
		h.mu.Unlock()
		h.out.send(up, c)
	}
	if first && h.opts.OnJoin != nil {
		h.opts.OnJoin(h, c.identity())
	}
	if h.opts.RateLimit > 0 {
		c.lim = newBucket(h.opts.RateLimit, h.opts.RateBurst, time.Now())
	}
	c.read(true)
}

// resume goes on reading a parked or woken connection.
func (c *client) resume() { c.read(false) }

// read reads the member's frames (see readFrames) and cleans up once the
// connection has ended.
func (c *client) read(mayPark bool) {
	if c.readFrames(mayPark) {
		c.end()
	}
}

// wake makes sure a goroutine reads the connection, which is ending: it
// has been closed, or its read deadline has passed, or the server has
// decided to close it and the client's close reply is awaited for the
// close grace. The reader neither parks nor stays parked; the member
// leaves at once, and what the client sends from now on is discarded (see
// quit).
func (c *client) wake() {
	c.ending.Store(true)
	if c.rstate.CompareAndSwap(rParked, rRunning) {
		go c.resume()
	}
}

// closeConn closes the connection from outside its reader, which notices
// (woken, if parked) and cleans up.
func (c *client) closeConn() {
	c.nc.Close()
	c.wake()
}

// end cleans up after the reader: the member leaves (if it has not yet),
// the writer finishes, and the connection is closed and forgotten.
func (c *client) end() {
	h := c.h
	c.leave()
	if c.token != "" {
		h.mu.Lock()
		delete(h.tokens, c.token)
		h.mu.Unlock()
	}
	h.out.release(c)
	c.nc.Close()
	if c.pl != nil {
		c.pl.forget(c)
	}
	h.removeConn(c)
}

// park hands the connection, with nothing left in its read buffer, to the
// hub's poller and reports whether it did: the reader must then return.
func (c *client) park() bool {
	if c.rc == nil || c.br == nil || c.br.Buffered() > 0 || c.ending.Load() {
		return false
	}
	if c.pl == nil {
		if c.pl = c.h.poller(); c.pl == nil {
			return false
		}
	}
	return c.pl.park(c)
}

// readJoin reads the first frame, which must be a join, and returns the
// requested name and since, if set. On anything else it refuses the
// connection.
func (c *client) readJoin() (name, since string, ok bool) {
	typ, data, err := c.ws.ReadMessage()
	if c.ending.Load() {
		// The server is closing already (shutting down): the frame, if
		// any, is discarded.
		if err == nil {
			c.awaitClose()
		}
		return "", "", false
	}
	if err != nil {
		if isTimeout(err) {
			// JoinTimeout. gorilla's reader is spent after a timeout, so
			// the client's close reply is awaited on the socket itself.
			c.h.met.refused.Add(1)
			c.closeWithError(fmt.Errorf(errTextJoinTimeout, c.h.opts.JoinTimeout))
			c.drain()
		}
		return "", "", false
	}
	if typ != websocket.TextMessage {
		c.refuse(errors.New(errTextBinary))
		return "", "", false
	}
	f, err := decodeClientFrame(data)
	if err == nil && f.Type != typeJoin {
		err = errors.New(errTextJoinFirst)
	}
	if err != nil {
		c.refuse(err)
		return "", "", false
	}
	return *f.Username, rawText(f.Since), true
}

// refuse refuses the join: it sends an error frame and closes with 1008,
// then waits for the client's close reply (see awaitClose) so the frames
// arrive.
func (c *client) refuse(err error) {
	c.h.met.refused.Add(1)
	c.closeWithError(err)
	c.awaitClose()
}

// closeWithError queues an error frame with err's text and a 1008 close.
func (c *client) closeWithError(err error) {
	c.sendError(publicText(err))
	c.h.out.close(c, closePolicy, truncate(publicText(err), 100))
}

// evictWithError is closeWithError for a member the server disconnects,
// counted among the evictions for cause unless it was closing already.
func (c *client) evictWithError(cause evictCause, err error) {
	c.sendError(publicText(err))
	c.h.out.evict(c, cause, closePolicy, truncate(publicText(err), 100))
}

// quit ends the member's part once the server has decided to close the
// connection (evicted as too slow, shut down, ...): the member leaves at
// once, and what the client still sends is discarded (see awaitClose).
func (c *client) quit() {
	c.leave()
	c.awaitClose()
}

// leave takes c, if a member's connection, out of the room: if it is the
// member's last, the member leaves and its leave is announced.
func (c *client) leave() {
	if c.name == "" {
		return
	}
	h := c.h
	c.name = ""
	if id, last := h.leave(c); last && h.opts.OnLeave != nil {
		h.opts.OnLeave(h, id)
	}
}

// identity returns the identity c joined with.
func (c *client) identity() Identity {
	if c.id != nil {
		return *c.id
	}
	return Identity{Name: c.name}
}

// profile returns the public part of c's identity besides its name.
func (c *client) profile() Profile {
	if c.id != nil {
		return c.id.Profile()
	}
	return Profile{}
}

// awaitClose reads and discards what the client sends after the server
// has decided to close, until its close reply or the end of the close
// grace, which nothing the client sends extends (see fixReadBy).
func (c *client) awaitClose() {
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
	}
}

func (c *client) sendError(text string) {
	c.h.out.send(appendError(nil, text), c)
}

// extendRead gives the client ReadTimeout more to send its next frame or
// pong; but while a fixed deadline is set (see fixReadBy) it keeps that.
func (c *client) extendRead() {
	for {
		by := c.fixedBy.Load()
		if by == 0 {
			c.setReadBy(time.Now().Add(c.h.opts.ReadTimeout))
		} else {
			c.setReadBy(time.Unix(0, by))
		}
		if c.fixedBy.Load() == by {
			return
		}
		// Fixed meanwhile by another goroutine, whose deadline this
		// one may have replaced: set it again.
	}
}

// fixReadBy sets a read deadline, t, that frames, pings and pongs do not
// extend: the end of the join wait, or of the close grace once the server
// has decided to close the connection. It may be called from any
// goroutine.
func (c *client) fixReadBy(t time.Time) {
	c.fixedBy.Store(t.UnixNano())
	c.setReadBy(t)
}

func (c *client) setReadBy(t time.Time) {
	c.readBy.Store(t.UnixNano())
	_ = c.nc.SetReadDeadline(t)
}

// readFrames handles a member's frames until the connection ends, and then
// reports true; or until it parks the connection (only when mayPark, or
// after the first frame), and then reports false.
func (c *client) readFrames(mayPark bool) bool {
	h := c.h
	for {
		if c.ending.Load() {
			c.quit()
			return true
		}
		if mayPark && c.park() {
			return false
		}
		mayPark = true
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				h.met.reject(rejectTooBig)
				h.met.evicted(evictOther)
				c.drain()
			case isTimeout(err) && c.ending.CompareAndSwap(false, true):
				// ReadTimeout, unless the server was closing already.
				h.met.evicted(evictReadTimeout)
			}
			if !isExpectedReadError(err) {
				h.log.Debug("chat: read failed", "user", c.name, "err", err)
			}
			return true
		}
		if c.ending.Load() {
			continue // the server is closing: the frame is discarded
		}
		c.extendRead()
		var (
			f    clientFrame
			ferr error
		)
		if typ == websocket.TextMessage {
			f, ferr = decodeClientFrame(data)
			if ferr == nil && f.Type == typeTyping {
				// Never an error, and not rate-limited: the hub
				// forwards a bounded number and drops the rest.
				h.typing(c)
				continue
			}
		}
		if c.lim != nil && !c.lim.allow(time.Now()) {
			h.met.reject(rejectRate)
			c.sendError(rateText(h.opts.RateLimit))
			continue
		}
		if typ != websocket.TextMessage {
			h.met.reject(rejectJSON)
			c.sendError(errTextBinary)
			continue
		}
		if ferr == nil {
			ferr = c.handle(&f)
		}
		if ferr != nil {
			h.met.reject(rejectCauseOf(ferr))
			c.sendError(publicText(ferr))
		}
	}
}

// handle carries out one valid frame from the member: it publishes its
// message or answers its request.
func (c *client) handle(f *clientFrame) error {
	h, name := c.h, c.name
	switch f.Type {
	case typeJoin:
		return rejected(rejectType, errors.New(errTextJoined))
	case typeHistory:
		page, err := h.page(name, f.before, f.limit)
		if err != nil {
			return err
		}
		h.out.send(page, c)
		return nil
	}
	m := &Message{Username: name}
	if f.Body != nil {
		m.Body = *f.Body
	}
	if f.To != nil {
		if m.To = strings.TrimSpace(*f.To); m.To == "" {
			return rejected(rejectBody, errors.New("empty recipient"))
		}
	}
	withFile := f.File != nil
	if err := validateMessageBody(&m.Body, withFile, h.opts.MaxBodyBytes); err != nil {
		return err
	}
	if err := h.mutedErr(name); err != nil {
		return err
	}
	if withFile {
		file, err := h.attachment(name, *f.File)
		if err != nil {
			return err
		}
		m.File = file
	}
	if h.opts.OnMessage != nil {
		file := m.File
		if err := h.opts.OnMessage(h, c.identity(), m); err != nil {
			return rejected(rejectHook, err)
		}
		m.Username, m.ID, m.System, m.Time, m.File, m.Origin = name, "", false, time.Time{}, file, ""
		if err := validateMessageBody(&m.Body, withFile, h.opts.MaxBodyBytes); err != nil {
			return rejected(rejectHook, err)
		}
		if m.ToOrigin != "" {
			to, err := validateOutside(m.To, m.ToOrigin)
			if err != nil {
				h.log.Warn("chat: OnMessage routed a message to an invalid address", "to", clip(m.To), "err", err)
				return rejected(rejectHook, err)
			}
			m.To = to
		}
	}
	m.Origin = h.opts.Origin
	if err := h.publish(context.Background(), m); err != nil {
		return err
	}
	h.met.in.Add(1)
	return nil
}

// drain reads and discards what the client still sends after gorilla has
// sent it a 1009 close, until it closes or the grace timeout passes, so
// that closing the connection with unread data does not reset it and
// destroy the close frame on its way.
func (c *client) drain() {
	_ = c.nc.SetReadDeadline(time.Now().Add(closeGraceTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, 4*c.h.opts.ReadLimit))
}

func isExpectedReadError(err error) bool {
	return websocket.IsCloseError(err, closeNormal, closeGoingAway, websocket.CloseNoStatusReceived) ||
		errors.Is(err, net.ErrClosed) || isTimeout(err)
}

// isTimeout reports whether err is a read deadline's passing.
func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}
