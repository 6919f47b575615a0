package sqlitestore_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hubchat/chat"
	"github.com/hubchat/chat/sqlitestore"
)

// BenchmarkAppend appends batches of 1, 16 and 256 new messages to a file
// store: the messages/s show what the hub's group commit buys, since each
// Append is one transaction.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			st := open(b, sqlitestore.Options{})
			batch := make([]chat.Message, size)
			next := 1
			for b.Loop() {
				for i := range batch {
					batch[i] = chat.Message{
						ID:       strconv.Itoa(next),
						Username: "alice",
						Body:     "a message of a typical length, some forty bytes",
						Time:     time.Now(),
					}
					if next%10 == 0 {
						batch[i].To = "bob"
					}
					next++
				}
				if err := st.Append(b.Context(), "lobby", batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(next-1)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
