package chat

import (
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"
)

// settled waits until the outbox has no writer and no slow write left:
// every write is then counted in the hub's metrics (the writers add their
// tallies under the outbox's lock before they stop).
func settled(t testing.TB, h *Hub) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h.out.mu.Lock()
		idle := h.out.workers == 0 && len(h.out.slow) == 0
		h.out.mu.Unlock()
		if idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the outbox's writers are still busy")
		}
		time.Sleep(time.Millisecond) // polling, with a deadline
	}
}

// checkCounted checks the hub's metrics against what conns received: one
// delivery per message frame, and every byte.
func checkCounted(t *testing.T, h *Hub, conns []*recConn) {
	t.Helper()
	settled(t, h)
	var msgs, bytes uint64
	for _, c := range conns {
		for _, f := range c.frames(t) {
			if f.Type == typeMessage {
				msgs++
			}
		}
		c.mu.Lock()
		bytes += uint64(len(c.buf))
		c.mu.Unlock()
	}
	m := h.Metrics()
	if m.MessagesOut != msgs || m.BytesOut != bytes {
		t.Errorf("MessagesOut %d, BytesOut %d; the connections received %d messages, %d bytes", m.MessagesOut, m.BytesOut, msgs, bytes)
	}
	if n := m.Lag.Count(); n != m.MessagesOut {
		t.Errorf("Lag counts %d deliveries, MessagesOut %d", n, m.MessagesOut)
	}
	if m.Lag.Sum < 0 {
		t.Errorf("Lag.Sum = %v", m.Lag.Sum)
	}
	t.Logf("%d deliveries, %d bytes, p50 %v, p99 %v", m.MessagesOut, m.BytesOut, m.Lag.Quantile(0.5), m.Lag.Quantile(0.99))
}

