package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histSubBits sets the resolution of hist: 2^histSubBits buckets per power
// of two, i.e. under 1.6% relative error.
const histSubBits = 6

// histBuckets covers every non-negative int64 nanosecond value.
const histBuckets = (64 - histSubBits + 1) << histSubBits

// hist is a lock-free log-linear latency histogram in nanoseconds, safe
// for concurrent use.
type hist struct {
	b [histBuckets]atomic.Uint64
}

func histIndex(v uint64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - histSubBits
	mant := (v >> shift) & (1<<histSubBits - 1)
	return (shift+1)<<histSubBits | int(mant)
}

// histValue returns the midpoint of bucket i.
func histValue(i int) uint64 {
	if i < 1<<histSubBits {
		return uint64(i)
	}
	shift := i>>histSubBits - 1
	mant := uint64(i & (1<<histSubBits - 1))
	lo := (1<<histSubBits | mant) << shift
	return lo + (uint64(1)<<shift)/2
}

// add records one latency; negative values count as zero.
func (h *hist) add(d int64) {
	if d < 0 {
		d = 0
	}
	h.b[histIndex(uint64(d))].Add(1)
}

// count returns the number of recorded values.
func (h *hist) count() uint64 {
	var n uint64
	for i := range h.b {
		n += h.b[i].Load()
	}
	return n
}

// quantile returns the q-quantile (0 < q <= 1), or 0 without values.
func (h *hist) quantile(q float64) time.Duration {
	total := h.count()
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := range h.b {
		seen += h.b[i].Load()
		if seen >= rank {
			return time.Duration(histValue(i))
		}
	}
	return time.Duration(histValue(histBuckets - 1))
}
