package pgstore_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hubchat/chat"
)

// BenchmarkAppend appends batches of new messages to one room, each batch
// one statement and one commit, as a hub's group commit does; msgs/s is
// what one appending goroutine stores. The dup cases append batches the
// room holds already, as the other hubs of a room sharing a Broker may.
// The throw-away cluster runs with PostgreSQL's defaults, fsync included.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 16, 256} {
		for _, dup := range []bool{false, true} {
			name := fmt.Sprintf("batch=%d", size)
			if dup {
				name += "/dup"
			}
			b.Run(name, func(b *testing.B) {
				s, _ := open(b)
				ctx := testContext(b)
				batch := make([]chat.Message, size)
				id := 0
				next := func() {
					for i := range batch {
						id++
						batch[i] = chat.Message{
							ID:       strconv.Itoa(id),
							Username: "user" + strconv.Itoa(id%50),
							Body:     "a chat message of about sixty bytes, as people write them",
							Time:     time.Now(),
						}
						if id%10 == 0 {
							batch[i].To = "user" + strconv.Itoa(id%7)
						}
					}
				}
				next()
				if dup {
					mustAppend(b, s, "lobby", batch...)
				}
				start := time.Now()
				for b.Loop() {
					if err := s.Append(ctx, "lobby", batch); err != nil {
						b.Fatal(err)
					}
					if !dup {
						next()
					}
				}
				b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "msgs/s")
			})
		}
	}
}
