// Package storetest checks that a [chat.Store] keeps the contract written
// in that interface's documentation. Every Store implementation runs [Run]
// in its tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) chat.Store {
//			st, err := mystore.Open(filepath.Join(t.TempDir(), "chat.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { st.Close() })
//			return st
//		})
//	}
//
// [NewMemory] is a simple in-memory Store that passes the suite, for tests
// and examples.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hubchat/chat"
)

// Run tests the Store that open returns against every point of the
// [chat.Store] contract, in subtests. It calls open once per subtest; open
// may return a fresh store each time or the same one (a shared database),
// since every subtest uses room names that no earlier run has used. Run
// the suite with -race: one subtest appends and reads from many goroutines
// at once.
//
// What a Store must do beyond the interface's words, as the suite checks:
//
//   - Keep every field of a [chat.Message] as appended, byte for byte:
//     Username, Body (any valid UTF-8, including quotes, backslashes,
//     newlines, emoji and NUL; empty in a message with a file), To (in its
//     original case), System, Time to the millisecond (the precision of
//     the wire's "ts"; the suite uses whole milliseconds and compares
//     instants, not locations), and File, the attachment: nil for none,
//     else every field of it (sizes beyond 32 bits included).
//   - Handle IDs up to 9223372036854775807 (the largest signed 64-bit
//     integer), compared as numbers: "9" comes before "10".
//   - Return reads in ID order, whatever the order of the Append calls
//     that stored them (hubs sharing a Broker append overlapping batches).
//   - Treat after == "" and after == "0" alike: from the start of the room.
//   - Return an empty result, not an error, for n == 0 and for an empty or
//     unknown room; never a panic, for any n.
//   - Reject an ID that is not a decimal unsigned integer with an error,
//     storing nothing.
//   - Fail with an error wrapping [context.Canceled] when called with a
//     cancelled context, storing nothing.
//
// The suite never expects [chat.ErrNotRetained]: open must return a store
// that keeps at least the few hundred messages a subtest writes.
func Run(t *testing.T, open func(t *testing.T) chat.Store) {
	s := &suite{open: open, prefix: runPrefix()}
	t.Run("AppendAndRead", s.appendAndRead)
	t.Run("Idempotent", s.idempotent)
	t.Run("OverlappingBatches", s.overlapping)
	t.Run("OutOfOrderCalls", s.outOfOrder)
	t.Run("NumericIDs", s.numericIDs)
	t.Run("Latest", s.latest)
	t.Run("After", s.after)
	t.Run("AfterPrivacy", s.afterPrivacy)
	t.Run("Before", s.before)
	t.Run("LastID", s.lastID)
	t.Run("RoomsIsolated", s.roomsIsolated)
	t.Run("RoundTrip", s.roundTrip)
	t.Run("InvalidInput", s.invalidInput)
	t.Run("Cancelled", s.cancelled)
	t.Run("Concurrent", s.concurrent)
}

// suite holds what every subtest shares.
type suite struct {
	open   func(t *testing.T) chat.Store
	prefix string // unique to this run of Run
}

// runPrefix returns a prefix for room names that no other run uses, so that
// a store kept between runs (a database) starts every room empty.
func runPrefix() string {
	return "storetest-" + rand.Text()[:10] + "/"
}

// room returns a room name unique to the subtest and this run.
func (s *suite) room(t *testing.T, name string) string {
	return s.prefix + t.Name() + "/" + name
}

// base is the Time of message 0; message i is i milliseconds later.
var base = time.UnixMilli(1_763_780_000_000)

// msg returns the public message with ID id from user.
func msg(id uint64, user string) chat.Message {
	return chat.Message{
		ID:       strconv.FormatUint(id, 10),
		Username: user,
		Body:     "message " + strconv.FormatUint(id, 10),
		Time:     base.Add(time.Duration(id%1_000_000) * time.Millisecond),
	}
}

// private returns the private message with ID id from user to to.
func private(id uint64, user, to string) chat.Message {
	m := msg(id, user)
	m.To = to
	m.Body = fmt.Sprintf("private %d from %s to %s", id, user, to)
	return m
}

// msgs returns public messages with the given IDs, from "alice".
func msgs(ids ...uint64) []chat.Message {
	out := make([]chat.Message, len(ids))
	for i, id := range ids {
		out[i] = msg(id, "alice")
	}
	return out
}

