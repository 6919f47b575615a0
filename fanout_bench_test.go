package chat

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sinkConn is a net.Conn that discards writes and counts frames' bytes:
// the hub's fan-out measured without sockets.
type sinkConn struct {
	net.Conn // nil: only the methods below are used
	written  atomic.Int64
}

func (c *sinkConn) Write(p []byte) (int, error) {
	c.written.Add(int64(len(p)))
	return len(p), nil
}
func (c *sinkConn) Close() error                     { return nil }
func (c *sinkConn) SetWriteDeadline(time.Time) error { return nil }
func (c *sinkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *sinkConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// BenchmarkFanout publishes one message per iteration to a hub of N
// members whose connections discard what they receive. It reports the cost
// per delivery: one append to the hub's log under its lock, plus the
// writers that write every member's part of the log, until all is written;
// and allocations per delivery (none per recipient: the figure falls as
// 1/N).
func BenchmarkFanout(b *testing.B) { benchFanout(b, nil) }

// BenchmarkFanoutStore is BenchmarkFanout with a Store that keeps every
// message in memory: the cost of queueing each message for the appender,
// whose group commits run beside the writers.
func BenchmarkFanoutStore(b *testing.B) { benchFanout(b, &sliceStore{}) }

func benchFanout(b *testing.B, st Store) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			h := NewHub(Options{SendQueue: 1 << 20, HistorySize: 50, PingInterval: -1, Store: st, Logger: slog.New(slog.DiscardHandler)})
			defer h.Close()
			sinks := make([]*sinkConn, n)
			clients := make([]*client, n)
			for i := range n {
				sinks[i] = &sinkConn{}
				clients[i] = newClient(h, nil, nil)
				clients[i].nc = sinks[i]
				h.mu.Lock()
				h.applyJoinLocked("user"+strconv.Itoa(i), nameKey("user"+strconv.Itoa(i)), Profile{}, clients[i])
				h.mu.Unlock()
			}
			waitWritten(b, h, clients)
			body := "a typical chat message of about sixty bytes, give or take."
			b.ReportAllocs()
			b.ResetTimer()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			start := time.Now()
			for b.Loop() {
				m := &Message{Username: "user0", Body: body}
				h.mu.Lock()
				h.seq++
				m.ID = strconv.FormatUint(h.seq, 10)
				m.Time = time.Now()
				h.applyMessageLocked(m)
				h.mu.Unlock()
			}
			waitWritten(b, h, clients)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&ms1)
			deliveries := float64(b.N) * float64(n)
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/deliveries, "allocs/delivery")
			b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
			for _, c := range clients {
				h.out.close(c, closeNoFrame, "")
			}
		})
	}
}

// sliceStore is a Store that appends every message to a slice and reads
// nothing back: the cheapest Store there can be.
type sliceStore struct {
	mu      sync.Mutex
	msgs    []Message
	appends int
}

func (s *sliceStore) Append(_ context.Context, _ string, msgs []Message) error {
	s.mu.Lock()
	s.msgs = append(s.msgs, msgs...)
	s.appends++
	s.mu.Unlock()
	return nil
}

func (s *sliceStore) Latest(context.Context, string, int) ([]Message, error) { return nil, nil }
func (s *sliceStore) After(context.Context, string, string, string, int) ([]Message, error) {
	return nil, nil
}
func (s *sliceStore) Before(context.Context, string, string, string, int) ([]Message, error) {
	return nil, nil
}
func (s *sliceStore) LastID(context.Context, string) (string, error) { return "", nil }
