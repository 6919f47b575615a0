package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary double as a target server, the way the
// benchmark binary does: startTarget runs os.Executable() with serveEnv set.
func TestMain(m *testing.M) {
	if name := os.Getenv(serveEnv); name != "" {
		os.Exit(serveMain(name))
	}
	os.Exit(m.Run())
}

// smokeConfig is a tiny configuration: a few clients for a second.
func smokeConfig() *config {
	return &config{
		senders:    2,
		window:     4,
		duration:   time.Second,
		warmup:     100 * time.Millisecond,
		rate:       50,
		fixedFor:   500 * time.Millisecond,
		fixedConns: 20,
		fixedDrain: 5 * time.Second,
		conns:      50,
		dialConc:   16,
		formLimit:  30 * time.Second,
		serverCPU:  -1,
		sendQueue:  1024,
		idleWait:   100 * time.Millisecond,
	}
}

// TestSmoke runs every target with 20 clients and checks that the fan-out
// loses nothing and that the other workloads produce figures.
func TestSmoke(t *testing.T) {
	t.Cleanup(stopAllTargets)
	for _, name := range availableTargets() {
		t.Run(name, func(t *testing.T) {
			cfg := smokeConfig()
			r := runFanout(cfg, name, 20)
			if r.err != nil {
				t.Fatalf("fan-out: %v", r.err)
			}
			if r.deliveries == 0 || r.lost != 0 || r.disconnects != 0 {
				t.Errorf("fan-out: %d deliveries of %d sent messages, %d lost, %d disconnected; %v",
					r.deliveries, r.sent, r.lost, r.disconnects, r.notes)
			}
			if r.p50 <= 0 || r.p99 < r.p50 {
				t.Errorf("fan-out latencies p50 %v p99 %v", r.p50, r.p99)
			}
			if testing.Short() {
				return
			}
			f := runFixed(cfg, name)
			if f.err != nil || f.sent == 0 || f.lost != 0 {
				t.Errorf("fixed load: err %v, sent %d, lost %d; %v", f.err, f.sent, f.lost, f.notes)
			}
			cr, ir := runConnectIdle(cfg, name)
			if cr.err != nil || ir.err != nil || cr.rate <= 0 {
				t.Errorf("connect/idle: %v / %v, rate %.0f", cr.err, ir.err, cr.rate)
			}
			if specs[name].join && cr.formed <= 0 {
				t.Errorf("room of %d did not form", cfg.conns)
			}
		})
	}
}

// TestMedianRound: the connect table shows the median round, and a round
// that failed is shown instead, never outvoted.
func TestMedianRound(t *testing.T) {
	rs := []connectResult{{rate: 300}, {rate: 100}, {rate: 200}}
	if m := medianConnect(rs); m.rate != 200 || m.rounds != 3 || !slices.Equal(m.allRates, []float64{300, 100, 200}) {
		t.Errorf("median of 300, 100, 200: rate %v, rounds %d, all %v", m.rate, m.rounds, m.allRates)
	}
	rs[2].err = errors.New("room not formed")
	if m := medianConnect(rs); m.err == nil {
		t.Errorf("a failed round was outvoted: %+v", m)
	}
	is := []idleResult{{rssPerConn: 9}, {rssPerConn: 7}, {rssPerConn: 8}}
	if m := medianIdle(is); m.rssPerConn != 8 {
		t.Errorf("median RSS of 9, 7, 8: %v", m.rssPerConn)
	}
}

func TestHist(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(int64(i) * int64(time.Microsecond))
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.02 || d > 0.02 {
			t.Errorf("quantile(%v) = %v, want %v ±2%%", c.q, got, c.want)
		}
	}
	for _, v := range []uint64{0, 1, 63, 64, 65, 1000, 1 << 40, 1<<63 - 1} {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d out of range", v, i)
		}
		if got := histValue(i); float64(got) < float64(v)*0.98 || float64(got) > float64(v)*1.02+1 {
			t.Errorf("histValue(histIndex(%d)) = %d", v, got)
		}
	}
}

func TestParse(t *testing.T) {
	msg := appendMessage(nil, 123456789, 3, 42, 5)
	want := `{"type":"message","body":"t=123456789 s=3 n=42 p=xxxxx"}`
	if string(msg) != want {
		t.Fatalf("appendMessage = %s", msg)
	}
	r := newRunState(0)
	r.setWindow(4, 2, 1)
	r.sems[3] <- struct{}{}
	// A hubchat frame and two coalesced gorilla messages.
	r.onBodies([]byte(`{"type":"message","id":"1","username":"u3","body":"t=1 s=3 n=42","ts":1}`))
	r.onBodies([]byte(`{"type":"message","body":"t=1 s=0 n=0"}` + "\n" + `{"type":"message","body":"t=1 s=1 n=0"}`))
	if got := r.received.Load(); got != 3 {
		t.Errorf("received %d, want 3", got)
	}
	if len(r.sems[3]) != 0 {
		t.Error("window slot not released on completion")
	}
	if got := string(frameType([]byte(`{"type":"users","users":["a","b"]}`))); got != "users" {
		t.Errorf("frameType = %q", got)
	}
	if got := countUsers([]byte(`{"type":"users","users":["u1","u22","u3"]}`)); got != 3 {
		t.Errorf("countUsers = %d", got)
	}
}

