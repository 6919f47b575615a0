package chat

import (
	"log/slog"
	"net/http"
	"slices"
	"time"
)

// Options configures a [Hub] and the [Server]s attached to it.
//
// A zero Options consists entirely of defaults: a room named "default" with
// 50 messages of history, 4096-byte bodies, 20 messages/s per connection,
// same-origin upgrades only, 30 s pings and no authentication. Options are
// copied by [NewHub]; changing them afterwards has no effect.
type Options struct {
	// Name names the room. Hubs in different processes that share a Broker
	// and a Name form one room. Zero means "default".
	Name string

	// HistorySize is how many public messages a joiner receives in its
	// history frame, oldest first. Zero means 50; a negative value turns
	// history off, and joiners then get no history frame at all. Private
	// messages never enter the history.
	HistorySize int

	// MaxBodyBytes caps one message body, in bytes of UTF-8. A longer body
	// gets an error frame and the connection stays open. Zero means 4096.
	// Keep it well below ReadLimit: JSON escaping can make a body six times
	// longer on the wire.
	MaxBodyBytes int

	// ReadLimit caps one incoming WebSocket frame, in bytes. A larger frame
	// closes the connection with 1009 (message too big). Zero means 32768,
	// which leaves room for a 4096-byte body even if every byte of it is
	// escaped as \u00XX.
	ReadLimit int64

	// RateLimit is how many frames per second one connection may send after
	// joining, on average; RateBurst more may arrive at once. A frame over the
	// limit is dropped with an error frame that mentions the rate; the
	// connection stays open. Zero means 20; a negative value turns the limit
	// off.
	RateLimit float64

	// RateBurst is the token-bucket depth of the rate limit, in frames.
	// Zero means the same as RateLimit (at least 1).
	RateBurst int

	// MaxUsers caps the members of the hub. A join over the cap gets an error
	// frame and the connection is closed with 1008. Zero means no cap.
	MaxUsers int

	// SendQueue is how many messages a connection may fall behind the room.
	// A join or leave counts as a small fraction of a message: presence
	// frames are small, and in a storm of them (a large room forming, or
	// every client reconnecting after a restart) the hub holds them back to
	// write them together, so a connection may fall many times SendQueue of
	// them behind.
	// The hub never waits for a client: one that falls further behind is
	// disconnected with 1008 ("too slow") and leaves at once (its leave is
	// announced, and nothing it sends afterwards is published); every
	// other client keeps a complete stream. Broadcast frames are stored once
	// per hub, not per connection, so a long queue costs no memory per
	// client. Zero means 4096; values below 8 are raised to 8, since a
	// joiner's welcome (the 101 response, its users snapshot and its
	// history) alone takes several entries.
	SendQueue int

	// PingInterval is how often the server pings every connection. Zero means
	// 30 s; a negative value turns pings off.
	PingInterval time.Duration

	// ReadTimeout is how long a connection may stay silent (no frame, no pong)
	// before it is considered dead: it is closed, its name freed and its
	// leave announced. It must exceed PingInterval. Zero means twice the
	// PingInterval (60 s by default), or 60 s when pings are off. An idle
	// connection parked without a goroutine (see the package doc) is
	// checked against it every second, or every quarter of it if shorter.
	ReadTimeout time.Duration

	// WriteTimeout bounds every write to a connection, the 101 response
	// included (it goes out with the connection's first frames); a client
	// that does not accept data within it is disconnected. Zero means 10 s.
	WriteTimeout time.Duration

	// JoinTimeout is how long a connection without ?username= has to send its
	// join frame; pings and pongs do not extend it. A connection that has
	// not sent it by then gets an error frame and is closed with 1008. Zero
	// means 10 s.
	JoinTimeout time.Duration

	// OriginPatterns lists the browser origins, besides the server's own,
	// that may open a connection. Each is a host pattern matched
	// case-insensitively against the host[:port] of the Origin header with
	// [path.Match], e.g. "localhost:8080" or "*.example.com". Requests without
	// an Origin header (non-browser clients) are always allowed. An upgrade
	// from any other origin gets 403. Empty means same origin only. As in
	// path.Match, '[' starts a character class: write a literal IPv6 host
	// as `\[::1\]:8080`.
	OriginPatterns []string

	// AllowedHosts lists the hosts a client may address: host patterns,
	// matched as OriginPatterns are, case-insensitively with [path.Match],
	// against the request's Host (host[:port]), e.g. "localhost:8080",
	// `\[::1\]:*` or "chat.example.com". An upgrade whose Host matches
	// none gets 403 (Forbidden). Empty means any host. Set it on servers
	// that browsers reach on a loopback or private address: the origin
	// check compares Origin with Host, so a page of evil.example whose name
	// the attacker re-points at 127.0.0.1 (DNS rebinding) is same-origin
	// unless the Host evil.example is refused.
	AllowedHosts []string

	// Authenticate, if set, is called with each upgrade request before the
	// upgrade. A non-nil error refuses the request with 401 and the error's
	// text. Otherwise the returned [Identity] is the connection's: its
	// Name overrides ?username= and the join frame, and is still validated
	// as any name is (an invalid one gets an error frame and 1008); the
	// rest must keep within the caps and rules of Identity, or the request
	// is refused with 401 and a line logged at Warn, never cut to fit. The
	// identity's Display and Avatar are public: they travel with the
	// member's join event and the users snapshot.
	//
	// With Authenticate, which vouches for the name, a member may have
	// several connections (tabs, devices): a connection whose name is
	// that of a member connected to this hub becomes one more connection
	// of the member. The room sees one member: its join is announced once,
	// when its first connection joins, and its leave when its last
	// connection closes; every message to the room or to the member
	// reaches all of its connections, and a private message it sends is
	// echoed to all of them. A further connection receives its own join
	// event (to it alone), the users snapshot and the history, as a
	// joiner does. Each connection has its own rate limit. With a Broker,
	// a member's connections must reach the same hub: one through another
	// hub of the room is refused as taken. Without Authenticate, a
	// connection asking for a member's name is refused as taken.
	Authenticate func(r *http.Request) (Identity, error)

	// CheckName, if set, is called with every name a connection asks to
	// join as (from ?username=, the join frame or Authenticate), once it
	// has passed the rules of [ValidateUsername], before the join: a
	// non-nil error refuses it as an invalid name, with an error frame
	// with the error's text and close 1008. Use it to reserve names, such
	// as the addresses of users outside the room (see [Hub.Deliver]). It
	// runs on the connection's goroutine, outside the hub's lock.
	CheckName func(name string) error

	// OnJoin, if set, is called once a member has joined and the join has
	// been announced, with the hub and the member's identity: once per
	// member, not per connection (see Authenticate). It runs on the
	// joining connection's goroutine, outside the hub's lock, so it may
	// call Hub methods.
	OnJoin func(h *Hub, id Identity)

	// OnLeave, if set, is called once a member has left (its last
	// connection has closed) and the leave has been announced, with the
	// identity it joined with and the same guarantees as OnJoin.
	OnLeave func(h *Hub, id Identity)

	// OnMessage, if set, is called for each valid message a client sends,
	// before it is published, with the identity of the connection that
	// sent it. It may rewrite m.Body (the result is validated again);
	// m.File, the attachment if any, is checked already, and changes to
	// it are ignored. A
	// non-nil error rejects the message: the sender gets an error frame
	// with the error's text and nothing is published. It runs on the
	// sender's goroutine, outside the hub's lock. ID and Time are not set
	// yet.
	//
	// OnMessage may also route a private message out of the room: given
	// one whose m.To is no member's name but an address it knows (e.g.
	// "bob@8082", a user of another server of the process), it carries
	// the message there (with [Hub.Deliver] on that room's hub), sets
	// m.ToOrigin to where it went and m.To to the address as the sender
	// is to see it, and returns nil. The hub then publishes the message
	// as the sender's copy: to the sender's connections alone, and to the
	// Store, never to a member that has the address for a name. Without
	// that, a private message to someone absent gets an error frame.
	OnMessage func(h *Hub, id Identity, m *Message) error

	// SystemName is the username on messages posted with [Hub.Post]. Clients
	// cannot join under it. Zero means "system".
	SystemName string

	// Broker, if set, carries the room's events between hubs in several
	// processes; see [Broker]. Nil means the room lives in this process only,
	// which costs nothing extra.
	Broker Broker

	// Store, if set, keeps the room's messages, public and private, beyond
	// the life of the process; see [Store]. NewHub reads the last
	// HistorySize messages from it, so that a restart loses no history,
	// and, without a Broker, numbers its messages on from the Store's last
	// ID, so that IDs never repeat. Every message is then written to the
	// Store in the background, many at a time (group commit), so that
	// fan-out never waits for it; see [Hub.Shutdown] for what happens to
	// messages still waiting when the hub stops. Each call to the Store is
	// bounded by WriteTimeout. Nil means the room's messages live in
	// memory only, which costs nothing extra.
	Store Store

	// ResumeLimit is the most messages a client that reconnects may be sent
	// to resume where it left off (see the package doc, Resume). A client
	// that missed more, or more than the hub can still find, is sent the
	// plain history with "resume":false instead. Zero means 1000; a
	// negative value turns resume off.
	//
	// To resume without a Store, and to bridge the moment between a
	// message's fan-out and its write to the Store, the hub keeps the last
	// max(HistorySize, ResumeLimit) public messages and the last
	// ResumeLimit private ones in memory, as encoded for the wire: one slot
	// of a ring per message, so no extra work per message, and about
	// (2×body + 250) bytes each, some 700 KB per room at the default with
	// 100-byte bodies. Without a Store, resume reaches back that far.
	ResumeLimit int

	// Files, if set, keeps the files that members upload to share them in
	// messages; see [Hub.FilesHandler], which serves uploads and downloads,
	// and [DirFiles], which keeps files in a directory. Nil means file
	// sharing is off: the files handler answers 404 and a message with a
	// file gets an error frame. The hub never deletes files. Files of
	// stored messages stay available with the history as long as the
	// FileStore keeps them (with DirFiles, the directory).
	Files FileStore

	// FilesURL is where clients find the files handler: the prefix of
	// every file's "url" (followed by its ID) and the URL uploads are
	// POSTed to, relative to the WebSocket endpoint's URL (taken as
	// http:// or https://) or absolute. Zero means "files/": the handler
	// mounted at "files/" beside the Server, e.g. /files/ for /ws and
	// /lobby/files/ for /lobby/ws. It should end in "/".
	FilesURL string

	// MaxUploadBytes caps one uploaded file, in bytes. A larger upload is
	// refused with 413 and nothing of it is stored. Zero means 10 MiB.
	MaxUploadBytes int64

	// UploadRate is how many files per second one member may upload, on
	// average; UploadBurst more may come at once. An upload over the
	// limit gets 429 (Too Many Requests) and nothing is stored; an upload
	// refused before its body is read (no token, a bad name, too large by
	// its Content-Length) does not count. The limit is per member (all of
	// its connections together), for as long as it is a member. Zero means 0.2 (one every 5 s, 12 a minute); a
	// negative value turns the limit off.
	UploadRate float64

	// UploadBurst is the token-bucket depth of the upload rate, in files.
	// Zero means 5.
	UploadBurst int

	// Origin names this hub among the hubs of a room that share a Broker,
	// for people to see, e.g. the server's port or region: every message
	// its clients send carries it (Message.Origin) to the other hubs,
	// which send it as "origin" so that their clients can show where a
	// message came from. A hub leaves its own Origin out of its frames.
	// At most MaxOriginBytes bytes of printable text. Empty means none.
	Origin string

	// TypingMaxMembers is the largest room, in members, in which typing
	// notices are forwarded (see the package doc, Typing); in a larger
	// room they are dropped, since "someone is typing" means little among
	// hundreds and each notice costs a frame per member. Zero means 100;
	// a negative value turns typing notices off.
	TypingMaxMembers int

	// Logger receives lifecycle events at Debug and unexpected failures at
	// Warn, never one line per message. Nil means [slog.Default].
	Logger *slog.Logger
}

