package chat

import (
	"context"
	"time"
)

// A Broker lets hubs in several processes serve one room: hubs with the same
// Options.Name and the same Broker behave as one hub on one machine. Set
// Options.Broker to use one; without it a hub orders its room in process,
// at no extra cost.
//
// The broker is the room's single source of truth for what a hub would
// otherwise decide alone: who is a member, the order of events and the ids
// of messages. A hub sends its requests through a [Link] and applies what
// the broker delivers, in the order delivered, to its own connections.
//
// Implementations must be safe for concurrent use. An adapter for Redis is
// in the module github.com/hubchat/chat/redisbroker.
type Broker interface {
	// Open links a hub to the named room and starts delivering the room's
	// events to deliver: one call at a time, in the room's order, from a
	// goroutine of the broker's. The first delivery is an [EventSync]
	// carrying the room's state; events follow from that point. After a
	// reconnect the broker delivers a new EventSync with the state as it is
	// then. deliver must not block for long; the hub never calls back into
	// the Link from it. Open fails only if the room cannot be used at all.
	//
	// A hub closes (with 1013, try again later) every local member that an
	// EventSync leaves out or an EventLeave removes, without calling
	// Link.Leave: after delivering an EventSync, a link holds exactly the
	// names of Sync.Users that its hub's members claimed.
	Open(room string, deliver func(Event)) (Link, error)
}

// A Link is one hub's handle on a room of a [Broker]. All methods are safe
// for concurrent use. A method that returns nil has had its event accepted
// by the broker; the event reaches every hub of the room, this one included,
// through deliver.
type Link interface {
	// Join claims username for a member connected to this hub, whose
	// public profile is p. It fails with an error wrapping ErrNameTaken if
	// a member of the room, on any hub, has the same name under case
	// folding (compare with [NameKey]). On success every hub receives an
	// EventJoin with the name and p, and p stays in the room's state
	// (Snapshot.Profiles) until the member leaves.
	Join(ctx context.Context, username string, p Profile) error

	// Leave releases a name claimed through this link; every hub receives
	// an EventLeave.
	Leave(ctx context.Context, username string) error

	// Publish assigns m its ID (unique and increasing in the room) and Time,
	// records it in the room's history unless it is private (m.To is set),
	// and delivers it, with every other field as given, to every hub as an
	// EventMessage. A private message to a name no member of the room
	// holds fails with an error wrapping ErrNoSuchUser, unless m.ToOrigin
	// is set: a message to someone outside the room, whose sender, a
	// member, receives it alone (see Options.OnMessage).
	Publish(ctx context.Context, m Message) error

	// Moderate records and announces a moderation action (see
	// [Moderation]); every hub receives it as an EventModeration. A ModKick
	// of a name no member of the room holds fails with an error wrapping
	// ErrNoSuchUser. A ModBan or ModMute holds until mod.Until: the broker
	// keeps it until then, when it lapses by itself, and lists it in the
	// Snapshot of every EventSync meanwhile. While a name is banned, Join
	// fails with an error wrapping ErrBanned for it; while it is muted,
	// Publish fails with an error wrapping ErrMuted for its messages (not
	// for System ones); both checks are atomic with the claim or the
	// publication, so that no hub admits or publishes what another has
	// just forbidden. A ModUnban or ModUnmute lifts the ban or mute, if
	// any. A new ban or mute of a name replaces the one in force.
	Moderate(ctx context.Context, mod Moderation) error

	// Close releases the members claimed through this link (every other
	// hub receives their EventLeave) and stops delivery. After Close
	// returns, deliver is not called again.
	Close() error
}

// A TypingLink is a [Link] that also carries typing notices between the
// hubs of a room. A hub whose Link implements it sends its members'
// notices through it, and announces those delivered as EventTyping to its
// members; with a Link that does not, typing notices stay within each
// hub. The hub forwards at most one notice per member every 1.5 s.
type TypingLink interface {
	Link
	// Typing announces that username, a member connected to this hub, is
	// typing: every hub of the room, this one included, receives an
	// EventTyping with the name. Typing notices are fleeting: the broker
	// records nothing, need not order them with the room's other events,
	// and may drop them (under load, or while reconnecting).
	Typing(ctx context.Context, username string) error
}

// EventKind says what an [Event] is.
type EventKind int

// The kinds of events a Broker delivers.
const (
	// EventSync replaces the hub's view of the room with Event.Sync.
	EventSync EventKind = iota + 1
	// EventJoin announces that Event.Username joined.
	EventJoin
	// EventLeave announces that Event.Username left.
	EventLeave
	// EventMessage carries Event.Message, public or private.
	EventMessage
	// EventModeration carries Event.Moderation: a kick, or a ban or mute
	// set or lifted.
	EventModeration
	// EventTyping announces that Event.Username is typing (see
	// [TypingLink]).
	EventTyping
)

// An Event is one entry of a room's ordered stream, as delivered by a
// [Broker].
type Event struct {
	Kind EventKind
	// Username is the member who joined, left or is typing.
	Username string
	// Profile is the public profile of the member who joined, as given
	// to Link.Join (EventJoin only).
	Profile Profile
	// Message is the message of an EventMessage, with ID and Time set.
	Message Message
	// Sync is the room's state, for an EventSync.
	Sync *Snapshot
	// Moderation is the action of an EventModeration.
	Moderation Moderation
}

// A Snapshot is a room's state at one point of its stream.
type Snapshot struct {
	// Users lists the members of every hub of the room in join order.
	Users []string
	// Profiles holds the public profiles of the members in Users, by name
	// as in Users; a member without one may be left out.
	Profiles map[string]Profile
	// History holds the last public messages of the room, oldest first.
	// A hub keeps at most its Options.HistorySize of them.
	History []Message
	// Restrictions lists the bans and mutes in force (Action ModBan or
	// ModMute), in any order. Those that have lapsed meanwhile are
	// ignored.
	Restrictions []Moderation
}

// ModAction says what a [Moderation] does.
type ModAction int

// The moderation actions; see [Hub.Kick], [Hub.Ban] and [Hub.Mute].
const (
	// ModKick disconnects the member named Username wherever it is
	// connected, with Reason.
	ModKick ModAction = iota + 1
	// ModBan disconnects the member named Username, if any, with Reason,
	// and refuses the name at join until Until.
	ModBan
	// ModUnban lifts the ban of Username.
	ModUnban
	// ModMute refuses the messages of Username until Until; the member
	// stays.
	ModMute
	// ModUnmute lifts the mute of Username.
	ModUnmute
)

// A Moderation is an action on one name of a room, as a [Broker] carries
// it between hubs: a kick, or a ban or mute set or lifted.
type Moderation struct {
	Action ModAction
	// Username is the name acted on; bans and mutes hold for every name
	// with the same [NameKey].
	Username string
	// Reason, for a kick or a ban, is shown to the member, and to the
	// banned name at join; at most MaxReasonBytes bytes.
	Reason string
	// Until is when a ban or mute lapses.
	Until time.Time
}

// NameKey returns the canonical form of a username, under which names are
// unique within a room: two names are the same exactly when
// [strings.EqualFold] reports them equal, which is exactly when their keys
// are equal. Brokers use it to claim names atomically.
func NameKey(username string) string { return nameKey(username) }
