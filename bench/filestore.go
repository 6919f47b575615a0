//go:build !nohubchat

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"sync"

	chat "github.com/hubchat/chat"
	"github.com/hubchat/chat/storetest"
)

// fileStore is the hubchat target's chat.Store in the huge workload, so
// that a restarted server numbers its messages on and its clients resume
// (?since=): the reference in-memory Store of package storetest, loaded at
// start from a file of JSON lines that every Append extends. It is as
// cheap as a Store gets, so that it does not change the figures.
type fileStore struct {
	chat.Store
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

// storedLine is one line of the file.
type storedLine struct {
	Room string
	chat.Message
}

// openFileStore opens (or creates) the store in file name.
func openFileStore(name string) (*fileStore, error) {
	s := &fileStore{Store: storetest.NewMemory()}
	b, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	rooms := map[string][]chat.Message{}
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var l storedLine
		if err := dec.Decode(&l); err != nil {
			return nil, err
		}
		rooms[l.Room] = append(rooms[l.Room], l.Message)
	}
	for room, msgs := range rooms {
		if err := s.Store.Append(context.Background(), room, msgs); err != nil {
			return nil, err
		}
	}
	if s.f, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
		return nil, err
	}
	s.w = bufio.NewWriter(s.f)
	return s, nil
}

// Append writes msgs to the file, then to memory.
func (s *fileStore) Append(ctx context.Context, room string, msgs []chat.Message) error {
	s.mu.Lock()
	enc := json.NewEncoder(s.w)
	for _, m := range msgs {
		if err := enc.Encode(storedLine{room, m}); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	err := s.w.Flush()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.Store.Append(ctx, room, msgs)
}
