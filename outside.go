package chat

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Messages that cross a room's boundary: Go code routes a member's
// private message to someone outside the room (see Options.OnMessage, and
// Message.ToOrigin), and delivers one from outside to a member (Deliver,
// and Message.Origin). The outside party is named by an address, e.g.
// "alice@8081", which the hub treats as no member's name: a member of
// that name neither receives nor is the sender of such a message.

// MaxOriginBytes caps Options.Origin, Message.Origin and Message.ToOrigin,
// in bytes.
const MaxOriginBytes = 64

// maxAddressRunes caps the address of someone outside the room, in
// characters: a username and a few more, e.g. "alice@8081".
const maxAddressRunes = 2 * MaxUsernameRunes

// Deliver delivers a private message from someone outside the room to
// the member m.To: Go code that carries messages between rooms (between
// the servers of one process, say; see Options.OnMessage for the other
// end) calls it on the hub of the recipient's room. m.Username is the
// sender's address, as the recipient is to see and answer it (e.g.
// "alice@8081"), m.Origin where the sender is (e.g. "8081": not the
// Options.Origin of a hub of this room), and m.Body the text. Deliver
// sets ID and Time and ignores System and ToOrigin.
//
// The recipient receives it on every connection, wherever it is
// connected when a Broker is set, as
//
//	{"type":"message","id":"8","username":"alice@8081","origin":"8081","body":"hi","to":"bob","ts":...}
//
// and, like any private message, it stays out of the history, in the
// hub's memory for the recipient to resume, and goes to Options.Store.
// No hook runs. The room's mutes apply to the sender's address as to a
// name. A member whose name is the address sees nothing of the message;
// but a Store, which matches private messages by name, would hand it to
// such a member in its pages: give senders addresses that members cannot
// take: refuse such names with Options.CheckName.
//
// Deliver fails with an error wrapping [ErrInvalidBody] for an empty or
// oversized body, wrapping [ErrInvalidName] for an invalid address (1 to
// 64 characters, by the rules of [ValidateUsername] otherwise) or
// recipient name, with an error for a missing or invalid origin, wrapping
// [ErrNoSuchUser] if no member has the recipient's name (nothing is then
// delivered), wrapping [ErrMuted] if the address is muted, and with
// [ErrHubClosed] after shutdown. ctx bounds the call to the Broker, if
// any; a hub without one never waits.
func (h *Hub) Deliver(ctx context.Context, m Message) error {
	if err := validateBody(m.Body, h.opts.MaxBodyBytes); err != nil {
		return err
	}
	from, err := validateName(m.Username, maxAddressRunes, "sender address")
	if err != nil {
		return err
	}
	if !validOrigin(m.Origin) || m.Origin == h.opts.Origin {
		return fmt.Errorf("chat: invalid origin %s: want where the sender is, 1 to %d bytes of printable text, not this hub's own", quote(m.Origin), MaxOriginBytes)
	}
	to, err := ValidateUsername(m.To)
	if err != nil {
		return err
	}
	if err := h.mutedErr(from); err != nil {
		return err
	}
	return h.publish(ctx, &Message{Username: from, Body: m.Body, To: to, Origin: m.Origin})
}

// validOrigin reports whether s may name an origin: 1 to MaxOriginBytes
// bytes of the characters usernames allow, without white space at the
// ends.
func validOrigin(s string) bool {
	if s == "" || len(s) > MaxOriginBytes || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !allowedNameRune(r) {
			return false
		}
	}
	return true
}

// validateOutside checks the address to and the origin toOrigin of the
// recipient of a message routed out of the room (see Options.OnMessage),
// and returns the address trimmed.
func validateOutside(to, toOrigin string) (string, error) {
	if !validOrigin(toOrigin) {
		return "", fmt.Errorf("chat: invalid origin %s of the recipient: want 1 to %d bytes of printable text", quote(toOrigin), MaxOriginBytes)
	}
	return validateName(to, maxAddressRunes, "recipient address")
}
