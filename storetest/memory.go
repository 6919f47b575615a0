package storetest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/hubchat/chat"
)

// NewMemory returns a [chat.Store] that keeps every message in memory, for
// tests and examples: it is simple and correct (it passes [Run]), but it
// loses everything with the process, never drops a message (so After never
// fails with [chat.ErrNotRetained]) and scans rooms linearly. It is safe for
// concurrent use.
//
// Before with before == "" reads back from the end of the room.
func NewMemory() chat.Store {
	return &memory{rooms: make(map[string][]entry)}
}

// memory is the reference Store: one sorted slice per room under one lock.
type memory struct {
	mu    sync.RWMutex
	rooms map[string][]entry // sorted by id, ids unique
}

// entry is a stored message with its parsed ID and the NameKeys of its two
// ends, so that reads compare numbers and keys only.
type entry struct {
	id       uint64
	from, to string // chat.NameKey of Username and To; to is "" if public
	m        chat.Message
}

// visible reports whether e shows in a read for the user whose NameKey is
// key: public messages show to everyone, private ones to their two ends.
func (e *entry) visible(key string) bool {
	return e.m.To == "" || (key != "" && (e.from == key || e.to == key))
}

func (s *memory) Append(ctx context.Context, room string, msgs []chat.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	add := make([]entry, len(msgs))
	for i, m := range msgs {
		id, err := parseID(m.ID)
		if err != nil {
			return err
		}
		if m.File != nil {
			f := *m.File // the caller's is not ours to keep
			m.File = &f
		}
		add[i] = entry{id: id, from: chat.NameKey(m.Username), m: m}
		if m.To != "" {
			add[i].to = chat.NameKey(m.To)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	es := s.rooms[room]
	for _, e := range add {
		if len(es) == 0 || es[len(es)-1].id < e.id {
			es = append(es, e) // the usual case: newer than all
			continue
		}
		i, found := s.search(es, e.id)
		if !found {
			es = slices.Insert(es, i, e)
		}
	}
	s.rooms[room] = es
	return nil
}

// search returns the index of the first entry of es with an id not less
// than id, and whether that entry has id.
func (*memory) search(es []entry, id uint64) (int, bool) {
	return slices.BinarySearchFunc(es, id, func(e entry, id uint64) int {
		switch {
		case e.id < id:
			return -1
		case e.id > id:
			return 1
		}
		return 0
	})
}

func (s *memory) Latest(ctx context.Context, room string, n int) ([]chat.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.backward(s.rooms[room], len(s.rooms[room]), "", n), nil
}

func (s *memory) After(ctx context.Context, room, user, after string, n int) ([]chat.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var id uint64
	if after != "" {
		var err error
		if id, err = parseID(after); err != nil {
			return nil, err
		}
	}
	key := chat.NameKey(user)
	s.mu.RLock()
	defer s.mu.RUnlock()
	es := s.rooms[room]
	i, found := s.search(es, id)
	if found {
		i++
	}
	var out []chat.Message
	for ; i < len(es) && len(out) < n; i++ {
		if es[i].visible(key) {
			out = append(out, es[i].m)
		}
	}
	return out, nil
}

func (s *memory) Before(ctx context.Context, room, user, before string, n int) ([]chat.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id := uint64(math.MaxUint64)
	if before != "" {
		var err error
		if id, err = parseID(before); err != nil {
			return nil, err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	es := s.rooms[room]
	end, _ := s.search(es, id)
	if before == "" {
		end = len(es)
	}
	return s.backward(es, end, chat.NameKey(user), n), nil
}

// backward returns the last n entries of es[:end] visible to the user whose
// NameKey is key (public ones only if key is ""), oldest first.
func (*memory) backward(es []entry, end int, key string, n int) []chat.Message {
	var out []chat.Message
	for i := end - 1; i >= 0 && len(out) < n; i-- {
		if es[i].visible(key) {
			out = append(out, es[i].m)
		}
	}
	slices.Reverse(out)
	return out
}

func (s *memory) LastID(ctx context.Context, room string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	es := s.rooms[room]
	if len(es) == 0 {
		return "", nil
	}
	return es[len(es)-1].m.ID, nil
}

// parseID parses a message ID: the decimal form of an unsigned integer,
// without sign or leading zeros.
func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(id, 10) != s {
		return 0, fmt.Errorf("storetest: invalid message ID %q: want a decimal unsigned integer", s)
	}
	return id, nil
}