// TestFragments checks that the client reassembles a fragmented message
// larger than its read buffer, answering a ping sent between fragments.
func TestFragments(t *testing.T) {
	cli, srv := net.Pipe()
	defer cli.Close()
	defer srv.Close()
	r := newRunState(0)
	c := &wsClient{r: r, nc: cli, br: newFrameReader(cli, 4096)}
	part := bytes.Repeat([]byte("a"), 3000)
	frame := func(b0 byte, p []byte) []byte {
		f := serverTextFrame(p)
		f[0] = b0
		return f
	}
	go func() {
		srv.Write(frame(0x01, part))          // text, not final
		srv.Write(frame(0x89, []byte("hi")))  // ping
		srv.Write(frame(0x80, part))          // final continuation
		srv.Write(frame(0x81, []byte("end"))) // small text
	}()
	pong := make(chan []byte, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := srv.Read(b)
		pong <- b[:n]
	}()
	p, op, err := c.next()
	if err != nil || op != opText || len(p) != 6000 {
		t.Fatalf("next() = %d bytes, op %d, %v; want 6000-byte text", len(p), op, err)
	}
	if got := <-pong; len(got) != 2+4+2 || got[0] != 0x8a {
		t.Errorf("pong frame % x", got)
	}
	p, op, err = c.next()
	if err != nil || op != opText || string(p) != "end" {
		t.Fatalf("next() = %q, op %d, %v", p, op, err)
	}
}

// TestStreamedUsers checks that a users snapshot larger than the read
// buffer is counted as it arrives, and that the join frames after it are
// counted, in runs or one by one, up to the frame that is not a join.
func TestStreamedUsers(t *testing.T) {
	cli, srv := net.Pipe()
	defer cli.Close()
	defer srv.Close()
	r := newRunState(0)
	c := &wsClient{r: r, nc: cli, br: newFrameReader(cli, 4096), ready: make(chan struct{})}
	var names []string
	for i := range 2000 {
		names = append(names, `"u`+strconv.Itoa(i)+`"`)
	}
	snapshot := []byte(`{"type":"users","users":[` + strings.Join(names, ",") + `]}`)
	go func() {
		// In pieces that split the frame anywhere, the list's key too.
		b := serverTextFrame(snapshot)
		for i := range 5 {
			b = append(b, serverTextFrame([]byte(`{"type":"join","username":"x`+strconv.Itoa(i)+`"}`))...)
		}
		b = append(b, serverTextFrame([]byte(`{"type":"leave","username":"x0"}`))...)
		for len(b) > 0 {
			k := min(len(b), 7+len(b)%1000)
			srv.Write(b[:k])
			b = b[k:]
		}
	}()
	if err := c.step(); err != nil {
		t.Fatal(err)
	}
	if !c.joined || c.known != 2000 {
		t.Fatalf("after the snapshot: joined %v, known %d; want true, 2000", c.joined, c.known)
	}
	// The joins, however they were split, and the leave after them.
	for i := 0; r.leaves.Load() == 0; i++ {
		if i == 10 {
			t.Fatal("the leave never came")
		}
		if err := c.step(); err != nil {
			t.Fatal(err)
		}
	}
	if c.known != 2004 {
		t.Fatalf("after 5 joins and a leave: known %d, want 2004", c.known)
	}
}

// TestHugeSmoke runs the huge workload's phases, restart and resume
// included, with a room of 30: hubchat, and limit for the targets that
// do not join (melody's path is the same); -short: hubchat only.
func TestHugeSmoke(t *testing.T) {
	t.Cleanup(stopAllTargets)
	for _, name := range availableTargets() {
		if name != "hubchat" && name != "limit" {
			continue
		}
		if testing.Short() && name != "hubchat" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			cfg := smokeConfig()
			cfg.hugeClients, cfg.hugeBase = 30, 10
			cfg.sustainRate, cfg.sustainFor = 10, 500*time.Millisecond
			cfg.duration, cfg.warmup = 300*time.Millisecond, 0
			r := runHuge(cfg, name, func(string, ...any) {})
			if r.err != nil {
				t.Fatalf("%s: %v", r.phase, r.err)
			}
			if r.one.lost != 0 || r.sustained.lost != 0 || r.sustained.disconnects != 0 || r.fanout.lost != 0 || r.afterRestartLost != 0 {
				t.Errorf("lost: one %d, sustained %d (%d evicted), fan-out %d, after the restart %d",
					r.one.lost, r.sustained.lost, r.sustained.disconnects, r.fanout.lost, r.afterRestartLost)
			}
			if r.formed <= 0 || r.reformed <= r.down || r.rssPer <= 0 {
				t.Errorf("formed %v, re-formed %v after %v down, RSS per member %v", r.formed, r.reformed, r.down, r.rssPer)
			}
			if specs[name].join && (r.resumed != int64(r.n) || r.plain != 0) {
				t.Errorf("after the restart %d of %d clients resumed, %d did not", r.resumed, r.n, r.plain)
			}
		})
	}
}
