package chat

import (
	"context"
	"time"
)

// Typing notices. A member's {"type":"typing"} frame becomes
// {"type":"typing","username":...} for the room, within these bounds; the
// package doc (Typing) states them, the numbers are here.
const (
	// typingEvery is the least time between two notices of one member
	// that are forwarded; the frames in between are dropped. Clients send
	// one at most every 2 s while the user types: the shorter gap here
	// leaves room for the network's jitter, so that none of those is
	// dropped.
	typingEvery = 1500 * time.Millisecond

	// A hub forwards at most typingRoomRate notices per second to its
	// members, typingRoomBurst at once (a token bucket): in a room where
	// many type at once some notices are dropped, and the cost stays at
	// most typingRoomRate frames per second per member.
	typingRoomRate  = 20
	typingRoomBurst = 20
)

// typing handles a typing frame from c, a member's connection: if the
// member may be announced as typing now, every member of the room
// receives a typing notice. Nothing is ever refused: a notice that would
// go over a bound is dropped silently. Typing frames do not count against
// the rate limit, and notices never enter the history, the Store or a
// resume.
func (h *Hub) typing(c *client) {
	if h.opts.TypingMaxMembers < 0 {
		return
	}
	now := time.Now()
	h.mu.Lock()
	m := c.member
	if m == nil || h.closed || h.members[m.key] != m || now.Sub(m.typed) < typingEvery || !h.typingAllowedLocked(m.key) {
		h.mu.Unlock()
		return
	}
	m.typed = now
	tl, ok := h.link.(TypingLink)
	if !ok {
		// Without a Broker, or with one that does not carry typing:
		// this hub's members only.
		h.applyTypingLocked(m.name, now)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.WriteTimeout)
	defer cancel()
	if err := tl.Typing(ctx, m.name); err != nil {
		h.log.Debug("chat: typing through broker failed", "user", m.name, "err", err)
	}
}

// typingAllowedLocked reports whether the member with key may be
// announced as typing: the room is small enough and the member is not
// muted.
func (h *Hub) typingAllowedLocked(key string) bool {
	if h.opts.TypingMaxMembers < 0 || len(h.members) > h.opts.TypingMaxMembers {
		return false
	}
	if len(h.mutes) > 0 {
		if _, muted := h.activeLocked(h.mutes, key); muted {
			return false
		}
	}
	return true
}

// applyTypingLocked announces that the member named name is typing to
// every local member, the typist's own connections included (clients
// ignore their own name), within the hub's budget (typingRoomRate).
func (h *Hub) applyTypingLocked(name string, now time.Time) {
	key := nameKey(name)
	m := h.members[key]
	if m == nil || !h.typingAllowedLocked(key) {
		return
	}
	if h.typingBudget == nil {
		h.typingBudget = newBucket(typingRoomRate, typingRoomBurst, now)
	}
	if !h.typingBudget.allow(now) {
		return
	}
	h.enc = appendNameEvent(h.enc[:0], typeTyping, m.name)
	h.out.typing(h.enc)
}
