package pgstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/hubchat/chat"
	"github.com/hubchat/chat/pgstore/internal/pgtest"
	"github.com/hubchat/chat/redisbroker"
	"github.com/hubchat/chat/redisbroker/redistest"
	"github.com/jackc/pgx/v5"
)

// TestWithRedisBroker runs one room on two hubs, as two processes would:
// each with its own redisbroker link and its own Store on one database.
// Members on both send public and private messages while both hubs post
// system messages (which every hub appends, so the two append overlapping
// batches at once). The table then holds every message exactly once, with
// the id Redis assigned and the content every client received, and each
// member's reads return what that member was sent.
func TestWithRedisBroker(t *testing.T) {
	const (
		publics  = 40 // per member
		privates = 5  // per member with a partner
		posts    = 20 // per hub
	)
	r := redistest.Start(t)
	dsn := pgtest.DSN(t)
	a, b := startProcess(t, "a", r, dsn), startProcess(t, "b", r, dsn)

	alice := dial(t, a, "alice")
	bob := dial(t, b, "bob")
	carol := dial(t, b, "carol")
	alice.waitJoin(t, "bob", "carol") // everyone is a member of the room

	var wg sync.WaitGroup
	for _, c := range []*client{alice, bob, carol} {
		wg.Go(func() {
			for i := range publics {
				c.send(map[string]string{"type": "message", "body": fmt.Sprintf("%s says %d", c.name, i)})
			}
		})
	}
	for _, p := range [][2]*client{{alice, bob}, {bob, alice}} {
		wg.Go(func() {
			for i := range privates {
				p[0].send(map[string]string{"type": "message", "body": fmt.Sprintf("psst %d", i), "to": p[1].name})
			}
		})
	}
	errs := make(chan error, 2*posts)
	for _, p := range []*process{a, b} {
		wg.Go(func() {
			for i := range posts {
				errs <- p.hub.Post(context.Background(), fmt.Sprintf("notice %d from %s", i, p.name))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	everyone := 3*publics + 2*posts
	streams := map[string][]chat.Message{
		"alice": alice.messages(t, everyone+2*privates),
		"bob":   bob.messages(t, everyone+2*privates),
		"carol": carol.messages(t, everyone),
	}
	// Shutdown has each hub append what it still holds.
	for _, p := range []*process{a, b} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := p.hub.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown of %s: %v", p.name, err)
		}
		cancel()
	}

	// Every message any client received, by id.
	byID := map[string]chat.Message{}
	for name, ms := range streams {
		for _, m := range ms {
			if prev, ok := byID[m.ID]; ok && !cmp.Equal(prev, m) {
				t.Fatalf("message %s differs between clients: %+v and %+v (%s)", m.ID, prev, m, name)
			}
			byID[m.ID] = m
		}
	}
	want := slices.SortedFunc(func(yield func(chat.Message) bool) {
		for _, m := range byID {
			if !yield(m) {
				return
			}
		}
	}, func(x, y chat.Message) int { return cmpID(x.ID, y.ID) })

	// The table, read directly: each message once, as delivered.
	got := readTable(t, dsn, "lobby")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hubchat_messages (-delivered +stored):\n%s", diff)
	}

	// What each member reads back is what it was sent.
	s := openDSN(t, dsn)
	ctx := testContext(t)
	for name, stream := range streams {
		got, err := s.After(ctx, "lobby", strings.ToUpper(name), "", 10*everyone)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(stream, got); diff != "" {
			t.Errorf("After for %s (-received +stored):\n%s", name, diff)
		}
	}
}

// process is one process serving the room: a hub on a Broker and a Store
// of its own.
type process struct {
	name   string
	hub    *chat.Hub
	url    string
	synced chan struct{} // closed at the first EventSync
	once   sync.Once
	broker *redisbroker.Broker
}

func startProcess(t *testing.T, name string, r *redistest.Server, dsn string) *process {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := &process{
		name:   name,
		synced: make(chan struct{}),
		broker: redisbroker.New(r.Client(), redisbroker.Options{Logger: logger}),
	}
	p.hub = chat.NewHub(chat.Options{
		Name:      "lobby",
		RateLimit: -1,
		Broker:    p,
		Store:     openDSN(t, dsn),
		Logger:    logger,
	})
	hs := httptest.NewServer(chat.NewServer(p.hub))
	p.url = "ws" + strings.TrimPrefix(hs.URL, "http")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.hub.Shutdown(ctx)
		hs.Close()
		p.broker.Close()
	})
	select {
	case <-p.synced:
	case <-time.After(10 * time.Second):
		t.Fatal("no sync from Redis within 10s")
	}
	return p
}

