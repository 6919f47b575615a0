package redisbroker

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hubchat/chat"
)

// fanoutClients is how many WebSocket clients each fan-out benchmark
// serves, spread evenly over the hubs.
const fanoutClients = 120

// BenchmarkFanout measures one message reaching every client of a room:
// on a single hub, and on hubs in two "processes" joined by Redis. Each
// iteration posts one message (alternating between the hubs) with at most
// window messages in flight; it reports deliveries per second and the
// latency from Post to a client's read, at the median and 99th percentile.
// With window=1 the latency is that of an idle room; with window=32 the
// throughput is near its limit and the latency mostly queueing.
func BenchmarkFanout(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, window := range []int{1, 32} {
		w := "/window=" + strconv.Itoa(window)
		b.Run("local"+w, func(b *testing.B) {
			benchFanout(b, window, []*chat.Hub{newBenchHub(b, nil, quiet)})
		})
		for _, n := range []int{2, 3} {
			b.Run("redis-"+strconv.Itoa(n)+"-instances"+w, func(b *testing.B) {
				s := startRedis(b)
				var hubs []*chat.Hub
				for range n {
					br := New(s.Client(), Options{Logger: quiet})
					b.Cleanup(func() { br.Close() })
					hubs = append(hubs, newBenchHub(b, br, quiet))
				}
				benchFanout(b, window, hubs)
			})
		}
	}
}

func newBenchHub(b *testing.B, br chat.Broker, log *slog.Logger) *chat.Hub {
	h := chat.NewHub(chat.Options{Name: "bench", Broker: br, Logger: log, RateLimit: -1, PingInterval: -1})
	b.Cleanup(func() { h.Close() })
	return h
}

func benchFanout(b *testing.B, window int, hubs []*chat.Hub) {
	var urls []string
	for _, h := range hubs {
		mux := http.NewServeMux()
		mux.Handle("/ws", chat.NewServer(h))
		hs := httptest.NewServer(mux)
		b.Cleanup(hs.Close)
		urls = append(urls, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws")
	}

	var (
		total     = b.N * fanoutClients
		delivered atomic.Int64
		pending   = make([]atomic.Int32, b.N) // clients yet to receive message i
		inflight  = make(chan struct{}, window)
		done      = make(chan struct{})
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, total)
		readers   sync.WaitGroup
	)
	for i := range pending {
		pending[i].Store(fanoutClients)
	}
	for i := range fanoutClients {
		ws, _, err := websocket.DefaultDialer.Dial(urls[i%len(urls)]+"?username=c"+strconv.Itoa(i), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ws.Close() })
		var f struct{ Type, Body string }
		for f.Type != "history" { // skip the welcome
			if err := ws.ReadJSON(&f); err != nil {
				b.Fatal(err)
			}
		}
		readers.Go(func() {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			}()
			for {
				var f struct{ Type, Body string }
				if err := ws.ReadJSON(&f); err != nil {
					return
				}
				if f.Type != "message" {
					continue // joins of later clients
				}
				idx, sent, _ := strings.Cut(f.Body, " ")
				i, _ := strconv.Atoi(idx)
				ns, _ := strconv.ParseInt(sent, 10, 64)
				mine = append(mine, time.Since(time.Unix(0, ns)))
				if pending[i].Add(-1) == 0 {
					<-inflight
				}
				if delivered.Add(1) == int64(total) {
					close(done)
					return
				}
			}
		})
	}
	// Wait until every hub knows every client, so that no join is still
	// on its way.
	for _, h := range hubs {
		eventually(b, "every client on every hub", func() bool { return len(h.Users()) == fanoutClients })
	}

	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		inflight <- struct{}{}
		body := strconv.Itoa(i) + " " + strconv.FormatInt(time.Now().UnixNano(), 10)
		if err := hubs[i%len(hubs)].Post(ctx, body); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	for _, h := range hubs {
		h.Close() // ends the readers
	}
	readers.Wait()

	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds())
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkPublish measures the adapter's cost per message: one Link.Publish
// is one round trip to Redis running publishScript (INCR, TIME, RPUSH,
// LTRIM, PUBLISH), here with one subscribed instance. The ping case is a
// bare round trip, for comparison.
func BenchmarkPublish(b *testing.B) {
	s := startRedis(b)
	rdb := s.Client()
	br := New(rdb, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b.Cleanup(func() { br.Close() })
	var got atomic.Int64
	l, err := br.Open("bench", func(ev chat.Event) {
		if ev.Kind == chat.EventMessage {
			got.Add(1)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	m := chat.Message{Username: "bench", Body: strings.Repeat("x", 100)}
	b.Run("ping", func(b *testing.B) {
		for b.Loop() {
			if err := rdb.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := l.Publish(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(1, "round-trips/op")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := l.Publish(ctx, m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
