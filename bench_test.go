package chat_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hubchat/chat"
)

// BenchmarkEndToEnd measures fan-out over loopback with real WebSocket
// clients in this process: N clients in one hub, 4 of them sending with a
// total window of 32 messages in flight, every client reading every message. It reports
// deliveries per second, end-to-end latency (from a timestamp carried in the
// body) and lost messages, which must be 0. Clients and server share the
// machine, so compare figures within one run; bench/ runs the server in a
// process of its own against other libraries.
func BenchmarkEndToEnd(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchEndToEnd(b, n, 4, 8) })
	}
}

func benchEndToEnd(b *testing.B, n, senders, window int) {
	raiseFileLimit(b, 2*n+100)
	s := startServer(b, chat.Options{RateLimit: -1, HistorySize: -1, SendQueue: 1 << 14})
	var (
		hist     latencyHistogram
		received atomic.Int64
		wg       sync.WaitGroup
	)
	clients := connectMany(b, s, n)
	for _, ws := range clients {
		wg.Go(func() {
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				_, sent, ok := parseBody(data)
				if !ok {
					continue // join, users
				}
				hist.add(time.Since(time.Unix(0, sent)))
				received.Add(1)
			}
		})
	}

	// At most senders×window messages are in flight: a message is sent
	// only when every client has received all but the last senders×window
	// ones, so that clients which keep up are never too far behind.
	inFlight := int64(senders * window)
	sent := 0
	start := time.Now()
	for b.Loop() {
		deadline := time.Now().Add(30 * time.Second)
		for received.Load() < (int64(sent)-inFlight)*int64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("message %d: deliveries stalled at %d", sent, received.Load())
			}
			time.Sleep(20 * time.Microsecond) // polling, with a deadline
		}
		i := sent % senders
		body := fmt.Sprintf(`{"type":"message","body":"s=%d t=%d"}`, i, time.Now().UnixNano())
		if err := clients[i].WriteMessage(websocket.TextMessage, []byte(body)); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	want := int64(sent) * int64(n)
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling, with a deadline
	}
	elapsed := time.Since(start)
	b.StopTimer()
	got := received.Load()
	b.ReportMetric(float64(got)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(hist.quantile(0.50).Seconds()*1e6, "p50-µs")
	b.ReportMetric(hist.quantile(0.99).Seconds()*1e6, "p99-µs")
	b.ReportMetric(float64(want-got), "lost")
	if got != want {
		b.Errorf("lost %d of %d deliveries", want-got, want)
	}
	for _, ws := range clients {
		ws.Close()
	}
	wg.Wait()
}

// parseBody finds "s=<sender> t=<unix nanos>" in a message frame.
func parseBody(data []byte) (from int, sent int64, ok bool) {
	i := bytes.Index(data, []byte(`"body":"s=`))
	if i < 0 {
		return 0, 0, false
	}
	rest := data[i+len(`"body":"s=`):]
	sp := bytes.IndexByte(rest, ' ')
	end := bytes.IndexByte(rest, '"')
	if sp < 0 || end < sp+3 {
		return 0, 0, false
	}
	from, err1 := strconv.Atoi(string(rest[:sp]))
	sent, err2 := strconv.ParseInt(string(rest[sp+3:end]), 10, 64)
	return from, sent, err1 == nil && err2 == nil
}

// connectMany joins n clients, 64 at a time.
func connectMany(b *testing.B, s *testServer, n int) []*websocket.Conn {
	clients := make([]*websocket.Conn, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ws, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("%s?username=u%d", s.url, i), nil)
			if err != nil {
				failed.Store(err)
				return
			}
			clients[i] = ws
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("connect: %v", err)
	}
	b.Cleanup(func() {
		for _, ws := range clients {
			ws.Close()
		}
	})
	return clients
}

// latencyHistogram counts latencies in buckets of 2% width, lock-free.
type latencyHistogram struct {
	buckets [1200]atomic.Int64
}

const histBase = 1.02

func (h *latencyHistogram) add(d time.Duration) {
	us := max(1, float64(d.Microseconds()))
	i := min(len(h.buckets)-1, int(math.Log(us)/math.Log(histBase)))
	h.buckets[i].Add(1)
}

func (h *latencyHistogram) quantile(q float64) time.Duration {
	var total int64
	for i := range h.buckets {
		total += h.buckets[i].Load()
	}
	target := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range h.buckets {
		if seen += h.buckets[i].Load(); seen >= target && seen > 0 {
			return time.Duration(math.Pow(histBase, float64(i+1))) * time.Microsecond
		}
	}
	return 0
}

