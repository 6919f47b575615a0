package chat

import (
	"errors"
	"sync/atomic"
	"time"
)

// Metrics is a snapshot of a hub's counters and gauges, as a dashboard
// shows them; read it with [Hub.Metrics]. Counters start at zero when the
// hub is created and only grow: rates come from the difference of two
// snapshots. Gauges are values of the moment. The module
// github.com/hubchat/chat/prommetrics exports them to Prometheus.
type Metrics struct {
	// Members is the number of members of the room (a gauge). With a
	// Broker it counts the members of every hub of the room, as
	// [Hub.Users] lists them.
	Members int

	// Connections is the number of this hub's open WebSocket connections
	// (a gauge): members, connections still joining, and connections
	// being closed.
	Connections int

	// MessagesIn counts the messages this hub accepted from its clients,
	// public and private: each frame that was published. Messages from
	// [Hub.Post], [Hub.Send] and [Hub.Deliver] are not counted.
	MessagesIn uint64

	// MessagesOut counts deliveries: message frames (public and private,
	// from members or from Go code) written to this hub's connections,
	// each message once per connection it was written to. The echo of a private message to
	// its sender counts. Joins, leaves, users snapshots, history frames and
	// errors do not.
	MessagesOut uint64

	// BytesOut counts the bytes written to this hub's connections: every
	// frame, control frames and the 101 upgrade responses included.
	BytesOut uint64

	// JoinsRefused counts connections whose join was refused: an invalid,
	// taken or banned name, a full room, no join frame within
	// JoinTimeout, a first frame that is not a join, a broker that could
	// not be reached.
	JoinsRefused uint64

	// Evictions counts the connections the hub closed, by cause.
	Evictions Evictions

	// Rejected counts the frames from members that the hub refused with
	// an error frame, or with a close for a frame over ReadLimit, by
	// cause.
	Rejected Rejections

	// BrokerErrors counts the failed calls to Options.Broker and its Link:
	// a room that could not be opened, a join, leave or publish that
	// failed, a link that did not close cleanly. Each is also logged at
	// Warn.
	BrokerErrors uint64

	// StoreErrors counts the failed calls to Options.Store: each failed
	// Append (every retry counts), a read for a resume or a page of
	// history that failed, and the reads of NewHub; and to Options.Files:
	// an upload that could not be stored, a file that could not be read.
	// Each is also logged at Warn.
	StoreErrors uint64

	// Lag is the distribution of the delivery lag: for every delivery
	// counted in MessagesOut, the time from the hub accepting the message
	// (receiving it from the Broker, with one) to the write of it to the
	// connection. Lag.Count() is MessagesOut.
	Lag LagHistogram
}

// Evictions counts the connections a hub closed, by cause. A connection
// closed on shutdown is not an eviction.
type Evictions struct {
	// Slow counts connections that fell more than Options.SendQueue
	// messages behind the room: closed with 1008 "too slow".
	Slow uint64

	// ReadTimeout counts connections that sent nothing, not even a pong,
	// within Options.ReadTimeout.
	ReadTimeout uint64

	// Kicked counts the connections of members disconnected by
	// [Hub.Kick] or [Hub.Ban] (with a Broker, called on any hub of the
	// room).
	Kicked uint64

	// Other counts the rest: the connections of members whose name the
	// Broker no longer holds (closed with 1013), and connections that
	// sent a frame over Options.ReadLimit (closed with 1009, and counted
	// in Rejections.TooBig as well).
	Other uint64
}

// Rejections counts the frames of members that a hub refused, by cause.
type Rejections struct {
	// Rate counts frames over Options.RateLimit.
	Rate uint64

	// JSON counts frames that are not one JSON object in a UTF-8 text
	// frame: invalid JSON, invalid UTF-8, binary frames.
	JSON uint64

	// Type counts frames with a missing or unknown "type", or with a type
	// not allowed at that point (a join from a member).
	Type uint64

	// Body counts messages with a body that is missing, empty, over
	// Options.MaxBodyBytes or not UTF-8, or with an empty "to".
	Body uint64

	// NoSuchUser counts private messages to someone not in the room.
	NoSuchUser uint64

	// Muted counts messages from members muted with [Hub.Mute].
	Muted uint64

	// File counts messages with a "file" that is not one the sender
	// uploaded to the room, or sent where file sharing is off.
	File uint64

	// Hook counts messages refused by Options.OnMessage, or whose body it
	// rewrote into an invalid one, or that it routed to an invalid
	// address outside the room.
	Hook uint64

	// History counts history requests with a missing or malformed
	// "before" or "limit".
	History uint64

	// TooBig counts frames over Options.ReadLimit; the connection is
	// closed with 1009.
	TooBig uint64

	// Unavailable counts frames refused because the Broker, the Store or
	// the FileStore failed (counted in BrokerErrors or StoreErrors too).
	Unavailable uint64

	// Other counts the rest, such as messages sent while the hub shuts
	// down.
	Other uint64
}

