package redisbroker

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hubchat/chat"
	"github.com/redis/go-redis/v9"
)

// Options configures a [Broker]. The zero value works: a local Redis, 1000
// messages of history per room, a heartbeat every 5 s and members of a dead
// instance released within 20 s.
type Options struct {
	// Addr is the Redis server's host:port, used when [New] is given a nil
	// client. Zero means "localhost:6379".
	Addr string

	// Prefix starts every key and channel the broker uses, so that several
	// applications can share a Redis. Zero means "hubchat:".
	Prefix string

	// HistorySize is how many public messages Redis keeps per room for
	// joiners, oldest dropped first. Each hub still hands out at most its
	// own chat.Options.HistorySize. Zero means 1000; a negative value keeps
	// no history.
	HistorySize int

	// HeartbeatInterval is how often each link refreshes its heartbeat and
	// looks for dead instances, and how long the broker waits on an idle
	// subscription before pinging it. Zero means 5 s.
	HeartbeatInterval time.Duration

	// MemberTTL is how long the members of an instance outlive its last
	// heartbeat. An instance that stops without closing its links (a crash,
	// kill -9, a network partition) has its members removed, and their
	// leaves announced, between MemberTTL and MemberTTL+HeartbeatInterval
	// after its last heartbeat. Zero means 15 s; a value below twice the
	// HeartbeatInterval is raised to that.
	MemberTTL time.Duration

	// Logger receives connection losses and recoveries at Warn and Info,
	// never one line per message. Nil means [slog.Default].
	Logger *slog.Logger
}

// Defaults, as documented on Options.
const (
	defaultAddr      = "localhost:6379"
	defaultPrefix    = "hubchat:"
	defaultHistory   = 1000
	defaultHeartbeat = 5 * time.Second
	defaultMemberTTL = 15 * time.Second
)

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = defaultAddr
	}
	if o.Prefix == "" {
		o.Prefix = defaultPrefix
	}
	switch {
	case o.HistorySize == 0:
		o.HistorySize = defaultHistory
	case o.HistorySize < 0:
		o.HistorySize = 0
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = defaultHeartbeat
	}
	if o.MemberTTL <= 0 {
		o.MemberTTL = defaultMemberTTL
	}
	o.MemberTTL = max(o.MemberTTL, 2*o.HeartbeatInterval)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Errors of the links' methods. Others come from Redis or the context.
var (
	// ErrClosed is returned by the methods of a closed [Broker] or link.
	ErrClosed = errors.New("redisbroker: closed")
	// ErrUnavailable is returned by Join and Publish while a link is
	// disconnected from Redis, or reconnected but not yet resynchronized.
	ErrUnavailable = errors.New("redisbroker: not connected to Redis")
)

// A Broker is a [chat.Broker] backed by Redis. Set it as chat.Options.Broker
// of every hub of a room, in every process; it is safe for concurrent use.
type Broker struct {
	opts Options
	sub  *redis.Client // pub/sub subscriptions: the client given to New
	rdb  *redis.Client // scripts: a copy of sub's options, without retries
	own  bool          // whether New created sub, and Close must close it

	mu     sync.Mutex
	links  map[*link]struct{}
	closed bool
}

var _ chat.Broker = (*Broker)(nil)

// New returns a Broker that uses client, or a client for opts.Addr if
// client is nil. Close the Broker after the hubs that use it; it does not
// close a client it was given.
//
// Scripts run on a second pool of connections made with client's options
// but without automatic retries, so that a command whose reply was lost
// with its connection is never run twice (a message published twice). The
// options' ReadTimeout and WriteTimeout (3 s by default) and the deadlines
// of the contexts given to Join, Leave and Publish bound how long a call
// waits for an unreachable Redis.
func New(client *redis.Client, opts Options) *Broker {
	opts = opts.withDefaults()
	b := &Broker{opts: opts, sub: client, links: make(map[*link]struct{})}
	if client == nil {
		b.sub = redis.NewClient(&redis.Options{Addr: opts.Addr})
		b.own = true
	}
	o := *b.sub.Options()
	if o.MaintNotificationsConfig != nil {
		c := *o.MaintNotificationsConfig
		o.MaintNotificationsConfig = &c
	}
	o.MaxRetries = -1
	o.ContextTimeoutEnabled = true
	b.rdb = redis.NewClient(&o)
	return b
}

// Open links a hub to room and starts delivering the room's events; see
// [chat.Broker]. It does not wait for Redis: the first event, an
// EventSync, is delivered once the subscription is established and the
// room's state loaded, and the link keeps reconnecting, with back-off,
// whenever Redis is unreachable. It fails only after Close.
func (b *Broker) Open(room string, deliver func(chat.Event)) (chat.Link, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	l := newLink(b, room, deliver)
	b.links[l] = struct{}{}
	l.start()
	return l, nil
}

// Close closes every link still open, releasing their members, and the
// Redis clients the Broker created. Hubs should be shut down first.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	links := make([]*link, 0, len(b.links))
	for l := range b.links {
		links = append(links, l)
	}
	b.mu.Unlock()

	var errs []error
	for _, l := range links {
		errs = append(errs, l.Close())
	}
	errs = append(errs, b.rdb.Close())
	if b.own {
		errs = append(errs, b.sub.Close())
	}
	return errors.Join(errs...)
}

func (b *Broker) forget(l *link) {
	b.mu.Lock()
	delete(b.links, l)
	b.mu.Unlock()
}
