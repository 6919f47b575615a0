package chat

import (
	"context"
	"errors"
)

// A Store keeps a room's messages beyond the life of the process, so that
// a restart loses no history and a client that reconnects can resume where
// it left off. Set Options.Store to use one; without it a hub keeps its
// recent history in memory only.
//
// The module github.com/hubchat/chat/sqlitestore provides an embedded
// store in one SQLite file; github.com/hubchat/chat/pgstore one on
// PostgreSQL for rooms served by several processes.
//
// Message IDs are decimal strings of unsigned integers, increasing within
// a room but not contiguous (a [Broker] numbers joins and leaves too);
// stores compare them as numbers. A private message (Message.To set)
// belongs to its two ends: reads for a user include the private messages
// sent by or to that user (names compared under [NameKey]) and no others.
//
// Implementations must be safe for concurrent use. A hub calls Append from
// one goroutine of its own, off its lock, with many messages at a time
// (group commit), so fan-out never waits for the store; reads come from
// connections' goroutines.
type Store interface {
	// Append stores msgs for room. They have their IDs and Times set and
	// come in increasing ID order. A message whose ID the room holds
	// already is skipped without error, so that hubs sharing a Broker may
	// append the same message.
	Append(ctx context.Context, room string, msgs []Message) error

	// Latest returns the room's last n public messages, oldest first.
	Latest(ctx context.Context, room string, n int) ([]Message, error)

	// After returns the first n messages of the room with IDs greater than
	// after, oldest first: the public ones and the private ones of user.
	// It fails with an error wrapping [ErrNotRetained] if the store no
	// longer holds every such message (it dropped old messages).
	After(ctx context.Context, room, user, after string, n int) ([]Message, error)

	// Before returns the last n messages of the room with IDs less than
	// before, oldest first: the public ones and the private ones of user.
	Before(ctx context.Context, room, user, before string, n int) ([]Message, error)

	// LastID returns the greatest ID the room holds, public or private, or
	// "" if it holds none. A hub without a Broker numbers its messages on
	// from there after a restart.
	LastID(ctx context.Context, room string) (string, error)
}

// ErrNotRetained means a [Store] no longer holds every message after the
// requested one: a client resuming from there has missed something.
var ErrNotRetained = errors.New("chat: messages no longer retained")