// lagBounds are the upper bounds of the delivery-lag buckets.
var lagBounds = [18]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond,
	2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// A LagHistogram is a distribution of delivery lags in fixed buckets, as
// in [Metrics.Lag]; its zero value is empty.
//
// The hub counts deliveries a write at a time: every message of one write
// to a connection is counted with the lag of the oldest message in it, an
// upper bound of each one's lag (and so is Sum). Under light load a write
// holds one message and the figure is exact; under heavy load the writes
// grow, and their later messages are counted a little late.
type LagHistogram struct {
	// Bounds are the buckets' upper bounds, inclusive and increasing:
	// 25µs to 10s in steps of 1, 2.5 and 5 (25µs, 50µs, 100µs, 250µs, ...).
	// They are the same in every LagHistogram.
	Bounds [18]time.Duration

	// Counts[i] counts the deliveries with a lag over Bounds[i-1] (over 0
	// for i = 0) and at most Bounds[i]; the last, Counts[len(Bounds)],
	// those over the last bound. The counts are not cumulative.
	Counts [19]uint64

	// Sum is the sum of the lags counted.
	Sum time.Duration
}

// Count returns the number of deliveries counted in h.
func (h LagHistogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Quantile returns an estimate of the q-quantile (0 ≤ q ≤ 1) of the lags
// counted in h, e.g. Quantile(0.99) for the p99, interpolated linearly
// within its bucket as Prometheus' histogram_quantile does: at most the
// bucket's upper bound, or the last bound if it falls beyond. It returns
// 0 if h is empty.
func (h LagHistogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := q * float64(total)
	var seen uint64
	for i, c := range h.Counts {
		if c == 0 || float64(seen+c) < rank {
			seen += c
			continue
		}
		if i == len(h.Bounds) {
			break
		}
		var lo time.Duration
		if i > 0 {
			lo = h.Bounds[i-1]
		}
		hi := h.Bounds[i]
		frac := (rank - float64(seen)) / float64(c)
		return lo + time.Duration(frac*float64(hi-lo))
	}
	return h.Bounds[len(h.Bounds)-1]
}

// Sub returns the deliveries counted in h but not in old, an earlier
// snapshot of the same hub: the distribution of the lag between the two,
// whose Quantile(0.99) is the p99 of that window.
func (h LagHistogram) Sub(old LagHistogram) LagHistogram {
	for i := range h.Counts {
		h.Counts[i] -= old.Counts[i]
	}
	h.Sum -= old.Sum
	return h
}

// Metrics returns a snapshot of the hub's counters and gauges. It may be
// called at any time, also after shutdown; it takes the hub's lock only
// for a moment, to count members and connections, and adds no work to the
// path of messages: the writers count their writes in batches.
func (h *Hub) Metrics() Metrics {
	h.mu.Lock()
	m := Metrics{Members: len(h.members), Connections: len(h.conns)}
	h.mu.Unlock()
	c := &h.met
	m.MessagesIn = c.in.Load()
	m.MessagesOut = c.out.Load()
	m.BytesOut = c.bytes.Load()
	m.JoinsRefused = c.refused.Load()
	m.Evictions = Evictions{
		Slow:        c.evictions[evictSlow].Load(),
		ReadTimeout: c.evictions[evictReadTimeout].Load(),
		Kicked:      c.evictions[evictKicked].Load(),
		Other:       c.evictions[evictOther].Load(),
	}
	r := &c.rejected
	m.Rejected = Rejections{
		Rate:        r[rejectRate].Load(),
		JSON:        r[rejectJSON].Load(),
		Type:        r[rejectType].Load(),
		Body:        r[rejectBody].Load(),
		NoSuchUser:  r[rejectNoSuchUser].Load(),
		Muted:       r[rejectMuted].Load(),
		File:        r[rejectFile].Load(),
		Hook:        r[rejectHook].Load(),
		History:     r[rejectHistory].Load(),
		TooBig:      r[rejectTooBig].Load(),
		Unavailable: r[rejectUnavailable].Load(),
		Other:       r[rejectOther].Load(),
	}
	m.BrokerErrors = c.brokerErrors.Load()
	m.StoreErrors = c.storeErrors.Load()
	m.Lag.Bounds = lagBounds
	for i := range m.Lag.Counts {
		m.Lag.Counts[i] = c.lag[i].Load()
	}
	m.Lag.Sum = time.Duration(c.lagSum.Load())
	return m
}

// Why a connection was evicted (Evictions).
type evictCause int

const (
	evictSlow evictCause = iota
	evictReadTimeout
	evictKicked
	evictOther
	numEvictCauses
)

// Why a frame was rejected (Rejections).
type rejectCause int

const (
	rejectRate rejectCause = iota
	rejectJSON
	rejectType
	rejectBody
	rejectNoSuchUser
	rejectMuted
	rejectFile
	rejectHook
	rejectHistory
	rejectTooBig
	rejectUnavailable
	rejectOther
	numRejectCauses
)

// cacheLinePad keeps the counters that different goroutines add to on
// cache lines of their own.
type cacheLinePad [64]byte

// metrics holds a hub's counters (Hub.met). Each group is added to by
// different goroutines, and is padded so that they do not share a cache
// line with each other or with the hub's other fields.
type metrics struct {
	_ cacheLinePad

	// The connections' readers: once per frame.
	in       atomic.Uint64
	refused  atomic.Uint64
	rejected [numRejectCauses]atomic.Uint64

	_ cacheLinePad

	// The outbox's writers: a tally of many writes at a time.
	out    atomic.Uint64
	bytes  atomic.Uint64
	lag    [len(lagBounds) + 1]atomic.Uint64
	lagSum atomic.Int64

	_ cacheLinePad

	// Rare events.
	evictions    [numEvictCauses]atomic.Uint64
	brokerErrors atomic.Uint64
	storeErrors  atomic.Uint64

	_ cacheLinePad
}

func (m *metrics) evicted(cause evictCause) { m.evictions[cause].Add(1) }

func (m *metrics) reject(cause rejectCause) { m.rejected[cause].Add(1) }

// A tally is what a writer goroutine has written since it last added it
// to the hub's counters: the writers count without atomics and flush now
// and then (tallyEvery).
type tally struct {
	writes int // since the last flush
	msgs   uint64
	bytes  uint64
	lag    [len(lagBounds) + 1]uint64
	lagSum int64
}

// tallyEvery is how many writes a writer counts before it adds them to the
// hub's counters; it adds the rest when it stops.
const tallyEvery = 64

// add counts one write of n bytes holding msgs messages, the oldest of
// which had waited lag.
func (t *tally) add(n int, msgs uint64, lag time.Duration) {
	t.writes++
	t.bytes += uint64(n)
	if msgs == 0 {
		return
	}
	t.msgs += msgs
	lag = max(lag, 0)
	i := 0
	for i < len(lagBounds) && lag > lagBounds[i] {
		i++
	}
	t.lag[i] += msgs
	t.lagSum += int64(lag) * int64(msgs)
}

// flush adds t to m's counters and empties t.
func (t *tally) flush(m *metrics) {
	if t.writes == 0 {
		return
	}
	m.bytes.Add(t.bytes)
	if t.msgs > 0 {
		m.out.Add(t.msgs)
		for i, n := range t.lag {
			if n > 0 {
				m.lag[i].Add(n)
			}
		}
		m.lagSum.Add(t.lagSum)
	}
	*t = tally{}
}

// stamps holds the accept times of the messages in an outbox's log, by
// message number (the count of messages before it in the log), from base
// on: message base+i was accepted t[head+i] after the outbox's epoch. It
// keeps the messages of the log's retained chunks; appending reuses its
// array, so that it allocates nothing once it has grown to the log's size.
type stamps struct {
	t    []int64
	head int
	base uint64
}

// push records the time of the next message.
func (s *stamps) push(t int64) { s.t = append(s.t, t) }

// at returns the time of message n, if it is still kept.
func (s *stamps) at(n uint64) (int64, bool) {
	if n < s.base || n-s.base >= uint64(len(s.t)-s.head) {
		return 0, false
	}
	return s.t[s.head+int(n-s.base)], true
}

// trim forgets the messages before message n.
func (s *stamps) trim(n uint64) {
	if n <= s.base {
		return
	}
	d := n - s.base
	s.base = n
	if d >= uint64(len(s.t)-s.head) {
		s.t, s.head = s.t[:0], 0
		return
	}
	s.head += int(d)
	if s.head >= 1024 && 2*s.head >= len(s.t) {
		k := copy(s.t, s.t[s.head:])
		s.t, s.head = s.t[:k], 0
	}
}

// A rejectError is the error of a rejected frame with its cause, for
// Rejections; its text is err's.
type rejectError struct {
	cause rejectCause
	err   error
}

func (e *rejectError) Error() string { return e.err.Error() }
func (e *rejectError) Unwrap() error { return e.err }

// rejected returns err with its cause, for Rejections.
func rejected(cause rejectCause, err error) error {
	return &rejectError{cause: cause, err: err}
}

// rejectCauseOf classifies the error of a rejected frame.
func rejectCauseOf(err error) rejectCause {
	if r, ok := errors.AsType[*rejectError](err); ok {
		return r.cause
	}
	switch {
	case errors.Is(err, ErrInvalidBody):
		return rejectBody
	case errors.Is(err, ErrNoSuchUser):
		return rejectNoSuchUser
	case errors.Is(err, ErrMuted):
		return rejectMuted
	case errors.Is(err, ErrNoSuchFile):
		return rejectFile
	}
	return rejectOther
}