// span returns the IDs from lo to hi inclusive.
func span(lo, hi uint64) []uint64 {
	var ids []uint64
	for id := lo; id <= hi; id++ {
		ids = append(ids, id)
	}
	return ids
}

// ctx returns a context for one call, bounded so that a hung store fails
// the test instead of the whole run.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func mustAppend(t *testing.T, st chat.Store, room string, ms ...chat.Message) {
	t.Helper()
	if err := st.Append(ctx(t), room, ms); err != nil {
		t.Fatalf("Append(%q, %d messages from %s): %v", room, len(ms), ms[0].ID, err)
	}
}

// check compares got with want by ID and every field; a nil and an empty
// slice are the same.
func check(t *testing.T, call string, want, got []chat.Message, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", call, err)
		return
	}
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: messages differ (-want +got):\n%s\nwant IDs %v\ngot IDs  %v", call, diff, ids(want), ids(got))
	}
}

func ids(ms []chat.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func (s *suite) latest1(t *testing.T, st chat.Store, room string, n int, want []chat.Message) {
	t.Helper()
	got, err := st.Latest(ctx(t), room, n)
	check(t, fmt.Sprintf("Latest(%d)", n), want, got, err)
}

func (s *suite) after1(t *testing.T, st chat.Store, room, user, after string, n int, want []chat.Message) {
	t.Helper()
	got, err := st.After(ctx(t), room, user, after, n)
	check(t, fmt.Sprintf("After(user %q, after %q, %d)", user, after, n), want, got, err)
}

func (s *suite) before1(t *testing.T, st chat.Store, room, user, before string, n int, want []chat.Message) {
	t.Helper()
	got, err := st.Before(ctx(t), room, user, before, n)
	check(t, fmt.Sprintf("Before(user %q, before %q, %d)", user, before, n), want, got, err)
}

func (s *suite) lastID1(t *testing.T, st chat.Store, room, want string) {
	t.Helper()
	got, err := st.LastID(ctx(t), room)
	if err != nil {
		t.Errorf("LastID: %v", err)
	} else if got != want {
		t.Errorf("LastID = %q, want %q", got, want)
	}
}

// appendAndRead: one batch, read back whole by every read.
func (s *suite) appendAndRead(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	all := msgs(span(1, 5)...)
	mustAppend(t, st, room, all...)
	s.latest1(t, st, room, 10, all)
	s.after1(t, st, room, "bob", "", 10, all)
	s.before1(t, st, room, "bob", "6", 10, all)
	s.lastID1(t, st, room, "5")
	if err := st.Append(ctx(t), room, nil); err != nil {
		t.Errorf("Append of no messages: %v", err)
	}
	s.latest1(t, st, room, 10, all)
}

// idempotent: the same messages twice, and a different message under a
// known ID, change nothing.
func (s *suite) idempotent(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	all := msgs(1, 2, 3)
	mustAppend(t, st, room, all...)
	mustAppend(t, st, room, all...)
	other := msg(2, "mallory")
	other.Body = "not the first message 2"
	mustAppend(t, st, room, other)
	s.after1(t, st, room, "alice", "", 10, all)
	s.latest1(t, st, room, 10, all)
	s.lastID1(t, st, room, "3")
}

// overlapping: batches that share some IDs, as hubs sharing a Broker send.
func (s *suite) overlapping(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	mustAppend(t, st, room, msgs(1, 2, 3)...)
	mustAppend(t, st, room, msgs(2, 3, 4, 5)...)
	mustAppend(t, st, room, msgs(5, 6)...)
	all := msgs(span(1, 6)...)
	s.after1(t, st, room, "alice", "", 10, all)
	s.latest1(t, st, room, 10, all)
	s.lastID1(t, st, room, "6")
}

// outOfOrder: a later call may bring earlier IDs; reads are in ID order.
func (s *suite) outOfOrder(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	mustAppend(t, st, room, msgs(20, 40, 60)...)
	mustAppend(t, st, room, msgs(10, 30, 50)...)
	mustAppend(t, st, room, msgs(5)...)
	all := msgs(5, 10, 20, 30, 40, 50, 60)
	s.after1(t, st, room, "alice", "", 10, all)
	s.latest1(t, st, room, 10, all)
	s.before1(t, st, room, "alice", "60", 3, msgs(30, 40, 50))
	s.after1(t, st, room, "alice", "20", 2, msgs(30, 40))
	s.lastID1(t, st, room, "60")
}

// numericIDs: IDs compare as numbers, not strings, up to the largest
// signed 64-bit integer (and past float64's exact integers).
func (s *suite) numericIDs(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	const maxID = math.MaxInt64
	order := []uint64{2, 9, 10, 11, 99, 100, 1000, 1 << 53, 1<<53 + 1, maxID - 1, maxID}
	mustAppend(t, st, room, msgs(order...)...)
	all := msgs(order...)
	s.latest1(t, st, room, 20, all)
	s.latest1(t, st, room, 2, msgs(maxID-1, maxID))
	s.after1(t, st, room, "alice", "", 20, all)
	s.after1(t, st, room, "alice", "9", 3, msgs(10, 11, 99))
	s.after1(t, st, room, "alice", "10", 20, all[3:])
	s.after1(t, st, room, "alice", "1", 2, msgs(2, 9))
	s.after1(t, st, room, "alice", "99", 1, msgs(100))
	s.after1(t, st, room, "alice", strconv.FormatUint(1<<53, 10), 1, msgs(1<<53+1))
	s.after1(t, st, room, "alice", strconv.FormatUint(maxID-1, 10), 5, msgs(maxID))
	s.after1(t, st, room, "alice", strconv.FormatUint(maxID, 10), 5, nil)
	s.before1(t, st, room, "alice", "10", 5, msgs(2, 9))
	s.before1(t, st, room, "alice", "100", 2, msgs(11, 99))
	s.before1(t, st, room, "alice", "1000", 20, all[:6])
	s.before1(t, st, room, "alice", strconv.FormatUint(maxID, 10), 2, msgs(1<<53+1, maxID-1))
	s.lastID1(t, st, room, strconv.FormatUint(maxID, 10))
}

// latest: public messages only, the last n, oldest first.
func (s *suite) latest(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	mustAppend(t, st, room,
		msg(1, "alice"),
		private(2, "alice", "bob"),
		msg(3, "bob"),
		private(4, "bob", "alice"),
		msg(5, "carol"),
		private(6, "carol", "alice"),
	)
	public := []chat.Message{msg(1, "alice"), msg(3, "bob"), msg(5, "carol")}
	s.latest1(t, st, room, 100, public)
	s.latest1(t, st, room, 3, public)
	s.latest1(t, st, room, 2, public[1:])
	s.latest1(t, st, room, 1, public[2:])
	s.latest1(t, st, room, 0, nil)
	s.latest1(t, st, s.room(t, "empty"), 10, nil)
}

// after: the first n after an ID, oldest first; "" and "0" mean the start;
// past the end is empty.
func (s *suite) after(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	all := msgs(10, 20, 30, 40, 50)
	mustAppend(t, st, room, all...)
	for _, start := range []string{"", "0"} {
		s.after1(t, st, room, "bob", start, 10, all)
		s.after1(t, st, room, "bob", start, 2, all[:2])
	}
	s.after1(t, st, room, "bob", "10", 10, all[1:])
	s.after1(t, st, room, "bob", "20", 2, all[2:4])
	s.after1(t, st, room, "bob", "25", 2, all[2:4]) // an ID the room lacks
	s.after1(t, st, room, "bob", "40", 10, all[4:])
	s.after1(t, st, room, "bob", "50", 10, nil)
	s.after1(t, st, room, "bob", "51", 10, nil)
	s.after1(t, st, room, "bob", "1000000", 10, nil)
	s.after1(t, st, room, "bob", "", 0, nil)
	s.after1(t, st, s.room(t, "empty"), "bob", "", 10, nil)
}

// afterPrivacy: After and Before return the public messages and the
// user's own private ones, sent or received, under NameKey; no one else's.
func (s *suite) afterPrivacy(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	const kelvin = "\u212aelvin" // KELVIN SIGN: EqualFold to "kelvin"
	var (
		m1 = msg(1, "alice")
		m2 = private(2, "alice", "Bob")
		m3 = private(3, "BOB", "alice")
		m4 = private(4, "carol", "ALICE")
		m5 = chat.Message{ID: "5", Username: "system", Body: "server restarts soon", System: true, Time: base.Add(5 * time.Millisecond)}
		m6 = private(6, "carol", "dave")
		m7 = private(7, kelvin, "carol")
		m8 = private(8, "Ωmega", "ωMEGA") // to oneself, Greek case folding
		m9 = msg(9, "bob")
	)
	mustAppend(t, st, room, m1, m2, m3, m4, m5, m6, m7, m8, m9)
	cases := []struct {
		users []string // the same user under NameKey
		want  []chat.Message
	}{
		{[]string{"alice", "Alice", "ALICE"}, []chat.Message{m1, m2, m3, m4, m5, m9}},
		{[]string{"bob", "Bob", "bOB"}, []chat.Message{m1, m2, m3, m5, m9}},
		{[]string{"carol", "CAROL"}, []chat.Message{m1, m4, m5, m6, m7, m9}},
		{[]string{"dave"}, []chat.Message{m1, m5, m6, m9}},
		{[]string{"kelvin", "KELVIN", kelvin}, []chat.Message{m1, m5, m7, m9}},
		{[]string{"ωmega", "ΩMEGA"}, []chat.Message{m1, m5, m8, m9}},
		{[]string{"erin", "system", "ali", "alice ", ""}, []chat.Message{m1, m5, m9}},
	}
	for _, c := range cases {
		for _, user := range c.users {
			s.after1(t, st, room, user, "", 20, c.want)
			s.after1(t, st, room, user, "1", 2, c.want[1:3])
			s.before1(t, st, room, user, "10", 20, c.want)
			s.before1(t, st, room, user, "9", 2, c.want[len(c.want)-3:len(c.want)-1])
		}
	}
}

// before: the last n before an ID, oldest first.
func (s *suite) before(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	all := msgs(10, 20, 30, 40, 50)
	mustAppend(t, st, room, all...)
	s.before1(t, st, room, "bob", "50", 10, all[:4])
	s.before1(t, st, room, "bob", "50", 2, all[2:4])
	s.before1(t, st, room, "bob", "45", 2, all[2:4]) // an ID the room lacks
	s.before1(t, st, room, "bob", "51", 10, all)
	s.before1(t, st, room, "bob", "1000000", 3, all[2:])
	s.before1(t, st, room, "bob", "20", 10, all[:1])
	s.before1(t, st, room, "bob", "10", 10, nil)
	s.before1(t, st, room, "bob", "5", 10, nil)
	s.before1(t, st, room, "bob", "1", 10, nil)
	s.before1(t, st, room, "bob", "50", 0, nil)
	s.before1(t, st, s.room(t, "empty"), "bob", "100", 10, nil)
}

// lastID: "" for an empty room; private messages count.
func (s *suite) lastID(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	s.lastID1(t, st, room, "")
	mustAppend(t, st, room, msg(1, "alice"))
	s.lastID1(t, st, room, "1")
	mustAppend(t, st, room, private(2, "alice", "bob"))
	s.lastID1(t, st, room, "2")
	mustAppend(t, st, room, msg(10, "alice"))
	s.lastID1(t, st, room, "10")
	mustAppend(t, st, room, msg(9, "alice")) // late, not last
	s.lastID1(t, st, room, "10")
}

// roomsIsolated: the same IDs in two rooms are two messages; reads see one
// room only.
func (s *suite) roomsIsolated(t *testing.T) {
	st := s.open(t)
	a, b, c, empty := s.room(t, "a"), s.room(t, "b"), s.room(t, "Ä room with spaces/and 'quotes'"), s.room(t, "empty")
	inA := msgs(1, 2, 3)
	var inB, inC []chat.Message
	for _, id := range []uint64{2, 3, 4} {
		m := msg(id, "bob")
		m.Body = "room b " + m.ID
		inB = append(inB, m)
	}
	inC = append(inC, private(7, "alice", "bob"))
	mustAppend(t, st, a, inA...)
	mustAppend(t, st, b, inB...)
	mustAppend(t, st, c, inC...)
	s.latest1(t, st, a, 10, inA)
	s.latest1(t, st, b, 10, inB)
	s.latest1(t, st, c, 10, nil)
	s.after1(t, st, a, "bob", "", 10, inA)
	s.after1(t, st, b, "bob", "", 10, inB)
	s.after1(t, st, c, "bob", "", 10, inC)
	s.before1(t, st, a, "bob", "100", 10, inA)
	s.before1(t, st, b, "bob", "100", 10, inB)
	s.lastID1(t, st, a, "3")
	s.lastID1(t, st, b, "4")
	s.lastID1(t, st, c, "7")
	s.lastID1(t, st, empty, "")
	s.latest1(t, st, empty, 10, nil)
	s.after1(t, st, empty, "bob", "", 10, nil)
}

// roundTrip: every field comes back as appended.
func (s *suite) roundTrip(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	in := []chat.Message{
		{ID: "1", Username: "alice", Body: "plain", Time: time.UnixMilli(1_763_780_000_123)},
		{ID: "2", Username: "Zoë 🦊", Body: `she said "hi" and 'bye'; -- \ \\ \n %s %% ? $1 ' OR '1'='1`, Time: time.UnixMilli(1_763_780_000_124).UTC()},
		{ID: "3", Username: "bob", Body: "line one\nline two\r\n\ttabbed\x00nul \u2028 \u00a0", To: "Zoë 🦊", Time: time.UnixMilli(1_763_780_001_999)},
		{ID: "4", Username: "system", Body: "日本語のテキスト, emoji 👩‍👩‍👧‍👦, RTL עברית, combining e\u0301", System: true, Time: time.UnixMilli(1)},
		{ID: "5", Username: "ΣΊΣΥΦΟΣ", Body: strings.Repeat("ä€𝄞x", 4096/10), To: "alice", Time: time.UnixMilli(4_102_444_800_000)}, // 2100
		{ID: "6", Username: "carol", Body: " leading and trailing space ", Time: time.UnixMilli(1_500_000_000_000).In(time.FixedZone("X", -7*3600))},
		{ID: "7", Username: "alice", Time: time.UnixMilli(1_763_780_002_000), File: &chat.File{
			ID: "Q2ZJ7UXM4V3K5N6P2RSTAB7CDE", Name: "cat.png", Size: 12345, Type: "image/png"}},
		{ID: "8", Username: "bob", Body: "the report", To: "alice", Time: time.UnixMilli(1_763_780_002_001), File: &chat.File{
			ID: "a-b_c", Name: `Zoë's "report" (final) 日本.pdf`, Size: 1<<40 + 1, Type: "text/plain; charset=utf-8"}},
	}
	mustAppend(t, st, room, in...)
	for _, user := range []string{"alice", "Zoë 🦊", "ΣΊΣΥΦΟΣ"} {
		var want []chat.Message
		for _, m := range in {
			if m.To == "" || chat.NameKey(m.To) == chat.NameKey(user) || chat.NameKey(m.Username) == chat.NameKey(user) {
				want = append(want, m)
			}
		}
		s.after1(t, st, room, user, "", 10, want)
		s.before1(t, st, room, user, "9", 10, want)
	}
	s.latest1(t, st, room, 10, []chat.Message{in[0], in[1], in[3], in[5], in[6]})
}

// invalidInput: bad IDs are errors that store nothing; odd n never panics.
func (s *suite) invalidInput(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	for _, id := range []string{"", "abc", "-1", "1.5", "1e3", " 1", "18446744073709551616"} {
		m := msg(1, "alice")
		m.ID = id
		if err := st.Append(ctx(t), room, []chat.Message{m}); err == nil {
			t.Errorf("Append of ID %q: no error", id)
		}
	}
	s.lastID1(t, st, room, "")
	mustAppend(t, st, room, msgs(1, 2, 3)...)
	for _, id := range []string{"abc", "-1", "1.5"} {
		if got, err := st.After(ctx(t), room, "alice", id, 10); err == nil {
			t.Errorf("After(after %q) = %v, want an error", id, ids(got))
		}
		if got, err := st.Before(ctx(t), room, "alice", id, 10); err == nil {
			t.Errorf("Before(before %q) = %v, want an error", id, ids(got))
		}
	}
	// A negative n returns nothing or an error, and never panics.
	if got, err := st.Latest(ctx(t), room, -1); err == nil && len(got) > 0 {
		t.Errorf("Latest(-1) = %v, want nothing or an error", ids(got))
	}
	if got, err := st.After(ctx(t), room, "alice", "", -1); err == nil && len(got) > 0 {
		t.Errorf("After(-1) = %v, want nothing or an error", ids(got))
	}
	if got, err := st.Before(ctx(t), room, "alice", "10", -1); err == nil && len(got) > 0 {
		t.Errorf("Before(-1) = %v, want nothing or an error", ids(got))
	}
	s.latest1(t, st, room, math.MaxInt, msgs(1, 2, 3))
	s.after1(t, st, room, "alice", "", math.MaxInt, msgs(1, 2, 3))
	s.before1(t, st, room, "alice", "4", math.MaxInt, msgs(1, 2, 3))
}

// cancelled: every method fails under a cancelled context; Append stores
// nothing.
func (s *suite) cancelled(t *testing.T) {
	st, room := s.open(t), s.room(t, "r")
	mustAppend(t, st, room, msgs(1)...)
	c, cancel := context.WithCancel(t.Context())
	cancel()
	errs := map[string]error{}
	errs["Append"] = st.Append(c, room, msgs(2, 3))
	_, errs["Latest"] = st.Latest(c, room, 10)
	_, errs["After"] = st.After(c, room, "alice", "", 10)
	_, errs["Before"] = st.Before(c, room, "alice", "10", 10)
	_, errs["LastID"] = st.LastID(c, room)
	for _, name := range slices.Sorted(maps.Keys(errs)) {
		if err := errs[name]; !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error %v, want one wrapping context.Canceled", name, err)
		}
	}
	s.lastID1(t, st, room, "1")
	s.after1(t, st, room, "alice", "", 10, msgs(1))
}

