package prommetrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/prommetrics"
)

// fakeHub is a hub with fixed metrics.
type fakeHub struct {
	name string
	m    chat.Metrics
}

func (h fakeHub) Name() string          { return h.name }
func (h fakeHub) Metrics() chat.Metrics { return h.m }

// bounds are the lag buckets' bounds, as every chat.Metrics has them.
var bounds = func() [18]time.Duration {
	h := chat.NewHub(chat.Options{PingInterval: -1})
	defer h.Close()
	return h.Metrics().Lag.Bounds
}()

func lobby() fakeHub {
	m := chat.Metrics{
		Members: 3, Connections: 4,
		MessagesIn: 10, MessagesOut: 25, BytesOut: 5000, JoinsRefused: 2,
		Evictions: chat.Evictions{Slow: 1, ReadTimeout: 2, Kicked: 13, Other: 3},
		Rejected: chat.Rejections{Rate: 1, JSON: 2, Type: 3, Body: 4, NoSuchUser: 5, Muted: 14, File: 15,
			Hook: 6, History: 7, TooBig: 8, Unavailable: 9, Other: 10},
		BrokerErrors: 11, StoreErrors: 12,
	}
	m.Lag.Bounds = bounds
	m.Lag.Counts[0] = 20                // ≤ 25µs
	m.Lag.Counts[5] = 4                 // (500µs, 1ms]
	m.Lag.Counts[len(m.Lag.Bounds)] = 1 // over 10s
	m.Lag.Sum = 15 * time.Second
	return fakeHub{"lobby", m}
}

// TestCollector: every field of chat.Metrics is exported, counters as
// counters, gauges as gauges and the lag as a histogram in seconds, with
// the room label.
func TestCollector(t *testing.T) {
	c := prommetrics.NewCollector(lobby())
	want := `
# HELP hubchat_broker_errors_total Failed calls to the Broker.
# TYPE hubchat_broker_errors_total counter
hubchat_broker_errors_total{room="lobby"} 11
# HELP hubchat_connections Open WebSocket connections to the hub, joined or not.
# TYPE hubchat_connections gauge
hubchat_connections{room="lobby"} 4
# HELP hubchat_delivery_lag_seconds Time from the hub accepting a message to its write to a connection.
# TYPE hubchat_delivery_lag_seconds histogram
hubchat_delivery_lag_seconds_bucket{room="lobby",le="2.5e-05"} 20
hubchat_delivery_lag_seconds_bucket{room="lobby",le="5e-05"} 20
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.0001"} 20
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.00025"} 20
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.0005"} 20
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.001"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.0025"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.005"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.01"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.025"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.05"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.1"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.25"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="0.5"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="1"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="2.5"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="5"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="10"} 24
hubchat_delivery_lag_seconds_bucket{room="lobby",le="+Inf"} 25
hubchat_delivery_lag_seconds_sum{room="lobby"} 15
hubchat_delivery_lag_seconds_count{room="lobby"} 25
# HELP hubchat_evictions_total Connections the hub closed, by cause.
# TYPE hubchat_evictions_total counter
hubchat_evictions_total{cause="kicked",room="lobby"} 13
hubchat_evictions_total{cause="other",room="lobby"} 3
hubchat_evictions_total{cause="read_timeout",room="lobby"} 2
hubchat_evictions_total{cause="slow",room="lobby"} 1
# HELP hubchat_joins_refused_total Connections whose join was refused.
# TYPE hubchat_joins_refused_total counter
hubchat_joins_refused_total{room="lobby"} 2
# HELP hubchat_members Members of the room (with a Broker, of every process).
# TYPE hubchat_members gauge
hubchat_members{room="lobby"} 3
# HELP hubchat_messages_delivered_total Message frames written to connections, once per connection.
# TYPE hubchat_messages_delivered_total counter
hubchat_messages_delivered_total{room="lobby"} 25
# HELP hubchat_messages_received_total Messages the hub accepted from its clients (public and private).
# TYPE hubchat_messages_received_total counter
hubchat_messages_received_total{room="lobby"} 10
# HELP hubchat_rejected_frames_total Frames from members the hub refused, by cause.
# TYPE hubchat_rejected_frames_total counter
hubchat_rejected_frames_total{cause="body",room="lobby"} 4
hubchat_rejected_frames_total{cause="file",room="lobby"} 15
hubchat_rejected_frames_total{cause="history",room="lobby"} 7
hubchat_rejected_frames_total{cause="hook",room="lobby"} 6
hubchat_rejected_frames_total{cause="json",room="lobby"} 2
hubchat_rejected_frames_total{cause="muted",room="lobby"} 14
hubchat_rejected_frames_total{cause="no_such_user",room="lobby"} 5
hubchat_rejected_frames_total{cause="other",room="lobby"} 10
hubchat_rejected_frames_total{cause="rate",room="lobby"} 1
hubchat_rejected_frames_total{cause="too_big",room="lobby"} 8
hubchat_rejected_frames_total{cause="type",room="lobby"} 3
hubchat_rejected_frames_total{cause="unavailable",room="lobby"} 9
# HELP hubchat_sent_bytes_total Bytes written to connections.
# TYPE hubchat_sent_bytes_total counter
hubchat_sent_bytes_total{room="lobby"} 5000
# HELP hubchat_store_errors_total Failed calls to the Store and the FileStore.
# TYPE hubchat_store_errors_total counter
hubchat_store_errors_total{room="lobby"} 12
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

// TestCollectorRooms: one Collector over several hubs exports each with
// its room label, and registers without conflict.
func TestCollectorRooms(t *testing.T) {
	other := fakeHub{"other", chat.Metrics{Members: 7}}
	other.m.Lag.Bounds = bounds
	c := prommetrics.NewCollector(lobby(), other)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP hubchat_members Members of the room (with a Broker, of every process).
# TYPE hubchat_members gauge
hubchat_members{room="lobby"} 3
hubchat_members{room="other"} 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hubchat_members"); err != nil {
		t.Error(err)
	}
	// 9 metrics, 4 evictions and 12 rejections per room.
	if n := testutil.CollectAndCount(c); n != 2*(9+4+12) {
		t.Errorf("%d metrics, want %d", n, 2*(9+4+12))
	}
}

// TestCollectorAddRemove: hubs come and go, one per room.
func TestCollectorAddRemove(t *testing.T) {
	c := prommetrics.NewCollector()
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("no hub: %d metrics", n)
	}
	h1, h2 := lobby(), fakeHub{"other", chat.Metrics{}}
	for _, h := range []fakeHub{h1, h2} {
		if err := c.Add(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add(lobby()); err == nil || !strings.Contains(err.Error(), `"lobby"`) {
		t.Errorf("adding a second lobby: %v, want an error naming the room", err)
	}
	c.Remove(h1)
	want := `
# HELP hubchat_members Members of the room (with a Broker, of every process).
# TYPE hubchat_members gauge
hubchat_members{room="other"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "hubchat_members"); err != nil {
		t.Error(err)
	}
	c.Remove(h1) // not collected: nothing happens
	if err := c.Add(h1); err != nil {
		t.Errorf("adding the lobby back: %v", err)
	}
}