// Open opens the broker's link, noting the first EventSync.
func (p *process) Open(room string, deliver func(chat.Event)) (chat.Link, error) {
	return p.broker.Open(room, func(ev chat.Event) {
		if ev.Kind == chat.EventSync {
			p.once.Do(func() { close(p.synced) })
		}
		deliver(ev)
	})
}

// client is a WebSocket member of the room.
type client struct {
	name   string
	ws     *websocket.Conn
	mu     sync.Mutex // serializes writes
	frames chan frame // closed when the connection ends
}

type frame struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Username string `json:"username"`
	Body     string `json:"body"`
	To       string `json:"to"`
	System   bool   `json:"system"`
	TS       int64  `json:"ts"`
	Error    string `json:"error"`
}

func dial(t *testing.T, p *process, name string) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(p.url+"?username="+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &client{name: name, ws: ws, frames: make(chan frame, 1024)}
	go func() {
		defer close(c.frames)
		for {
			var f frame
			if err := ws.ReadJSON(&f); err != nil {
				return
			}
			c.frames <- f
		}
	}()
	c.waitJoin(t, name)
	return c
}

func (c *client) send(v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws.WriteJSON(v) // a failure shows as missing messages
}

// next returns the client's next frame; an error frame fails the test.
func (c *client) next(t *testing.T) frame {
	t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			t.Fatalf("%s: connection ended", c.name)
		}
		if f.Type == "error" {
			t.Fatalf("%s: error frame %q", c.name, f.Error)
		}
		return f
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no frame within 10s", c.name)
	}
	return frame{}
}

// waitJoin reads frames until the client has seen the joins of names.
func (c *client) waitJoin(t *testing.T, names ...string) {
	t.Helper()
	for len(names) > 0 {
		if f := c.next(t); f.Type == "join" {
			names = slices.DeleteFunc(names, func(n string) bool { return n == f.Username })
		}
	}
}

// messages returns the next n messages the client receives, skipping
// other frames.
func (c *client) messages(t *testing.T, n int) []chat.Message {
	t.Helper()
	var ms []chat.Message
	for len(ms) < n {
		if f := c.next(t); f.Type == "message" {
			ms = append(ms, chat.Message{ID: f.ID, Username: f.Username, Body: f.Body, To: f.To, System: f.System, Time: time.UnixMilli(f.TS)})
		}
	}
	return ms
}

// readTable returns the room's rows of hubchat_messages in id order.
func readTable(t *testing.T, dsn, room string) []chat.Message {
	t.Helper()
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(ctx, `SELECT id, username, convert_from(body, 'UTF8'), recipient, system, ts
		FROM hubchat_messages WHERE room = $1 ORDER BY id`, room)
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Message, error) {
		var (
			m  chat.Message
			id int64
		)
		err := row.Scan(&id, &m.Username, &m.Body, &m.To, &m.System, &m.Time)
		m.ID = strconv.FormatInt(id, 10)
		return m, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// cmpID compares decimal ids as numbers.
func cmpID(x, y string) int {
	if len(x) != len(y) {
		return len(x) - len(y)
	}
	return strings.Compare(x, y)
}
