package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Moderation from Go: kicks, bans and mutes by name, and private system
// messages. The hub keeps the bans and mutes in force in two maps by name
// key (Hub.bans, Hub.mutes); with a Broker, the broker holds them for the
// room and every hub keeps a copy, fed by EventModeration and EventSync.

// MaxReasonBytes caps the reason of a kick or ban, in bytes: a longer one
// is cut at a character boundary and ends with "…".
const MaxReasonBytes = 200

// Kick disconnects the member named name (compared under [NameKey]) from
// the room: it receives an error frame with reason ("kicked by a
// moderator: reason"), then a 1008 close, on every connection it has. As
// with a client closed for being too slow, the member leaves at once: its
// leave is announced to everyone, its name is free, and whatever the
// client still sends is discarded. Kick does not keep it out; see
// [Hub.Ban].
//
// With a Broker, Kick acts on the member wherever it is connected. Kick
// returns once the kick is decided (with a Broker: accepted by the
// broker); the leave follows from the member's connection.
//
// Kick fails with an error wrapping [ErrNoSuchUser] if no member has the
// name, wrapping [ErrInvalidName] if the name is not valid (see
// [ValidateUsername]), and with [ErrHubClosed] after shutdown. ctx bounds
// the call to the Broker, if any; a hub without one never waits.
func (h *Hub) Kick(ctx context.Context, name, reason string) error {
	return h.moderate(ctx, ModKick, name, 0, reason)
}

// Ban bans name (and every name with the same [NameKey]) from the room for
// d, and kicks the member of that name, if any, as [Hub.Kick] does, with
// the error frame "banned until T: reason". Until then a client joining
// under the name is refused with an error frame (`username "bob" is banned
// until 2025-11-22T12:00:00Z: reason`, times in UTC) and a 1008 close. A
// new ban of the name replaces the one in force; [Hub.Unban] lifts it.
//
// With a Broker, the ban holds on every hub of the room, including those
// that join it later, and the broker refuses the name atomically with its
// claim, so no hub admits it once Ban has returned.
//
// Ban fails with an error wrapping [ErrInvalidName] for an invalid name,
// with an error if d is not positive, and with [ErrHubClosed] after
// shutdown. The name need not be a member's. ctx bounds the call to the
// Broker, if any.
func (h *Hub) Ban(ctx context.Context, name string, d time.Duration, reason string) error {
	return h.moderate(ctx, ModBan, name, d, reason)
}

// Unban lifts the ban of name, if any; see [Hub.Ban]. It fails as Ban
// does.
func (h *Hub) Unban(ctx context.Context, name string) error {
	return h.moderate(ctx, ModUnban, name, 0, "")
}

// Mute mutes name (and every name with the same [NameKey]) for d: the
// member stays in the room and receives everything, but each message it
// sends, public or private, gets the error frame "you are muted until T:
// your messages are not published" and is not published (nor passed to
// Options.OnMessage). The mute holds for the name: a member that leaves
// and joins again is still muted. A new mute of the name replaces the one
// in force; [Hub.Unmute] lifts it.
//
// With a Broker, the mute holds on every hub of the room, including those
// that join it later, and the broker refuses the name's messages
// atomically, so none is published once Mute has returned.
//
// Mute fails with an error wrapping [ErrInvalidName] for an invalid name,
// with an error if d is not positive, and with [ErrHubClosed] after
// shutdown. The name need not be a member's. ctx bounds the call to the
// Broker, if any.
func (h *Hub) Mute(ctx context.Context, name string, d time.Duration) error {
	return h.moderate(ctx, ModMute, name, d, "")
}

// Unmute lifts the mute of name, if any; see [Hub.Mute]. It fails as Mute
// does.
func (h *Hub) Unmute(ctx context.Context, name string) error {
	return h.moderate(ctx, ModUnmute, name, 0, "")
}

// Send sends body to the member named name alone: a private message from
// Options.SystemName, with "system":true and "to" on the wire, sent to
// every connection of the member, wherever it is connected when a Broker
// is set. Like every private message it is not in the history, and it is
// written to Options.Store, if any, so that the member finds it when it
// resumes or pages back.
//
// Send fails with an error wrapping [ErrInvalidBody] for an empty or
// oversized body, wrapping [ErrInvalidName] for an invalid name, wrapping
// [ErrNoSuchUser] if no member has the name, and with [ErrHubClosed] after
// shutdown. ctx bounds the call to the Broker, if any; a hub without one
// never waits.
func (h *Hub) Send(ctx context.Context, name, body string) error {
	if err := validateBody(body, h.opts.MaxBodyBytes); err != nil {
		return err
	}
	to, err := ValidateUsername(name)
	if err != nil {
		return err
	}
	return h.publish(ctx, &Message{Username: h.opts.SystemName, Body: body, To: to, System: true})
}

// moderate validates and carries out a moderation action: at once without
// a Broker, else through it (the hub applies it when it is delivered).
func (h *Hub) moderate(ctx context.Context, act ModAction, name string, d time.Duration, reason string) error {
	name, err := ValidateUsername(name)
	if err != nil {
		return err
	}
	mod := Moderation{Action: act, Username: name, Reason: cleanReason(reason)}
	if act == ModBan || act == ModMute {
		if d <= 0 {
			return fmt.Errorf("chat: duration %v: must be positive", d)
		}
		mod.Until = time.Now().Add(d)
	}
	key := nameKey(name)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrHubClosed
	}
	if act == ModKick {
		m := h.members[key]
		if m == nil {
			h.mu.Unlock()
			return errorf(ErrNoSuchUser, "user %s is not here", quote(name))
		}
		mod.Username = m.name
	}
	if h.link == nil {
		h.applyModerationLocked(mod)
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, h.opts.WriteTimeout)
	defer cancel()
	if err := h.link.Moderate(ctx, mod); err != nil {
		if errors.Is(err, ErrNoSuchUser) { // the member left meanwhile
			return errorf(ErrNoSuchUser, "user %s is not here", quote(name))
		}
		h.met.brokerErrors.Add(1)
		h.log.Warn("chat: moderation through broker failed", "user", name, "err", err)
		return fmt.Errorf("chat: moderation through broker: %w", err)
	}
	return nil
}