func TestCollectorSameRoom(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), `"lobby"`) {
			t.Errorf("recovered %v, want a panic naming the room", r)
		}
	}()
	prommetrics.NewCollector(lobby(), lobby())
}

// TestCollectorHub: the Collector reads a live hub.
func TestCollectorHub(t *testing.T) {
	hub := chat.NewHub(chat.Options{Name: "live", Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(chat.NewServer(hub))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		srv.Close()
	}()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"?username=alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"message","body":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	for { // join, users, history, then the message
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), `"body":"hi"`) {
			break
		}
	}

	c := prommetrics.NewCollector(hub)
	want := `
# HELP hubchat_members Members of the room (with a Broker, of every process).
# TYPE hubchat_members gauge
hubchat_members{room="live"} 1
# HELP hubchat_messages_delivered_total Message frames written to connections, once per connection.
# TYPE hubchat_messages_delivered_total counter
hubchat_messages_delivered_total{room="live"} 1
# HELP hubchat_messages_received_total Messages the hub accepted from its clients (public and private).
# TYPE hubchat_messages_received_total counter
hubchat_messages_received_total{room="live"} 1
`
	// The writers add their counts just after the write: poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := testutil.CollectAndCompare(c, strings.NewReader(want),
			"hubchat_members", "hubchat_messages_received_total", "hubchat_messages_delivered_total")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // polling, with a deadline
	}
	if n := hub.Metrics().Lag.Count(); n != 1 {
		t.Errorf("lag histogram counts %d, want 1", n)
	}
}

// ExampleNewCollector serves a hub's metrics on /metrics.
func ExampleNewCollector() {
	hub := chat.NewHub(chat.Options{Name: "lobby"})
	defer hub.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(prommetrics.NewCollector(hub))
	mux := http.NewServeMux()
	mux.Handle("/ws", chat.NewServer(hub))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "hubchat_members") || strings.HasPrefix(line, "hubchat_evictions_total") {
			fmt.Print(line)
		}
	}
	// Output:
	// hubchat_evictions_total{cause="kicked",room="lobby"} 0
	// hubchat_evictions_total{cause="other",room="lobby"} 0
	// hubchat_evictions_total{cause="read_timeout",room="lobby"} 0
	// hubchat_evictions_total{cause="slow",room="lobby"} 0
	// hubchat_members{room="lobby"} 0
}