// BenchmarkIdleMemory connects and joins 10,000 idle clients from a child
// process and reports the server's memory per connection: Go heap, heap
// plus goroutine stacks, and resident set size.
func BenchmarkIdleMemory(b *testing.B) {
	const n = 10000
	raiseFileLimit(b, n+200)
	s := startServer(b, chat.Options{})
	before := memNow()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HUBCHAT_IDLE_CLIENTS="+s.url+" "+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close() // the child exits when its stdin closes
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		b.Fatalf("client process: %q, %v", line, err)
	}
	deadline := time.Now().Add(time.Minute)
	for len(s.hub.Users()) < n {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d clients joined", len(s.hub.Users()), n)
		}
		time.Sleep(10 * time.Millisecond) // polling, with a deadline
	}
	after := memNow()
	for b.Loop() { // nothing to repeat; b.Loop's reset would drop the metrics below
	}
	b.ReportMetric(float64(after.heap-before.heap)/n, "heap-B/conn")
	b.ReportMetric(float64(after.heap+after.stack-before.heap-before.stack)/n, "heap+stack-B/conn")
	b.ReportMetric(float64(after.rss-before.rss)/n, "rss-B/conn")
}

type memSample struct{ heap, stack, rss uint64 }

func memNow() memSample {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: ms.HeapInuse, stack: ms.StackInuse, rss: rssBytes()}
}

// rssBytes reads VmRSS from /proc/self/status (0 where there is none).
func rssBytes() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// idleClients is the child process of BenchmarkIdleMemory: it joins n
// clients, reads their welcome, says "ready" and holds them until its
// stdin closes.
func idleClients(spec string) int {
	url, nStr, _ := strings.Cut(spec, " ")
	n, _ := strconv.Atoi(nStr)
	_ = raiseNoFile(0)
	conns := make([]*websocket.Conn, 0, n)
	for i := range n {
		ws, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("%s?username=idle%d", url, i), nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			return 1
		}
		conns = append(conns, ws)
		// Keep reading (and answering pings) in the background.
		go func() {
			for {
				if _, _, err := ws.NextReader(); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, ws := range conns {
		ws.Close()
	}
	return 0
}

// raiseFileLimit lifts the soft limit on open files, or skips the
// benchmark if the hard limit is below need.
func raiseFileLimit(b *testing.B, need int) {
	if err := raiseNoFile(uint64(need)); err != nil {
		b.Skip(err)
	}
}

// BenchmarkRoomForming measures how long a room of N members takes to
// form: N clients connect and join, 64 handshakes at a time, and the clock
// stops when every client knows every member (its users snapshot plus the
// join events after it reach N). Each iteration forms a new room. Clients
// and server share the machine; compare figures within one run.
func BenchmarkRoomForming(b *testing.B) {
	for _, n := range []int{1000, 2000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			benchRoomForming(b, n, chat.Options{})
		})
	}
}

func benchRoomForming(b *testing.B, n int, opts chat.Options) {
	raiseFileLimit(b, 2*n+100)
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.RateLimit = -1
	for b.Loop() {
		hub := chat.NewHub(opts)
		ts := httptest.NewServer(chat.NewServer(hub))
		url := "ws" + strings.TrimPrefix(ts.URL, "http")
		var (
			formed  sync.WaitGroup
			readers sync.WaitGroup
			failed  atomic.Value
			sem     = make(chan struct{}, 64)
			conns   = make([]*websocket.Conn, n)
		)
		formed.Add(n)
		var dialers sync.WaitGroup
		for i := range n {
			sem <- struct{}{}
			dialers.Go(func() {
				defer func() { <-sem }()
				ws, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("%s?username=u%d", url, i), nil)
				if err != nil {
					failed.Store(err)
					formed.Done()
					return
				}
				conns[i] = ws
				readers.Go(func() { readUntilFormed(ws, n, formed.Done) })
			})
		}
		dialers.Wait()
		if err := failed.Load(); err != nil {
			b.Fatalf("connect: %v", err)
		}
		formed.Wait()
		b.StopTimer()
		for _, ws := range conns {
			ws.Close()
		}
		readers.Wait()
		_ = hub.Close()
		ts.Close()
		b.StartTimer()
	}
}

// readUntilFormed reads ws until the client knows n members, calls done,
// and reads on until the connection ends.
func readUntilFormed(ws *websocket.Conn, n int, done func()) {
	known, snap := 0, false
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			if known < n {
				done()
			}
			return
		}
		if known >= n {
			continue
		}
		switch {
		case bytes.HasPrefix(data, []byte(`{"type":"users","users":[`)):
			list := data[len(`{"type":"users","users":[`):]
			list = list[:bytes.IndexByte(list, ']')] // names are u<digits>
			known, snap = bytes.Count(list, []byte(","))+1, true
		case snap && bytes.HasPrefix(data, []byte(`{"type":"join"`)):
			known++
		case snap && bytes.HasPrefix(data, []byte(`{"type":"leave"`)):
			known--
		default:
			continue
		}
		if known >= n {
			done()
		}
	}
}
