// Package sqlitestore is a [chat.Store] in one SQLite file, so that a hub
// keeps its rooms' history across restarts and clients can resume where
// they left off. It uses modernc.org/sqlite, a SQLite in pure Go: no cgo.
//
// Set [chat.Options].Store to a Store opened once for the process; every
// hub (room) can share it:
//
//	st, err := sqlitestore.Open(ctx, "chat.db", sqlitestore.Options{})
//	if err != nil {
//		return err
//	}
//	defer st.Close() // after the hubs' Shutdown, which stores what they hold
//	hub := chat.NewHub(chat.Options{Name: "lobby", Store: st})
//
// # Durability
//
// The file is in WAL mode with synchronous=NORMAL. Each Append is one
// transaction, however many messages it carries (a hub hands over many at
// a time): once it returns, its messages survive a crash of the process.
// A power failure may lose the last transactions but does not corrupt the
// file. Several processes on one machine may share a file; their writes
// take turns.
//
// # Retention
//
// By default a Store keeps every message. [Options].MaxMessages and
// MaxAge drop a room's oldest messages as it grows; After then fails with
// [chat.ErrNotRetained] for a client that asks for messages after an ID
// older than those kept.
package sqlitestore
