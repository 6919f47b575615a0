package chat

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countConn is a net.Conn that counts and discards what is written to it.
type countConn struct {
	net.Conn // nil: only the methods below are used
	n        atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}
func (c *countConn) Close() error                     { return nil }
func (c *countConn) SetWriteDeadline(time.Time) error { return nil }
func (c *countConn) SetReadDeadline(time.Time) error  { return nil }
func (c *countConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// BenchmarkJoin measures the hub's side of a room forming, without the
// network: N members join one after the other (each join announced to
// everyone, each joiner sent its users snapshot), and the clock stops when
// the outbox has written everything. It shows the cost of encoding and
// writing presence: a users snapshot re-encoded on every join would make
// it grow with N². With profiles, every member has a display name and an
// avatar URL, which the snapshot carries too.
func BenchmarkJoin(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) { benchJoin(b, n, false) })
	}
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("members=%d/profiles", n), func(b *testing.B) { benchJoin(b, n, true) })
	}
}

func benchJoin(b *testing.B, n int, profiles bool) {
	names := make([]string, n)
	profs := make([]Profile, n)
	for i := range names {
		names[i] = "user" + strconv.Itoa(i)
		if profiles {
			profs[i] = Profile{Display: "User Number " + strconv.Itoa(i), Avatar: "https://img.example/u/" + strconv.Itoa(i) + ".png"}
		}
	}
	var cpu time.Duration
	for b.Loop() {
		cpu0 := processCPU()
		h := NewHub(Options{HistorySize: -1, PingInterval: -1, Logger: slog.New(slog.DiscardHandler)})
		clients := make([]*client, n)
		for i, name := range names {
			c := newClient(h, nil, nil)
			c.nc = &countConn{}
			clients[i] = c
			h.mu.Lock()
			h.applyJoinLocked(name, nameKey(name), profs[i], c)
			h.mu.Unlock()
		}
		waitWritten(b, h, clients)
		cpu += processCPU() - cpu0
		b.StopTimer()
		h.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms/op")
}

// processCPU returns the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
