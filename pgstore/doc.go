// Package pgstore keeps chat rooms' messages in PostgreSQL: a [chat.Store]
// for history that outlives processes, resumption after reconnects, and
// rooms served by several processes.
//
// # Use
//
// Open a Store on a database and give it to every hub:
//
//	store, err := pgstore.Open(ctx, "postgres://chat:secret@db:5432/chat")
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//	hub := chat.NewHub(chat.Options{Name: "lobby", Store: store})
//
// One Store serves any number of rooms and hubs; it holds a pool of
// connections ([pgxpool]; pool_max_conns in the connection string sets its
// size) and is safe for concurrent use. [New] makes a Store on a pool of
// your own.
//
// # Several processes: with redisbroker
//
// Hubs of one room in several processes share a [chat.Broker], such as
// github.com/hubchat/chat/redisbroker, and a database:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	broker := redisbroker.New(rdb, redisbroker.Options{})
//	store, err := pgstore.Open(ctx, "postgres://chat:secret@db:5432/chat")
//	...
//	hub := chat.NewHub(chat.Options{Name: "lobby", Broker: broker, Store: store})
//
// Redis numbers the room's messages and every hub receives every message
// with that number; PostgreSQL keeps each message once, under that number.
// A member's message is appended by the hub the sender is connected to,
// and a system message ([chat.Hub.Post]) by every hub of the room. Appends
// are idempotent: a message whose id the room holds is skipped, so any
// number of processes may append the same messages, in overlapping
// batches and at the same time, and the table still holds each exactly
// once, as first appended. Concurrent appends cannot deadlock: each batch
// inserts in id order, and a batch that meets an id another transaction
// is inserting waits for it to commit and then skips that id.
//
// # Tables
//
// Open (or New) creates the tables if they are missing, in the first
// schema of the connection's search_path (set it in the connection string,
// e.g. "...?search_path=chat", to keep them apart), and records their
// version in hubchat_schema; a later version of this package upgrades
// them at Open. Processes opening at once take turns under an advisory
// lock. The database must be in UTF8 (or SQL_ASCII), and the user needs
// the right to create tables the first time.
//
// hubchat_messages holds one row per message, keyed by room and id (a
// bigint, so ids compare as numbers and must stay below 2⁶³). Each row
// keeps the sender's and the recipient's [chat.NameKey], so that a user's
// private messages, sent or received, are found under any case of the
// name; partial indexes serve the reads: public messages by id, private
// ones by either end. Bodies are bytea (UTF-8 bytes), since a valid body
// may hold NUL, which PostgreSQL's text cannot; convert_from(body, 'UTF8')
// reads them as text. Times are timestamptz, to the microsecond.
//
// # Group commit
//
// [Store.Append] writes a whole batch with one INSERT ... SELECT FROM
// unnest(...) ON CONFLICT DO NOTHING: one round trip and one commit, all
// or nothing, however many messages. A hub appends what accumulated while
// the previous commit was in flight, so the commit's cost (an fsync of
// the WAL) is shared by the batch: batches of 256 store some fifty times
// as many messages per second as single messages do (BenchmarkAppend; the
// figures are in the README).
//
// # Retention
//
// Nothing is deleted unless you call [Store.Trim], which deletes, in every
// room, the messages older than a time. A client resuming from before the
// trimmed point then gets [chat.ErrNotRetained] from [Store.After] rather
// than a silent gap.
package pgstore
