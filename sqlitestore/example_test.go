package sqlitestore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/sqlitestore"
)

// A hub with a Store keeps its history across a restart: here the first
// hub posts and shuts down (which writes what it has not stored yet), and
// a second hub on the same file starts with that history and numbers on.
func Example() {
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "chat.db")
	ctx := context.Background()

	// The first run of the process.
	st, err := sqlitestore.Open(ctx, path, sqlitestore.Options{MaxMessages: 100_000})
	if err != nil {
		log.Fatal(err)
	}
	hub := chat.NewHub(chat.Options{Name: "lobby", Store: st})
	for _, body := range []string{"welcome", "the server restarts at noon"} {
		if err := hub.Post(ctx, body); err != nil {
			log.Fatal(err)
		}
	}
	if err := hub.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	st.Close()

	// The next run.
	st, err = sqlitestore.Open(ctx, path, sqlitestore.Options{MaxMessages: 100_000})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	hub = chat.NewHub(chat.Options{Name: "lobby", Store: st})
	defer hub.Shutdown(ctx)
	if err := hub.Post(ctx, "back again"); err != nil {
		log.Fatal(err)
	}
	for _, m := range hub.History() {
		fmt.Printf("%s %s: %s\n", m.ID, m.Username, m.Body)
	}
	// Output:
	// 1 system: welcome
	// 2 system: the server restarts at noon
	// 3 system: back again
}
