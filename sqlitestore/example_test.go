package sqlitestore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/sqlitestore"
)

func Example() {
	dir, err := os.MkdirTemp("", "sqlitestore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(dir, "chat.db"), sqlitestore.Options{MaxMessages: 100_000})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	// A hub appends what its room says, many messages at a time.
	now := time.Now()
	err = st.Append(ctx, "lobby", []chat.Message{
		{ID: "1", Username: "alice", Body: "hi all", Time: now},
		{ID: "2", Username: "bob", Body: "psst, alice", To: "alice", Time: now},
		{ID: "3", Username: "carol", Body: "hello", Time: now},
	})
	if err != nil {
		log.Fatal(err)
	}

	// A joiner gets the public history; a returning client resumes after
	// the last ID it saw, with its own private messages.
	latest, err := st.Latest(ctx, "lobby", 50)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range latest {
		fmt.Printf("history %s %s: %s\n", m.ID, m.Username, m.Body)
	}
	missed, err := st.After(ctx, "lobby", "Alice", "1", 50)
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range missed {
		fmt.Printf("resume  %s %s: %s\n", m.ID, m.Username, m.Body)
	}
	// Output:
	// history 1 alice: hi all
	// history 3 carol: hello
	// resume  2 bob: psst, alice
	// resume  3 carol: hello
}
