package chat

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
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
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			h := NewHub(Options{SendQueue: 1 << 20, HistorySize: 50, PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
			defer h.Close()
			sinks := make([]*sinkConn, n)
			clients := make([]*client, n)
			for i := range n {
				sinks[i] = &sinkConn{}
				clients[i] = newClient(h, nil, nil)
				clients[i].nc = sinks[i]
				h.mu.Lock()
				h.applyJoinLocked("user"+strconv.Itoa(i), nameKey("user"+strconv.Itoa(i)), clients[i])
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
