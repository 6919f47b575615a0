package chat

import "time"

// Presence pacing: when the outbox writes joins and leaves. The numbers
// are here; the docs state only the behaviour and its bounds.
const (
	// A connection just written waits gapPerMember per member before its
	// next write of presence, at most maxGap (pacer.gap).
	gapPerMember = 60 * time.Microsecond
	maxGap       = 300 * time.Millisecond

	// A storm of joins and leaves is over once there has been none for
	// the gap, at most maxQuiet (pacer.quiet).
	maxQuiet = 50 * time.Millisecond

	// Presence is never held more than holdPerMember per member, at most
	// maxHold, after the connection's last write (pacer.hold). maxHold is
	// the one bound the docs state (package doc, README): change them with
	// it.
	holdPerMember = 200 * time.Microsecond
	maxHold       = 2 * time.Second

	// A storm is stormMin joins and leaves in a row, each within the quiet
	// time of the one before (pacer.storm).
	stormMin = 16

	// A member joining during a storm is owed its users snapshot, rather
	// than sent it at once, from deferSnapshot bytes of snapshot (a few
	// hundred names; pacer.owe).
	deferSnapshot = 4 << 10
)

// A pacer decides when presence (joins and leaves) is written, so that a
// burst of it goes out in few writes and a storm of it (a room of
// thousands forming, or every client reconnecting after a restart) is held
// until it is over, leaving the CPU to the new members' handshakes. Every
// bound grows with the room, whose storms take longer.
//
// Like bucket, it takes the time as an input, and the room's size too:
// members is the number of connections the hub writes its log to. The
// outbox owns it, under its lock.
type pacer struct {
	last  time.Time // when the last join or leave was appended
	burst int       // joins and leaves in a row, each within the quiet time of the one before
}

// gap is how long a connection that has just been written waits before
// it is written presence again. A writer busy with thousands of
// connections lets each gather more frames, so that a join storm costs a
// few large writes per connection instead of one small write per join. It
// is short next to the time a busy writer takes to come round again, so it
// does not slow a room that keeps up.
func (p *pacer) gap(members int) time.Duration {
	return min(maxGap, time.Duration(members)*gapPerMember)
}

// quiet is how long after the last join or leave a storm of them is over:
// the gap, at most maxQuiet.
func (p *pacer) quiet(members int) time.Duration {
	return min(maxQuiet, p.gap(members))
}

// hold is the longest presence waits after a connection's last write.
func (p *pacer) hold(members int) time.Duration {
	return min(maxHold, time.Duration(members)*holdPerMember)
}

// presence records a join or leave appended to the log at now.
func (p *pacer) presence(now time.Time, members int) {
	if now.Sub(p.last) < p.quiet(members) {
		p.burst++
	} else {
		p.burst = 1
	}
	p.last = now
}

// storm reports whether a storm of joins and leaves is on at now: the last
// stormMin of them, at least, each came within the quiet time of the one
// before, and so does now.
func (p *pacer) storm(now time.Time, members int) bool {
	return p.burst >= stormMin && now.Sub(p.last) < p.quiet(members)
}

// owe reports whether a member joining at now, whose users snapshot is
// size bytes, is to be owed it (sent when its presence would be, and then
// current) rather than sent it at once: in a storm, if it is large.
func (p *pacer) owe(now time.Time, members, size int) bool {
	return size >= deferSnapshot && p.storm(now, members)
}

// idleDue reports whether presence appended at now is to be written at
// once to an idle connection last written at lastWrite: if its gap has
// passed. If not, the connection waits until due.
func (p *pacer) idleDue(now, lastWrite time.Time, members int) bool {
	return now.Sub(lastWrite) >= p.gap(members)
}

// due is when a connection with presence only to write, last written at
// lastWrite, is to be written: once the gap has passed since lastWrite and
// the room has had no join or leave for the quiet time, so that a storm of
// them is held and then written in one go; but no later than the hold
// after lastWrite. A connection owed its snapshot (owed) waits for the
// quiet time (or the hold) only: its last write was its join.
func (p *pacer) due(lastWrite time.Time, members int, owed bool) time.Time {
	due := p.last.Add(p.quiet(members))
	if t := lastWrite.Add(p.gap(members)); !owed && t.After(due) {
		due = t
	}
	if t := lastWrite.Add(p.hold(members)); t.Before(due) {
		due = t
	}
	return due
}
