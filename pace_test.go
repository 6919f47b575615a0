package chat

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	us = time.Microsecond
	ms = time.Millisecond
)

// TestPacerBounds: the gap, the quiet time and the hold grow with the
// room, each up to its bound.
func TestPacerBounds(t *testing.T) {
	var p pacer
	for _, tc := range []struct {
		members          int
		gap, quiet, hold time.Duration
	}{
		{0, 0, 0, 0},
		{1, 60 * us, 60 * us, 200 * us},
		{100, 6 * ms, 6 * ms, 20 * ms},
		{833, 49980 * us, 49980 * us, 166600 * us},
		{834, 50040 * us, 50 * ms, 166800 * us}, // the quiet time's bound
		{1000, 60 * ms, 50 * ms, 200 * ms},
		{5000, 300 * ms, 50 * ms, 1 * time.Second}, // the gap's bound
		{9999, 300 * ms, 50 * ms, 1999800 * us},
		{10000, 300 * ms, 50 * ms, 2 * time.Second}, // the hold's bound
		{1000000, 300 * ms, 50 * ms, 2 * time.Second},
	} {
		got := [3]time.Duration{p.gap(tc.members), p.quiet(tc.members), p.hold(tc.members)}
		if want := [3]time.Duration{tc.gap, tc.quiet, tc.hold}; got != want {
			t.Errorf("%d members: gap, quiet, hold = %v, want %v", tc.members, got, want)
		}
	}
}

// TestPacerStorm: a storm is on from the stormMin-th join or leave in a
// row, each within the quiet time of the one before, until the quiet time
// passes; the next one starts a new count. Only a large snapshot is owed
// during a storm.
func TestPacerStorm(t *testing.T) {
	start := time.Unix(1000, 0)
	const members = 1000 // quiet time 50 ms
	var p pacer
	var got []bool
	event := func(d time.Duration) { p.presence(start.Add(d), members) }
	storm := func(d time.Duration) { got = append(got, p.storm(start.Add(d), members)) }
	for i := range stormMin - 1 {
		event(time.Duration(i) * 49 * ms)
	}
	const T = (stormMin - 1) * 49 * ms
	storm(T - 48*ms) // 15 in a row: no storm yet
	event(T)         // 16 in a row
	storm(T + 1*ms)
	storm(T + 49*ms)
	event(T + 49*ms) // 17
	storm(T + 98*ms)
	storm(T + 99*ms) // quiet for 50 ms: over
	event(T + 99*ms) // after the quiet time: a count of 1
	storm(T + 100*ms)
	want := []bool{false, true, true, true, false, false}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("storm sequence (-want +got):\n%s", d)
	}

	var q pacer
	for i := range stormMin {
		q.presence(start.Add(time.Duration(i)*ms), members)
	}
	last := start.Add((stormMin - 1) * ms)
	for _, tc := range []struct {
		now  time.Time
		size int
		want bool
	}{
		{last.Add(ms), deferSnapshot, true},
		{last.Add(ms), deferSnapshot - 1, false}, // a small snapshot is sent at once
		{last.Add(maxQuiet - time.Nanosecond), 1 << 20, true},
		{last.Add(maxQuiet), 1 << 20, false}, // the storm is over
	} {
		if got := q.owe(tc.now, members, tc.size); got != tc.want {
			t.Errorf("owe(%v after the last join, %d bytes) = %v, want %v", tc.now.Sub(last), tc.size, got, tc.want)
		}
	}
}

// TestPacerDue: presence goes at once to an idle connection whose gap
// has passed; otherwise it is due once both the gap since the
// connection's last write and the quiet time since the last join or leave
// have passed, and never later than the hold after the last write. An
// owed snapshot waits for the quiet time only.
func TestPacerDue(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, tc := range []struct {
		name      string
		members   int           // gap, quiet, hold: see TestPacerBounds
		last      time.Duration // the last join or leave, after start
		lastWrite time.Duration
		owed      bool
		idleDue   bool          // written at once if idle at last
		due       time.Duration // after start
	}{
		{"gap last", 100, 10 * ms, 12 * ms, false, false, 18 * ms},
		{"quiet last", 100, 10 * ms, 6 * ms, false, false, 16 * ms},
		{"gap passed", 100, 10 * ms, 4 * ms, false, true, 16 * ms},
		{"gap not quite passed", 100, 10 * ms, 4*ms + time.Nanosecond, false, false, 16 * ms},
		{"owed: quiet only", 100, 10 * ms, 12 * ms, true, false, 16 * ms},
		{"no members", 0, 10 * ms, 10 * ms, false, true, 10 * ms},
		{"quiet bound, gap last", 1000, 500 * ms, 500 * ms, false, false, 560 * ms},
		{"owed: quiet bound", 1000, 500 * ms, 500 * ms, true, false, 550 * ms},
		{"gap bound", 10000, 0, 0, false, false, 300 * ms},
		{"hold", 1000, 1 * time.Second, 700 * ms, false, true, 900 * ms},
		{"owed: hold", 1000, 1 * time.Second, 700 * ms, true, true, 900 * ms},
		{"hold bound", 100000, 10 * time.Second, 7 * time.Second, false, true, 9 * time.Second},
		{"owed: hold bound", 100000, 10 * time.Second, 7 * time.Second, true, true, 9 * time.Second},
	} {
		p := pacer{last: start.Add(tc.last), burst: stormMin}
		lastWrite := start.Add(tc.lastWrite)
		if got := p.idleDue(p.last, lastWrite, tc.members); got != tc.idleDue {
			t.Errorf("%s: idleDue = %v, want %v", tc.name, got, tc.idleDue)
		}
		if got := p.due(lastWrite, tc.members, tc.owed).Sub(start); got != tc.due {
			t.Errorf("%s: due %v after start, want %v", tc.name, got, tc.due)
		}
	}
}
