// Package redisbroker lets chat hubs in several processes serve one room
// through Redis: a [chat.Broker] whose hubs, one per process, behave as a
// single hub on a single machine for every client of every process.
//
// # Use
//
// Give every hub of the room the same name and a Broker on the same Redis:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	broker := redisbroker.New(rdb, redisbroker.Options{})
//	hub := chat.NewHub(chat.Options{Name: "lobby", Broker: broker})
//	http.Handle("/ws", chat.NewServer(hub))
//	...
//	hub.Shutdown(ctx) // releases this process' members at once
//	broker.Close()
//
// One Broker serves any number of rooms; each hub opens a link to its room.
// The program in ./example runs one instance: start it twice, on two ports,
// for one chat in two browser windows.
//
// # What is guaranteed
//
// Redis is the single source of truth of a room. Every change is one Lua
// script that takes the room's next sequence number, applies the change and
// publishes the event on the room's pub/sub channel, atomically:
//
//   - Message ids come from that sequence, so they are unique and
//     increasing in the room, and every member of every instance sees the
//     same messages in the same order with the same ids, each once. Joins
//     and leaves take numbers too, so ids skip some values.
//   - Private messages take ids from the same sequence but never enter the
//     history; a private message to a name nobody holds fails with
//     chat.ErrNoSuchUser.
//   - Usernames are unique across instances under case folding
//     ([chat.NameKey]): "Sam", "SAM" and "ſam" are one name, and of two
//     instances claiming it at once exactly one wins. A name is held by
//     one instance: with chat.Options.Authenticate, a member's further
//     connections (tabs, devices) share it on the instance that holds it,
//     and one through another instance is refused as taken.
//   - A joiner receives every member of every instance, in join order, with
//     their public profiles ([chat.Profile]: display name and avatar, kept
//     in Redis while the member stays), and the room's recent public
//     messages (Options.HistorySize are kept in Redis; each hub hands out
//     its own chat.Options.HistorySize).
//   - Moderation ([chat.Hub.Kick], Ban, Mute, Send) on any instance acts on
//     the member wherever it is connected. A ban or mute is a Redis key
//     that expires when it ends; the script that claims a name refuses a
//     banned one, and the script that publishes refuses a muted sender's
//     message, so once Ban or Mute has returned no instance admits the
//     name or publishes its messages, even before it has heard of the
//     ban. An instance that starts later finds the bans and mutes in force
//     in its first EventSync.
//   - Messages keep every field the hubs set (chat.Message.Origin and
//     ToOrigin too), so instances with chat.Options.Origin show where a
//     message came from, and a message routed out of the room reaches
//     its sender wherever it is connected.
//   - Typing notices ([chat.TypingLink]) are published on the room's
//     channel without a sequence number: they reach the instances
//     subscribed at that moment, are never logged, and one lost (while an
//     instance reconnects, say) is not caught up.
//
// Each link subscribes first and then loads the room's state with a script,
// so no event falls between the two: it delivers the state as an
// EventSync, then the events numbered after it, in order. Every event also
// enters a log of the room's last 1000 events. A gap in the numbers (a
// pub/sub message lost, as Redis does to subscribers that fall behind) or
// a broken subscription makes the link catch up from that log: the events
// it missed are delivered late but in order, and nothing is lost.
//
// # Failures
//
// Each link is an instance with a random id and a heartbeat key that
// expires after Options.MemberTTL; it refreshes it every
// Options.HeartbeatInterval. If a process dies without closing its hubs
// (a crash, kill -9, a network partition), any live instance of the room
// removes its members, and announces their leaves, between MemberTTL and
// MemberTTL+HeartbeatInterval after its last heartbeat: 15-20 s by
// default. The removal is a script, so it happens once.
//
// When Redis is unreachable, Join and Publish fail at once with
// [ErrUnavailable] (or with the error of the attempt, bounded by the
// client's timeouts and the caller's context); the hub turns that into
// error frames, and clients stay connected. The link reconnects with
// back-off (50 ms growing to 2 s). Once connected it re-claims its members
// (Redis may have restarted empty), raises the room's sequence to the
// highest number it has seen, so that ids keep increasing, and catches up,
// or, if it cannot, delivers a fresh EventSync.
//
// What can be lost while an instance is cut off from Redis:
//
//   - Messages its clients send: they are refused with an error frame.
//   - Nothing else if Redis kept its data and fewer than 1000 events
//     happened meanwhile: the instance catches up from the log.
//   - Otherwise the instance delivers a new EventSync: its members list is
//     exact again, and joins and leaves it missed are announced as such,
//     but its clients do not receive the messages they missed; public
//     ones remain in the history that joiners get.
//   - If Redis restarted without persistence: the history, and for a
//     moment the members of instances that have not re-claimed theirs yet,
//     which clients may see leave and join again.
//   - If the outage outlasts MemberTTL, the other instances remove the
//     instance's members (they see leaves, then joins when it is back). If
//     meanwhile someone else took one of its names, its member of that
//     name is disconnected with 1013 (try again later).
//
// A Redis Cluster works as well as a single Redis: all keys of a room share
// one hash slot. Key names are described in scripts.go; a room's keys are
// never expired, but for the heartbeats and the bans and mutes, which
// expire when they end. The ends of bans and mutes are those the calling
// process computes, so the processes' clocks should agree.
//
// # Cost
//
// A message costs one round trip to Redis (one EVALSHA of a script that
// runs INCR, TIME, PUBLISH and two RPUSH+LTRIM) from the sender's instance
// and one pub/sub delivery to each instance of the room; each instance
// then fans out to its own clients. Joins and leaves cost the same. Each
// link adds one heartbeat script per HeartbeatInterval. Redis holds per
// room the members, 1000 logged events and Options.HistorySize messages.
package redisbroker