// concurrent: writers append overlapping batches to two rooms while
// readers read; every read is in order and shows no one else's private
// messages, and in the end each room holds every message once.
func (s *suite) concurrent(t *testing.T) {
	st := s.open(t)
	rooms := []string{s.room(t, "a"), s.room(t, "b")}
	const (
		writers = 4  // per room
		batches = 25 // per writer
		size    = 4  // messages per batch
		total   = writers * batches * size / 2
	)
	// message i is private from carol to dave when i%5 == 0, else public.
	mk := func(id uint64) chat.Message {
		if id%5 == 0 {
			return private(id, "carol", "dave")
		}
		return msg(id, "alice")
	}
	var want []chat.Message
	for id := uint64(1); id <= total; id++ {
		want = append(want, mk(id))
	}
	var (
		writing sync.WaitGroup
		reading sync.WaitGroup
		done    = make(chan struct{})
		errc    = make(chan error, 2*writers+4)
	)
	for _, room := range rooms {
		for w := range writers {
			// Writers 0 and 1 write the even batches, 2 and 3 the odd
			// ones: every message arrives twice, from two goroutines.
			writing.Go(func() {
				for b := w / 2; b < total/size; b += 2 {
					batch := make([]chat.Message, size)
					for i := range batch {
						batch[i] = mk(uint64(b*size + i + 1))
					}
					if err := st.Append(t.Context(), room, batch); err != nil {
						errc <- fmt.Errorf("Append(%s, batch %d): %w", room, b, err)
						return
					}
				}
			})
		}
		reading.Go(func() { errc <- readUntil(t.Context(), st, room, done) })
	}
	writing.Wait()
	close(done)
	reading.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	for _, room := range rooms {
		s.after1(t, st, room, "carol", "", 2*total, want)
		s.lastID1(t, st, room, strconv.Itoa(total))
	}
}

// readUntil reads room in every way until done is closed, and reports the
// first result out of order or showing a private message to a third party.
func readUntil(ctx context.Context, st chat.Store, room string, done <-chan struct{}) error {
	sorted := func(call string, ms []chat.Message, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", call, err)
		}
		var prev uint64
		for _, m := range ms {
			id, err := strconv.ParseUint(m.ID, 10, 64)
			if err != nil || id <= prev {
				return fmt.Errorf("%s: IDs out of order: %v", call, ids(ms))
			}
			if m.To != "" {
				return fmt.Errorf("%s: private message %s shown to bob", call, m.ID)
			}
			prev = id
		}
		return nil
	}
	for {
		select {
		case <-done:
			return nil
		default:
		}
		ms, err := st.Latest(ctx, room, 20)
		if err := sorted("Latest", ms, err); err != nil {
			return err
		}
		ms, err = st.After(ctx, room, "bob", "", 20)
		if err := sorted("After", ms, err); err != nil {
			return err
		}
		ms, err = st.Before(ctx, room, "bob", "150", 20)
		if err := sorted("Before", ms, err); err != nil {
			return err
		}
		if _, err := st.LastID(ctx, room); err != nil {
			return fmt.Errorf("LastID: %w", err)
		}
	}
}