// cleanReason makes a reason fit for error frames: valid UTF-8, trimmed,
// at most MaxReasonBytes bytes.
func cleanReason(s string) string {
	s = strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) > MaxReasonBytes {
		s = truncate(s, MaxReasonBytes-len("…"))
	}
	return s
}

// applyModerationLocked applies a moderation action, decided here or
// delivered by the Broker.
func (h *Hub) applyModerationLocked(mod Moderation) {
	key := nameKey(mod.Username)
	now := time.Now()
	switch mod.Action {
	case ModKick:
		h.disconnectLocked(key, withReason(errTextKicked, mod.Reason))
	case ModBan:
		if !now.Before(mod.Until) {
			return // lapsed already (delivered late)
		}
		h.bans = restrict(h.bans, key, mod, now)
		h.disconnectLocked(key, bannedText(mod))
	case ModUnban:
		delete(h.bans, key)
	case ModMute:
		if now.Before(mod.Until) {
			h.mutes = restrict(h.mutes, key, mod, now)
		}
	case ModUnmute:
		delete(h.mutes, key)
	}
	h.nMutes.Store(int32(len(h.mutes)))
}

// restrict records mod in m (allocated if nil) under key, dropping the
// entries that have lapsed, and returns m.
func restrict(m map[string]Moderation, key string, mod Moderation, now time.Time) map[string]Moderation {
	if m == nil {
		m = make(map[string]Moderation)
	}
	for k, r := range m {
		if !now.Before(r.Until) {
			delete(m, k)
		}
	}
	m[key] = mod
	return m
}

// setRestrictionsLocked replaces the bans and mutes with those of a
// Broker's snapshot and disconnects the local members it bans.
func (h *Hub) setRestrictionsLocked(rs []Moderation) {
	now := time.Now()
	h.bans, h.mutes = nil, nil
	for _, r := range rs {
		if !now.Before(r.Until) {
			continue
		}
		switch r.Action {
		case ModBan:
			h.bans = restrict(h.bans, nameKey(r.Username), r, now)
		case ModMute:
			h.mutes = restrict(h.mutes, nameKey(r.Username), r, now)
		}
	}
	h.nMutes.Store(int32(len(h.mutes)))
	for key, r := range h.bans {
		h.disconnectLocked(key, bannedText(r))
	}
}

// activeLocked returns the restriction of key in m if it is in force,
// forgetting it if it has lapsed.
func (h *Hub) activeLocked(m map[string]Moderation, key string) (Moderation, bool) {
	r, ok := m[key]
	if !ok {
		return r, false
	}
	if !time.Now().Before(r.Until) {
		delete(m, key)
		h.nMutes.Store(int32(len(h.mutes)))
		return r, false
	}
	return r, true
}

// disconnectLocked closes every connection of the local member with key,
// if any, with an error frame of text and 1008: the server's decision to
// close, after which the member leaves at once (see outbox.closeLocked).
func (h *Hub) disconnectLocked(key, text string) {
	m := h.members[key]
	if m == nil || len(m.conns) == 0 {
		return
	}
	for _, c := range m.conns {
		c.evictWithError(evictKicked, errors.New(text))
	}
	h.log.Debug("chat: member disconnected by moderation", "user", m.name, "conns", len(m.conns))
}

// bannedErrLocked returns an error wrapping ErrBanned if name (with key)
// is banned, nil otherwise. known is false when the caller learnt of the
// ban from the Broker only: its end is then not known here yet.
func (h *Hub) bannedErrLocked(name, key string, known bool) error {
	if len(h.bans) == 0 && known {
		return nil
	}
	r, ok := h.activeLocked(h.bans, key)
	switch {
	case ok:
		return errorf(ErrBanned, "%s", withReason(fmt.Sprintf(errTextBannedName, quote(name), stamp(r.Until)), r.Reason))
	case !known:
		return errorf(ErrBanned, errTextBannedNow, quote(name))
	}
	return nil
}

// mutedErr returns an error wrapping ErrMuted if the member named name is
// muted. It takes the hub's lock only while some name is muted.
func (h *Hub) mutedErr(name string) error {
	if h.nMutes.Load() == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mutedErrLocked(nameKey(name), true)
}

// mutedErrLocked is mutedErr for the name with key; known is as for
// bannedErrLocked.
func (h *Hub) mutedErrLocked(key string, known bool) error {
	r, ok := h.activeLocked(h.mutes, key)
	switch {
	case ok:
		return errorf(ErrMuted, errTextMuted, stamp(r.Until))
	case !known:
		return errorf(ErrMuted, "%s", errTextMutedNow)
	}
	return nil
}

// bannedText is the error frame of a member disconnected by a ban.
func bannedText(r Moderation) string {
	return withReason(fmt.Sprintf(errTextBanned, stamp(r.Until)), r.Reason)
}

// withReason appends ": reason" to text, if there is a reason.
func withReason(text, reason string) string {
	if reason == "" {
		return text
	}
	return text + ": " + reason
}

// stamp formats the end of a ban or mute for people: UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
