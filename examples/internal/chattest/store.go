package chattest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/sqlitestore"
)

// Prefill stores msgs in room of the SQLite file at path (a sqlitestore
// file, made if need be), as a hub would have, with their IDs and times:
// a program started with that file then has them as its history, e.g.
// messages of earlier days.
func Prefill(t testing.TB, path, room string, msgs []chat.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Append(ctx, room, msgs); err != nil {
		t.Fatalf("storing %d messages in %s: %v", len(msgs), path, err)
	}
}

// WaitStored polls the SQLite file at path (a sqlitestore file, which
// several processes may open) until room holds the message id, and fails
// the test if that does not happen within [Timeout]. A hub writes to its
// store in the background, so a message is in the file a moment after the
// sender's echo; once WaitStored returns, it survives a kill -9 of the
// program.
func WaitStored(t testing.TB, path, room, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := MessageID(t, id)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		last, err := st.LastID(ctx, room)
		if err == nil && last != "" && MessageID(t, last) >= want {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: room %q holds messages up to id %q (%v), want %s", path, room, last, err, id)
		}
	}
}

// MessageID returns a message ID as a number, failing the test if it is
// not one.
func MessageID(t testing.TB, id string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		t.Fatalf("message id %q: %v", id, err)
	}
	return n
}
