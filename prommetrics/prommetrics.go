// Package prommetrics exports the metrics of chat hubs ([chat.Hub.Metrics])
// to Prometheus: a [prometheus.Collector] over one or more hubs, each
// labelled with its room's name. It is a module of its own, so that the
// chat library itself does not depend on the Prometheus client.
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(prommetrics.NewCollector(hub1, hub2))
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// Every metric has the label room, the hub's [chat.Hub.Name]:
//
//	hubchat_members                     gauge      Metrics.Members
//	hubchat_connections                 gauge      Metrics.Connections
//	hubchat_messages_received_total     counter    Metrics.MessagesIn
//	hubchat_messages_delivered_total    counter    Metrics.MessagesOut
//	hubchat_sent_bytes_total            counter    Metrics.BytesOut
//	hubchat_joins_refused_total         counter    Metrics.JoinsRefused
//	hubchat_evictions_total             counter    Metrics.Evictions, by cause:
//	                                               slow, read_timeout, kicked,
//	                                               other
//	hubchat_rejected_frames_total       counter    Metrics.Rejected, by cause:
//	                                               rate, json, type, body,
//	                                               no_such_user, muted, file,
//	                                               hook, history, too_big,
//	                                               unavailable, other
//	hubchat_broker_errors_total         counter    Metrics.BrokerErrors
//	hubchat_store_errors_total          counter    Metrics.StoreErrors
//	hubchat_delivery_lag_seconds        histogram  Metrics.Lag
//
// The p99 delivery lag over the last five minutes, per room:
//
//	histogram_quantile(0.99, sum by (room, le) (rate(hubchat_delivery_lag_seconds_bucket[5m])))
//
// With a Broker, each process exports its own hubs: the counters are that
// hub's, while hubchat_members counts the members of the whole room (take
// the max over processes, not the sum).
package prommetrics

import (
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubchat/chat"
)

// A Hub is what a [Collector] reads: its room's name and its metrics.
// [*chat.Hub] is one.
type Hub interface {
	Name() string
	Metrics() chat.Metrics
}

var _ Hub = (*chat.Hub)(nil)

// A Collector is a [prometheus.Collector] of the metrics of a set of hubs,
// which [Collector.Add] and [Collector.Remove] change at any time (a
// program that starts rooms as it runs adds their hubs as it goes). It
// reads each hub's [chat.Hub.Metrics] when Prometheus scrapes, and keeps
// no state of its own. Use [NewCollector]; a Collector is safe for
// concurrent use.
type Collector struct {
	mu   sync.Mutex
	hubs []Hub
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector of the metrics of hubs; register it
// with a [prometheus.Registerer]. The hubs must have different names, a
// room label appearing once per metric: NewCollector panics if two share
// one.
func NewCollector(hubs ...Hub) *Collector {
	c := &Collector{}
	for _, h := range hubs {
		if err := c.Add(h); err != nil {
			panic(err)
		}
	}
	return c
}

// Add adds h to the hubs c collects. It fails if c collects a hub of the
// same name already.
func (c *Collector) Add(h Hub) error {
	name := h.Name()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.hubs {
		if o.Name() == name {
			return fmt.Errorf("prommetrics: a hub of room %q is collected already", name)
		}
	}
	c.hubs = append(c.hubs, h)
	return nil
}

// Remove removes h (compared with ==) from the hubs c collects, if it is
// one of them: its room's metrics are no longer exported.
func (c *Collector) Remove(h Hub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hubs = slices.DeleteFunc(c.hubs, func(o Hub) bool { return o == h })
}

const namespace = "hubchat"

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, append([]string{"room"}, labels...), nil)
}

var (
	membersDesc     = newDesc("members", "Members of the room (with a Broker, of every process).")
	connectionsDesc = newDesc("connections", "Open WebSocket connections to the hub, joined or not.")
	inDesc          = newDesc("messages_received_total", "Messages the hub accepted from its clients (public and private).")
	outDesc         = newDesc("messages_delivered_total", "Message frames written to connections, once per connection.")
	bytesDesc       = newDesc("sent_bytes_total", "Bytes written to connections.")
	refusedDesc     = newDesc("joins_refused_total", "Connections whose join was refused.")
	evictionsDesc   = newDesc("evictions_total", "Connections the hub closed, by cause.", "cause")
	rejectedDesc    = newDesc("rejected_frames_total", "Frames from members the hub refused, by cause.", "cause")
	brokerDesc      = newDesc("broker_errors_total", "Failed calls to the Broker.")
	storeDesc       = newDesc("store_errors_total", "Failed calls to the Store and the FileStore.")
	lagDesc         = newDesc("delivery_lag_seconds", "Time from the hub accepting a message to its write to a connection.")
)

// Describe sends the descriptors of every metric the Collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		membersDesc, connectionsDesc, inDesc, outDesc, bytesDesc, refusedDesc,
		evictionsDesc, rejectedDesc, brokerDesc, storeDesc, lagDesc,
	} {
		ch <- d
	}
}

// Collect reads every hub's metrics and sends them.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	hubs := slices.Clone(c.hubs)
	c.mu.Unlock()
	for _, h := range hubs {
		collect(ch, h.Name(), h.Metrics())
	}
}

func collect(ch chan<- prometheus.Metric, room string, m chat.Metrics) {
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), room)
	}
	counter := func(d *prometheus.Desc, v uint64, cause ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{room}, cause...)...)
	}
	gauge(membersDesc, m.Members)
	gauge(connectionsDesc, m.Connections)
	counter(inDesc, m.MessagesIn)
	counter(outDesc, m.MessagesOut)
	counter(bytesDesc, m.BytesOut)
	counter(refusedDesc, m.JoinsRefused)

	e := m.Evictions
	counter(evictionsDesc, e.Slow, "slow")
	counter(evictionsDesc, e.ReadTimeout, "read_timeout")
	counter(evictionsDesc, e.Kicked, "kicked")
	counter(evictionsDesc, e.Other, "other")

	r := m.Rejected
	counter(rejectedDesc, r.Rate, "rate")
	counter(rejectedDesc, r.JSON, "json")
	counter(rejectedDesc, r.Type, "type")
	counter(rejectedDesc, r.Body, "body")
	counter(rejectedDesc, r.NoSuchUser, "no_such_user")
	counter(rejectedDesc, r.Muted, "muted")
	counter(rejectedDesc, r.File, "file")
	counter(rejectedDesc, r.Hook, "hook")
	counter(rejectedDesc, r.History, "history")
	counter(rejectedDesc, r.TooBig, "too_big")
	counter(rejectedDesc, r.Unavailable, "unavailable")
	counter(rejectedDesc, r.Other, "other")

	counter(brokerDesc, m.BrokerErrors)
	counter(storeDesc, m.StoreErrors)

	// Prometheus' buckets are cumulative; the last, +Inf, is the count.
	lag := m.Lag
	buckets := make(map[float64]uint64, len(lag.Bounds))
	var cum uint64
	for i, b := range lag.Bounds {
		cum += lag.Counts[i]
		buckets[b.Seconds()] = cum
	}
	ch <- prometheus.MustNewConstHistogram(lagDesc, cum+lag.Counts[len(lag.Bounds)], lag.Sum.Seconds(), buckets, room)
}
