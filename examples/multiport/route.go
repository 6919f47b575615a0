package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hubchat/chat"
)

// Cross-server private messages. A user of another chat server of this
// process has the address name@PORT, e.g. bob@8082; a member's private
// message to such an address is routed by its hub's OnMessage (route) to
// the hub of that port, with chat.Hub.Deliver, and its sender gets its
// copy (chat.Message.ToOrigin). Every hub's Options.Origin is its port, so
// the recipient's client shows where the message came from.

// deliverTimeout bounds the delivery of a message to another server's hub.
const deliverTimeout = 5 * time.Second

// splitAddress splits name@PORT into the name and the port; ok is false if
// addr has no such form (no "@", no name, or not a port after the last
// "@").
func splitAddress(addr string) (name string, port int, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 {
		return "", 0, false
	}
	digits := addr[i+1:]
	if digits == "" || len(digits) > 5 || strings.Trim(digits, "0123456789") != "" {
		return "", 0, false
	}
	port, err := strconv.Atoi(digits)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, false
	}
	return addr[:i], port, true
}

// checkName is every hub's Options.CheckName: names of the form name@PORT
// are the addresses of users of other servers, which members may not
// take, since a message from such an address would look like theirs.
func checkName(name string) error {
	if _, _, ok := splitAddress(name); ok {
		return errors.New("names ending in @ and a port are addresses of users of other servers: choose another")
	}
	return nil
}

// route returns the Options.OnMessage of the hub on port from: it routes
// a private message to name@PORT to the server on PORT, or, when that
// server is this one or bridged with it, to the member name of the room.
// An unknown port or user, or a file, is an error the sender sees; then
// nothing is delivered anywhere.
func (a *rooms) route(from int) func(*chat.Hub, chat.Identity, *chat.Message) error {
	origin := strconv.Itoa(from)
	return func(_ *chat.Hub, id chat.Identity, m *chat.Message) error {
		name, port, ok := splitAddress(m.To)
		if !ok {
			return nil // a name of this room: the hub finds it, or says it is not here
		}
		target := a.server(port)
		switch {
		case target == nil:
			return fmt.Errorf("no chat server on port %d here: write /msg name@PORT with one of the ports %s", port, portList(a.ports()))
		case port == from || a.bridged(port) && a.bridged(from):
			m.To = name // in this room
			return nil
		case m.File != nil:
			return errors.New("files cannot be sent to another server: send the text alone")
		}
		// The recipient's name as it joined, for the sender's copy.
		for _, u := range target.hub.Users() {
			if chat.NameKey(u) == chat.NameKey(name) {
				name = u
				break
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
		defer cancel()
		err := target.hub.Deliver(ctx, chat.Message{Username: id.Name + "@" + origin, Origin: origin, To: name, Body: m.Body})
		switch {
		case errors.Is(err, chat.ErrNoSuchUser), errors.Is(err, chat.ErrInvalidName):
			return fmt.Errorf("no user %s on the chat server on port %d", strconv.Quote(clip(name)), port)
		case errors.Is(err, chat.ErrMuted):
			return fmt.Errorf("you are muted on the chat server on port %d", port)
		case errors.Is(err, chat.ErrHubClosed):
			return fmt.Errorf("the chat server on port %d is shutting down", port)
		case err != nil:
			return fmt.Errorf("not delivered to the chat server on port %d: %w", port, err)
		}
		m.To, m.ToOrigin = name+"@"+strconv.Itoa(port), strconv.Itoa(port)
		return nil
	}
}

// clip cuts s to its first 32 characters and "…", for error texts that
// name what a client sent.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= 32 {
		return s
	}
	return string([]rune(s)[:32]) + "…"
}

// server returns the running chat server on port, or nil.
func (a *rooms) server(port int) *chatServer {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.servers {
		if s.info.Port == port {
			return s
		}
	}
	return nil
}

// ports returns the ports of the running chat servers, in start order.
func (a *rooms) ports() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	ports := make([]int, len(a.servers))
	for i, s := range a.servers {
		ports[i] = s.info.Port
	}
	return ports
}

// bridged reports whether the chat server on port is part of the bridge.
func (a *rooms) bridged(port int) bool { return slices.Contains(a.cfg.Bridge, port) }

// portList formats ports as "8081, 8082".
func portList(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}
