package chat

import (
	"fmt"
	"time"
)

// bucket is a token bucket rate limiter, shaped like x/time/rate's Limiter
// with time as an input. It is used by one goroutine only.
type bucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// allow reports whether one event may happen at now, and spends a token if so.
func (b *bucket) allow(now time.Time) bool {
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(b.burst, b.tokens+elapsed.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func rateText(rate float64) string { return fmt.Sprintf(errTextRate, rate) }