// TestMetricsOutbox: the writers count every message frame they write,
// once per connection, and every byte, however the log is batched: in a
// burst of joins with messages between them, and in a join storm with
// owed snapshots and private messages (TestOutboxStreams and
// TestOutboxOwedSnapshot check the streams themselves).
func TestMetricsOutbox(t *testing.T) {
	for _, storm := range []bool{false, true} {
		t.Run(fmt.Sprint("storm=", storm), func(t *testing.T) {
			h := NewHub(Options{HistorySize: 2, PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
			defer h.Close()
			n := 200
			pad := ""
			if storm {
				n, pad = 400, "xxxxxxxxxxxxxxxxxxxxxxxx" // a large snapshot: joiners are owed it
			}
			conns := make([]*recConn, n)
			clients := make([]*client, n)
			for i := range n {
				conns[i] = &recConn{}
				clients[i] = newClient(h, nil, nil)
				clients[i].nc = conns[i]
				name := fmt.Sprintf("%s-%03d", pad, i)
				h.mu.Lock()
				h.applyJoinLocked(name, nameKey(name), Profile{}, clients[i])
				switch {
				case i%25 == 12 && i > 0:
					to := fmt.Sprintf("%s-%03d", pad, i-1)
					h.applyMessageLocked(&Message{ID: "0", Username: name, To: to, Body: "psst", Time: time.Now()})
				case i%20 == 19:
					h.seq++
					h.applyMessageLocked(&Message{ID: strconv.FormatUint(h.seq, 10), Username: name, Body: "hi", Time: time.Now()})
				}
				h.mu.Unlock()
			}
			waitWritten(t, h, clients)
			checkCounted(t, h, conns)
		})
	}
}

// TestMetricsClosing: a connection closing gets the log up to its close
// and no further, and only that is counted.
func TestMetricsClosing(t *testing.T) {
	h := NewHub(Options{PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer h.Close()
	conns := []*recConn{{}, {}}
	clients := make([]*client, len(conns))
	for i := range conns {
		clients[i] = newClient(h, nil, nil)
		clients[i].nc = conns[i]
		name := "u" + strconv.Itoa(i)
		h.mu.Lock()
		h.applyJoinLocked(name, nameKey(name), Profile{}, clients[i])
		h.mu.Unlock()
	}
	post := func(body string) {
		h.mu.Lock()
		h.seq++
		h.applyMessageLocked(&Message{ID: strconv.FormatUint(h.seq, 10), Username: "u0", Body: body, Time: time.Now()})
		h.mu.Unlock()
	}
	post("a")
	post("b")
	h.out.close(clients[1], closeNoFrame, "")
	post("c")
	waitWritten(t, h, clients[:1])
	<-clients[1].w.done
	checkCounted(t, h, conns)
	if m := h.Metrics(); m.MessagesOut != 5 {
		t.Errorf("MessagesOut = %d, want 5: a, b and c to u0, a and b to u1", m.MessagesOut)
	}
}

func TestTally(t *testing.T) {
	var tl tally
	tl.add(100, 0, time.Hour) // no message: bytes only
	tl.add(10, 3, 30*time.Microsecond)
	tl.add(10, 1, -time.Second) // a clock step: counted as 0
	tl.add(10, 2, time.Minute)
	var m metrics
	tl.flush(&m)
	if tl != (tally{}) {
		t.Errorf("flush left %+v", tl)
	}
	if got, want := m.bytes.Load(), uint64(130); got != want {
		t.Errorf("bytes = %d, want %d", got, want)
	}
	if got, want := m.out.Load(), uint64(6); got != want {
		t.Errorf("out = %d, want %d", got, want)
	}
	want := map[int]uint64{0: 1, 1: 3, len(lagBounds): 2} // ≤25µs, ≤50µs, over 10s
	for i := range m.lag {
		if got := m.lag[i].Load(); got != want[i] {
			t.Errorf("bucket %d counts %d, want %d", i, got, want[i])
		}
	}
	if got, want := time.Duration(m.lagSum.Load()), 3*30*time.Microsecond+2*time.Minute; got != want {
		t.Errorf("lag sum = %v, want %v", got, want)
	}
}

func TestStamps(t *testing.T) {
	var s stamps
	for i := range 5000 {
		s.push(int64(i))
	}
	for _, n := range []uint64{0, 1, 4999} {
		if got, ok := s.at(n); !ok || got != int64(n) {
			t.Errorf("at(%d) = %d, %v", n, got, ok)
		}
	}
	if _, ok := s.at(5000); ok {
		t.Error("at(5000) found a message not pushed yet")
	}
	s.trim(3000) // compacts
	if _, ok := s.at(2999); ok {
		t.Error("at(2999) found a trimmed message")
	}
	if got, ok := s.at(3000); !ok || got != 3000 {
		t.Errorf("after trim: at(3000) = %d, %v", got, ok)
	}
	s.push(5000)
	if got, ok := s.at(5000); !ok || got != 5000 {
		t.Errorf("after trim: at(5000) = %d, %v", got, ok)
	}
	s.trim(6000) // everything, and beyond
	s.push(6000)
	if got, ok := s.at(6000); !ok || got != 6000 {
		t.Errorf("after trimming all: at(6000) = %d, %v", got, ok)
	}
}

func TestLagHistogram(t *testing.T) {
	h := LagHistogram{Bounds: lagBounds}
	if q := h.Quantile(0.99); q != 0 || h.Count() != 0 {
		t.Errorf("empty: Quantile %v, Count %d", q, h.Count())
	}
	h.Counts[5] = 100 // (500µs, 1ms]
	h.Sum = 100 * 750 * time.Microsecond
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0, 500 * time.Microsecond},
		{0.5, 750 * time.Microsecond},
		{0.99, 995 * time.Microsecond},
		{1, time.Millisecond},
	} {
		if got := h.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	old := h
	h.Counts[0] = 98
	h.Counts[len(lagBounds)] = 2 // over 10s
	h.Sum += 2 * time.Minute
	if got := h.Quantile(0.999); got != 10*time.Second {
		t.Errorf("Quantile(0.999) with 2 of 200 over the last bound = %v, want 10s", got)
	}
	w := h.Sub(old)
	if w.Count() != 100 || w.Sum != 2*time.Minute || w.Counts[5] != 0 {
		t.Errorf("Sub: %+v", w)
	}
	if got := w.Quantile(0.5); got != 25*time.Microsecond*50/98 {
		t.Errorf("window p50 = %v, want %v", got, 25*time.Microsecond*50/98)
	}
}