// Defaults, as documented on Options.
const (
	defaultName         = "default"
	defaultHistory      = 50
	defaultMaxBody      = 4096
	defaultReadLimit    = 32 << 10
	defaultRate         = 20
	defaultSendQueue    = 4096
	minSendQueue        = 8 // room for a joiner's welcome
	defaultPing         = 30 * time.Second
	defaultReadTimeout  = 60 * time.Second
	defaultWriteTimeout = 10 * time.Second
	defaultJoinTimeout  = 10 * time.Second
	defaultSystemName   = "system"
	defaultFilesURL     = "files/"
	defaultMaxUpload    = 10 << 20
	defaultUploadRate   = 0.2
	defaultUploadBurst  = 5
	defaultTypingMax    = 100
)

// withDefaults returns a copy of o with every zero field replaced by its
// default. It is the only place defaults are applied.
func (o Options) withDefaults() Options {
	o.OriginPatterns = slices.Clone(o.OriginPatterns)
	o.AllowedHosts = slices.Clone(o.AllowedHosts)
	if o.Name == "" {
		o.Name = defaultName
	}
	switch {
	case o.HistorySize == 0:
		o.HistorySize = defaultHistory
	case o.HistorySize < 0:
		o.HistorySize = 0
	}
	switch {
	case o.ResumeLimit == 0:
		o.ResumeLimit = defaultResumeLimit
	case o.ResumeLimit < 0:
		o.ResumeLimit = 0
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = defaultMaxBody
	}
	if o.ReadLimit <= 0 {
		o.ReadLimit = defaultReadLimit
	}
	if o.RateLimit == 0 {
		o.RateLimit = defaultRate
	}
	if o.RateLimit > 0 && o.RateBurst <= 0 {
		o.RateBurst = max(1, int(o.RateLimit))
	}
	switch {
	case o.SendQueue <= 0:
		o.SendQueue = defaultSendQueue
	case o.SendQueue < minSendQueue:
		o.SendQueue = minSendQueue
	}
	if o.PingInterval == 0 {
		o.PingInterval = defaultPing
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = defaultReadTimeout
		if o.PingInterval > 0 {
			o.ReadTimeout = 2 * o.PingInterval
		}
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = defaultWriteTimeout
	}
	if o.JoinTimeout <= 0 {
		o.JoinTimeout = defaultJoinTimeout
	}
	if o.TypingMaxMembers == 0 {
		o.TypingMaxMembers = defaultTypingMax
	}
	if o.SystemName == "" {
		o.SystemName = defaultSystemName
	}
	if o.FilesURL == "" {
		o.FilesURL = defaultFilesURL
	}
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = defaultMaxUpload
	}
	if o.UploadRate == 0 {
		o.UploadRate = defaultUploadRate
	}
	if o.UploadBurst <= 0 {
		o.UploadBurst = defaultUploadBurst
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
