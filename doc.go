// Package chat implements WebSocket chat rooms that mount on any
// [net/http] mux, path or port.
//
// A [Hub] is one room: its members in join order, the order and ids of its
// messages, its history, and the fan-out of every event to the members'
// connections. A [Server] is the [http.Handler] that upgrades requests to
// WebSocket connections and attaches them to a hub. [Options] configures
// both; its zero value is a sensible room.
//
// # Quick start
//
//	hub := chat.NewHub(chat.Options{})     // one room, all defaults
//	mux := http.NewServeMux()
//	mux.Handle("/ws", chat.NewServer(hub)) // *chat.Server is an http.Handler
//	mux.Handle("/", webui.Handler())       // a web client for it
//	hs := &http.Server{Addr: "localhost:8080", Handler: mux}
//	go hs.ListenAndServe()
//	// ... on shutdown: WebSockets first, then the HTTP server.
//	hub.Shutdown(ctx)
//	hs.Shutdown(ctx)
//
// Package [github.com/hubchat/chat/webui] is that web client: one page,
// no build step, embedded in the package. The command examples/static in
// the repository is this program in full, with signal handling.
//
// A process may run any number of hubs, one per room, path or port; they
// share nothing, unless they share a [Broker] (see Several servers, one
// room). Go code takes part with [Hub.Post] (a system message),
// [Hub.Send] (a system message to one member), [Hub.Deliver] (a private
// message from outside the room), [Hub.Users], [Hub.History],
// the moderation methods (see Moderation), and the hooks Options.OnJoin,
// OnLeave and OnMessage (which may rewrite or reject a message), which
// receive the hub and the member's [Identity]. Options.Authenticate plugs
// in authentication (see Identity and several connections). With
// Options.Files, members share files and images (see Files).
//
// # Protocol
//
// Each WebSocket text frame holds one JSON object. A client connects to the
// Server's URL, e.g. ws://host:8080/ws?username=alice. Without ?username=
// (and without Options.Authenticate), its first frame must be a join.
//
// Client to server:
//
//	{"type":"join","username":"alice"}
//	{"type":"join","username":"alice","since":"17"}    join, resuming after message 17
//	{"type":"message","body":"Hello"}                  to everyone
//	{"type":"message","body":"psst","to":"bob"}        private: to bob, echoed to the sender
//	{"type":"message","body":"Look","file":"Q2ZJ7U"}   with a file it uploaded (body may be "")
//	{"type":"history","before":"17","limit":50}        the messages before 17
//	{"type":"typing"}                                  the member is typing
//
// Server to client:
//
//	{"type":"message","id":"17","username":"alice","body":"Hi!","ts":1763780000123}
//	{"type":"message","id":"18","username":"bob","origin":"8082","body":"Hi!","ts":1763780000456}
//	{"type":"join","username":"bob"}
//	{"type":"join","username":"bob","display":"Bob B.","avatar":"https://..."}
//	{"type":"leave","username":"bob"}
//	{"type":"users","users":["alice","bob"]}           to the joiner only
//	{"type":"users","users":["alice","bob"],"profiles":{"bob":{"display":"Bob B."}}}
//	{"type":"history","messages":[{"type":"message",...}, ...]}  to the joiner only
//	{"type":"history","messages":[...],"resume":true}  to a joiner that resumes
//	{"type":"history","before":"17","messages":[...]}  a page of older messages
//	{"type":"upload","url":"files/","token":"T0K3N","max":10485760}  with Options.Files, once joined
//	{"type":"typing","username":"alice"}               alice is typing
//	{"type":"error","error":"reason"}
//
// A message's "id" is a decimal string, unique and increasing within the
// room; "ts" is the time the hub accepted it, in Unix milliseconds. Private
// messages carry "to"; messages from [Hub.Post] and [Hub.Send] carry
// "system":true; one whose sender is elsewhere (on another server of the
// room, or outside it) carries "origin" (see Several servers, one room).
// A join event carries the member's public profile
// ("display", "avatar"; see [Profile]) if it has one, and the users
// snapshot the profiles of the members that have one in "profiles", by
// name; both appear only with Options.Authenticate, and are absent, not
// empty, otherwise. A message with a file carries it (see Files):
//
//	"file":{"id":"Q2ZJ7U","name":"cat.png","size":48213,"type":"image/png","url":"files/Q2ZJ7U"}
//
// Messages carry the username only: clients show the display name of the
// member of that name. The server re-encodes everything it sends: "id",
// "ts", "username", "display", "avatar" and the file's object are its
// own, never the client's.
//
// # Resume and older pages
//
// A client that reconnects says which message it saw last, with ?since=ID
// in the URL or "since":"ID" in its join frame. Its history frame (after
// its users snapshot, where every joiner's goes) then carries "resume":
// with "resume":true, it holds exactly the messages after ID that the
// client may see, the public ones and its own private ones (to or from
// it), oldest first, and the live stream goes on from the next message: no
// gap, no duplicate. If the hub cannot give all of them, the frame is the
// plain history (the last Options.HistorySize public messages) with
// "resume":false, and the client knows it missed something. That happens
// when there are more than Options.ResumeLimit (1000) of them; when
// neither the hub's memory nor the Store reaches back to ID (the Store
// fails with [ErrNotRetained]); when ID is not a message of the room
// (greater than its last: the Store was reset, say); when since is not a
// decimal ID; and when resume is off (ResumeLimit < 0). Without a Store the
// hub resumes from memory, which holds the last ResumeLimit public and
// ResumeLimit private messages; with one, it reads the Store and adds what
// it has accepted but not yet stored.
//
// A member asks for older messages with {"type":"history","before":ID,
// "limit":N} and receives {"type":"history","before":ID,"messages":[...]}:
// the last N messages before ID that it may see, public and its own
// private ones, oldest first; an empty list at the beginning of the room
// (or, without a Store, beyond what memory holds). "limit" defaults to 50
// and is capped at 100. A missing or malformed "before", or a "limit"
// that is not a whole number of at least 1, gets an error frame; the
// connection stays open. Page requests count against the rate limit like
// any frame, and are read from the Store off the hub's lock.
//
// # Files
//
// With Options.Files set (e.g. to [DirFiles]("files")) and
// [Hub.FilesHandler] mounted beside the Server, members share files and
// images:
//
//	mux.Handle("/ws", chat.NewServer(hub))
//	mux.Handle("/files/", hub.FilesHandler())
//
// Each connection receives, once joined, an upload frame with its upload
// token (a secret good while the connection is open), the URL to upload
// to and the size cap. A client POSTs the file's content to that URL
// (relative to the WebSocket endpoint's, as http:// or https://), with
// ?name= and the token in the [UploadTokenHeader] header, and is answered
// with the file's object; it then sends a message with "file" set to the
// file's ID. The hub checks that the member uploaded that file to this
// room (it may attach it to more than one message), and the message
// carries the file's object to everyone: its name, size, type and URL. Clients show PNG, JPEG, GIF and WebP images as
// previews ([File.Inline]) and other files as download links.
//
// Uploads are capped (Options.MaxUploadBytes, 10 MiB) and rate-limited
// per member (Options.UploadRate); the type is sniffed from the content,
// never taken from the client; names are checked, never used as paths;
// and everything but raster images is served as an attachment, with
// X-Content-Type-Options: nosniff and a sandboxing Content-Security-Policy,
// so that an uploaded HTML or SVG file cannot run script on your origin.
// See [Hub.FilesHandler] for every answer. Files are kept by the
// [FileStore] and never deleted by the hub, so that with a Store the
// files of a room survive a restart with its history.
//
// # Ordering
//
// All members of a room see broadcast events (messages, joins, leaves) in
// one total order. When bob joins, every member, bob included, receives
// {"type":"join","username":"bob"}; bob then receives the users snapshot
// (containing him) and the history (the last Options.HistorySize public
// messages, oldest first) before any later event. Clients keep their member
// list from the snapshot plus join and leave events: the snapshot goes only
// to the joiner, because broadcasting it on every join would cost O(N²)
// bytes and stop a room of thousands from forming. Private messages never
// enter the history.
//
// During a storm of joins into a large room (thousands connecting at once,
// or every client reconnecting after a restart), bob's snapshot may come
// later, once the storm is over or with the next message or leave: it is
// then the member list of that moment, which already contains those who
// joined after him, and their join events are not sent to him. Either way
// the snapshot plus the events after it give the room's members, and every
// message reaches him after his snapshot and history, in order. A resumed
// history (see Resume) comes in the same place, and the first message
// after it is the next one after its last.
//
// # Typing
//
// A member that sends {"type":"typing"} is announced to every member of
// the room, itself included, as {"type":"typing","username":"alice"}.
// Clients show "alice is typing…" until her message arrives, or until a
// few seconds pass without another notice (the web client of package
// webui waits 4 s), and send one at most every 2 s while the user types.
// Notices are fleeting: never stored, never in the history, a resume or a
// page, and never refused with an error: a typing frame over one of the
// bounds below is dropped silently. Typing frames do not count against
// Options.RateLimit, so a member's messages go through however fast its
// client sends them. The bounds keep typing cheap in a large room:
//
//   - one notice per member every 1.5 s at most;
//   - at most 20 notices per second per hub (20 at once), whoever types;
//   - none in a room of more than Options.TypingMaxMembers members (100
//     by default), and none from a muted member;
//   - a notice is written with joins and leaves and weighs nothing
//     towards Options.SendQueue: it never makes a client too slow.
//
// So a hub writes at most 20 × TypingMaxMembers notices per second (2,000
// frames by default), in as few writes as presence. With a [Broker] whose
// links are [TypingLink]s ([MemoryBroker]'s and redisbroker's are),
// notices reach the members on every hub of the room; with another, the
// members on the typist's hub only.
//
// # Usernames
//
// [ValidateUsername] states the rules: 1 to 32 characters after trimming
// surrounding white space, of assigned letters, marks, numbers,
// punctuation, symbols and the space U+0020, with at least one letter,
// number, punctuation mark or symbol. Nothing invisible is allowed: no
// control or format characters (zero-width spaces and joiners, bidi
// controls, the byte order mark), no Unicode Default_Ignorable_Code_Point
// (variation selectors, the combining grapheme joiner, the Hangul fillers
// U+115F, U+1160, U+3164 and U+FFA0), no white space but U+0020, and no
// blank-looking symbols such as U+2800 BRAILLE PATTERN BLANK, so that no
// name looks like another with something hidden in it, or like nothing.
// Names are unique in a room under Unicode simple case folding, the
// equivalence of [strings.EqualFold], so "Sam", "SAM" and "ſam" are the
// same name; [NameKey] returns the canonical form.
// Names are not normalized: "é" and "e" + U+0301 are different names.
// Options.SystemName is reserved.
//
// # Identity and several connections
//
// Without Options.Authenticate a connection's identity is its name, from
// ?username= or its join frame, and a second connection asking for a
// member's name is refused as taken. With it, Authenticate returns the
// connection's [Identity]: its name, a display name and an avatar URL,
// which are public (every member receives them with the join event and
// the users snapshot), and roles and claims, which only the hooks see.
// Every part has a size cap (Display [MaxDisplayRunes] characters, Avatar
// [MaxAvatarBytes] bytes of an http or https URL, Roles and Claims
// [MaxClaims] entries and [MaxClaimsBytes] bytes together): an identity
// over one, or otherwise invalid, is refused with 401 and a line logged at
// Warn, never cut to fit. [ValidateIdentity] applies the same rules.
//
// With Authenticate, which vouches for the name, the connections of one
// name are one member: a user's tabs and devices. The first connection
// joins as any member does; a further one receives its own join event (to
// it alone), the users snapshot and the history, and the room sees
// nothing. Every message to the room or to the member reaches all of its
// connections, and what it sends privately is echoed to all of them. Its
// leave is announced when its last connection closes. OnJoin and OnLeave
// run once per member, OnMessage with the identity of the connection
// that sent; the member keeps the public profile of its first
// connection. Rate limits are per connection; Options.MaxUsers counts
// members. Moderation acts on the member: a kick closes all of its
// connections. With a Broker, the name is held by the hub of the first
// connection: a further connection of it must reach the same hub, and
// one through another hub of the room is refused as taken (send one
// user's connections to one process, e.g. with a sticky load balancer).
//
// # Bad input
//
// Bad input gets a clear error and disturbs nobody else:
//
//   - Authenticate's error, or an identity it returns over a size cap:
//     401 before the upgrade, with the error's text.
//   - A taken, invalid, reserved or banned name (or one that
//     Options.CheckName refuses), a ?username= that fails
//     to percent-decode (answered at once), a frame other than join before
//     joining, no join frame within Options.JoinTimeout, or a full room
//     (Options.MaxUsers): an error frame, then close 1008.
//   - Invalid JSON, trailing data after the object, an unknown type, an
//     empty or oversized body (Options.MaxBodyBytes), a private message to
//     someone absent (or to an address elsewhere that Options.OnMessage
//     refuses), a second join, a binary frame, invalid UTF-8, a
//     history request without a valid "before" or with an invalid
//     "limit", a frame over the rate limit (Options.RateLimit), a
//     message from a muted member, or a message whose "file" is not one
//     the member uploaded to the room (an unknown ID, someone else's,
//     another room's), or with file sharing off: an error frame; the
//     connection stays open and nothing is broadcast.
//   - An upload that is too large, has a bad name (a path, control or
//     invisible characters), is empty, comes without a valid upload token
//     or from a non-member, from an origin or to a host not allowed, or
//     over the member's upload rate: 413, 400, 401, 403 or 429 with a JSON
//     error, and nothing is stored (see [Hub.FilesHandler]).
//   - A frame over Options.ReadLimit: close 1009.
//   - A typing frame over its bounds (see Typing): dropped silently,
//     however many come; nobody else notices.
//
// Error frames' texts are meant for people; match on the close code, or in
// Go on the sentinel errors with [errors.Is]. A text that names a value the
// client sent (a recipient, a name, a type) repeats at most its first 32
// characters, then "…"; the reason of a close frame is cut to 123 bytes.
//
// # Limits and slow clients
//
// The hub never waits for a client. A client that falls more than
// Options.SendQueue messages behind the room (a join or leave counts as a
// small fraction of a message) is disconnected (close 1008 if the close frame can
// still be written, else the TCP connection is dropped) and its leave is
// announced, so every stream that continues is complete and in order. The
// server pings every Options.PingInterval; a connection silent for
// Options.ReadTimeout (a half-open TCP connection, say) is closed, its name
// freed and its leave announced. Every write has Options.WriteTimeout.
// Compression is not negotiated: a compressed frame under the read limit
// could inflate to megabytes.
//
// Once the server has decided to close a connection (too slow, a refused
// join, [Hub.Shutdown]), the member leaves at once: its leave is announced,
// its name is free, and whatever it sends from then on is discarded, never
// published. (A reader blocked in the middle of a frame, or, without the
// poller (see Concurrency), in its read, notices at the client's next
// frame, or when the grace ends.) The client then has a grace of 2 seconds
// to answer the close frame; pings and frames do not extend it, and after
// it the connection is dropped.
//
// # Moderation
//
// Go code moderates a room by name, on any hub of it:
//
//   - [Hub.Kick] disconnects a member: an error frame with the reason, a
//     1008 close, and its leave announced at once, as for a slow client.
//   - [Hub.Ban] kicks the member, if any, and refuses the name (under
//     [NameKey]) at join for a duration, with an error frame naming the
//     ban's end and a 1008 close; [Hub.Unban] lifts it.
//   - [Hub.Mute] keeps a member in the room but refuses its messages with
//     an error frame for a duration, also after it reconnects;
//     [Hub.Unmute] lifts it.
//   - [Hub.Send] sends one member a private system message.
//
// Kicking or sending to someone absent fails with [ErrNoSuchUser]; every
// one of these fails with [ErrHubClosed] after shutdown. With a Broker
// they act on the member wherever it is connected, and bans and mutes
// hold on every hub of the room, including those that start later, until
// they end. The hub keeps bans and mutes in memory (the Broker, if any,
// keeps them for the room): without a Broker, a restart lifts them.
//
// # Origins
//
// Browsers send an Origin header with WebSocket upgrades, and a page on any
// site can open one to your server. By default only same-origin upgrades
// (and clients that send no Origin, which are not browsers) are accepted;
// others get 403. Options.OriginPatterns allows more hosts, e.g.
// "localhost:8080" or "*.example.com".
//
// Same-origin means the Origin's host equals the request's Host, which the
// browser takes from the URL: after DNS rebinding (a name of the attacker's
// re-pointed at 127.0.0.1 or a private address) a hostile page is
// same-origin with your server. Servers reached on such addresses should
// set Options.AllowedHosts, e.g. "localhost:8080" and "127.0.0.1:8080";
// upgrades addressed to any other Host then get 403.
//
// # Concurrency
//
// Hub and Server are safe for concurrent use. Each hub has one lock; an
// event assigns its id, is encoded and framed once, and is appended to the
// hub's log inside it, which is what makes the order total. Every member's
// connection has a cursor into the log, and a few writer goroutines per hub
// (none while nothing is queued) write each connection's part of the log
// with one writev. Messages are written at once; joins and leaves may wait
// a little, longer in a larger room, so that a burst of them goes out in
// few writes, and while a storm of them lasts (a room of thousands
// forming, or every client reconnecting after a restart) they are held
// until it is over, so that the new members' handshakes get the CPU
// first; never more than 2 s after the connection's last write. A message
// ends the wait, and the order is always the room's.
//
// A connection's frames are read by a goroutine of its own. On Linux, a
// member's reader that has read everything the client sent parks the
// connection with the hub's poller (an epoll instance) and ends, so an
// idle member costs no goroutine and no stack; when the client sends
// something a new reader starts, and the poller itself answers a parked
// client's pings and pongs. Hooks run outside the lock, on the
// connection's reader.
//
// # Shutdown
//
// [Hub.Shutdown] refuses new connections with 503, sends every client a
// 1001 (going away) close frame and waits until every connection has
// closed and every goroutine has exited, or until its context ends. A
// client that does not answer the close frame is dropped after the close
// grace of 2 seconds (see Limits and slow clients), so it does not hold up
// the shutdown.
// [http.Server.Shutdown] does not wait for hijacked connections such as
// WebSockets, so call Hub.Shutdown first. [Hub.Close] closes everything at
// once.
//
// # Persistence
//
// Without a [Store] a room's messages live in memory only. With one
// (Options.Store; the modules github.com/hubchat/chat/sqlitestore and
// github.com/hubchat/chat/pgstore provide two), every message, public or
// private, is written to it, and a restarted hub starts with the stored
// history and numbers its messages on from the last stored ID. Writes are
// group commits off the hub's lock: one goroutine per hub writes whatever
// has queued up meanwhile in one Store.Append, so fan-out never waits for
// the store. A failed write is retried with backoff and logged at Warn;
// if the store stays down until 16,384 messages are waiting, the oldest
// half of them are dropped, with a Warn: they never reach the Store (and
// a client resuming across them after a restart is not told). While the
// Store lags further behind than the hub's memory reaches (a Store that
// is down), resumes that need it get "resume":false and pages may lack
// the messages not stored yet. [Hub.Shutdown] waits for the queue to be
// written, bounded by its context.
//
// With a [Broker] as well, each message is written once: by the hub its
// sender is connected to; a system message from [Hub.Post] is written by
// every hub of the room and kept once by the Store.
//
// # Several servers, one room
//
// Hubs serve one room when they share a [Broker] and a name
// (Options.Broker, Options.Name). In one process, [MemoryBroker] does it:
// one room on several ports, paths or listeners. With Options.Origin set
// on each hub (its port, say), a message carries where its sender is
// connected: the other hubs send it with "origin", which the sender's own
// hub leaves out, so clients can show where each message came from.
//
// Rooms that stay apart can still carry private messages between them,
// through Go code that knows both (a process with several servers, say):
// Options.OnMessage routes a member's private message to an address
// outside the room, e.g. "bob@8082", by delivering it there with
// [Hub.Deliver] and setting Message.ToOrigin; the sender then receives its
// copy, and the recipient the message from the sender's address, with its
// origin:
//
//	{"type":"message","id":"4","username":"alice","body":"hi","to":"bob@8082","ts":...}   alice's copy
//	{"type":"message","id":"7","username":"alice@8081","origin":"8081","body":"hi","to":"bob","ts":...}   bob's, in the other room
//
// Members of either room whose names are such addresses receive nothing
// of these messages live; reserve such names with Options.CheckName all
// the same, since a Store matches private messages by name (see
// [Hub.Deliver]). The command examples/multiport in the repository does
// both: /msg bob@8082, and rooms bridged across ports with -bridge.
//
// # Scaling out
//
// Hubs in several processes serve one room when they share a [Broker] and
// a name (Options.Broker, Options.Name); the module
// github.com/hubchat/chat/redisbroker provides one on Redis. Without a
// broker a hub orders its room in process and pays nothing for the seam.
//
// # Metrics
//
// [Hub.Metrics] returns a snapshot of what a dashboard shows: members and
// connections, messages in and out, bytes out, evictions and rejected
// frames by cause, joins refused, broker and store errors, and the
// distribution of the delivery lag (from the hub accepting a message to
// its write to a connection), whose Quantile(0.99) is the p99. Counting
// costs the message path nothing it would notice: no lock and no
// allocation per message, and the writers count their writes in batches.
// The module github.com/hubchat/chat/prommetrics exports the metrics of
// any number of hubs to Prometheus.
package chat
