package chat

import (
	"context"
	"errors"
	"slices"
	"strconv"
)

// A hub's memory of recent messages serves three things: the history a
// joiner receives (the last HistorySize public messages), a client that
// reconnects and resumes from the last message it saw (?since=), and older
// pages ({"type":"history","before":...}). It holds the last
// max(HistorySize, ResumeLimit) public messages and the last ResumeLimit
// private ones, each in a ring, as encoded for the wire: a message costs
// one slot of a ring, the same as a public message did for the history
// alone.
//
// With a Store, resume and pages read the Store off the hub's lock, and
// the hub completes what they read with its memory at the join or the
// reply: the messages it has accepted may not be stored yet.

// Defaults and caps of resume and pages.
const (
	defaultResumeLimit = 1000
	defaultPageLimit   = 50
	maxPageLimit       = 100
)

// An entry is a message in memory.
type entry struct {
	id       uint64
	msg      Message
	json     []byte // its wire object
	from, to string // a private message's two ends, as name keys
}

// A ring holds the last messages of one kind, oldest first.
type ring struct {
	e     []entry
	start int
	size  int    // at most this many entries
	floor uint64 // the ID of the last entry let go; 0 if none
}

func (r *ring) add(e entry) {
	switch {
	case r.size <= 0:
		r.floor = e.id
	case len(r.e) < r.size:
		r.e = append(r.e, e)
	default:
		r.floor = r.e[r.start].id
		r.e[r.start] = e
		r.start = (r.start + 1) % r.size
	}
}

func (r *ring) len() int { return len(r.e) }

// at returns the i-th oldest entry.
func (r *ring) at(i int) *entry { return &r.e[(r.start+i)%len(r.e)] }

// after returns the index of the oldest entry with an ID above id.
func (r *ring) after(id uint64) int {
	lo, hi := 0, len(r.e)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.at(m).id <= id {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (r *ring) reset() {
	clear(r.e)
	r.e, r.start, r.floor = r.e[:0], 0, 0
}

// recent is a hub's memory of messages, guarded by the hub's lock.
type recent struct {
	pub, priv ring
	hist      int    // the history is the last hist entries of pub
	base      uint64 // memory holds every message with an ID above base and the rings' floors
	pending   bool   // base is to be set by the next message (a Broker's sync may have skipped some)
	last      uint64 // the room's greatest message ID known
	histMsg   []byte // the cached history payload; nil when stale
	staleMsg  []byte // the same with "resume":false
	filesURL  string // Options.FilesURL, for encoding
	origin    string // the hub's Options.Origin
}

func (r *recent) init(o *Options) {
	r.hist = o.HistorySize
	r.filesURL = o.FilesURL
	r.pub.size = max(o.HistorySize, o.ResumeLimit)
	r.priv.size = o.ResumeLimit
	r.origin = o.Origin
}

// add remembers a message, just accepted, with id.
func (r *recent) add(e entry) {
	if r.pending {
		r.base, r.pending = e.id-1, false
	}
	r.last = max(r.last, e.id)
	if e.msg.To != "" {
		r.priv.add(e)
		return
	}
	r.pub.add(e)
	r.histMsg, r.staleMsg = nil, nil
}

// sync replaces the memory with a Broker's snapshot of the history: what
// happened between the last message delivered and the snapshot is
// unknown until the next message.
func (r *recent) sync(history []Message) {
	r.pub.reset()
	r.priv.reset()
	for _, m := range history[max(0, len(history)-r.pub.size):] {
		id, _ := strconv.ParseUint(m.ID, 10, 64)
		r.pub.add(entry{id: id, msg: m, json: appendMessageJSON(nil, &m, r.filesURL, r.origin)})
		r.last = max(r.last, id)
	}
	r.base, r.pending = r.last, true
	r.histMsg, r.staleMsg = nil, nil
}

// floor returns the ID above which memory holds every message, and
// whether it can tell (not while pending).
func (r *recent) floor() (uint64, bool) {
	return max(r.base, r.pub.floor, r.priv.floor), !r.pending
}

// history returns the history's entries, oldest first.
func (r *recent) history() []*entry {
	n := r.pub.len()
	k := min(n, r.hist)
	out := make([]*entry, k)
	for i := range out {
		out[i] = r.pub.at(n - k + i)
	}
	return out
}

// historyPayload returns the history frame's payload for a joiner: with "resume":false
// if stale (it asked to resume but cannot), else the plain one, which is
// nil if the history is off.
func (r *recent) historyPayload(stale bool) []byte {
	p := &r.histMsg
	if stale {
		p = &r.staleMsg
	} else if r.hist <= 0 {
		return nil
	}
	if *p == nil {
		hist := r.history()
		msgs := make([][]byte, len(hist))
		for i, e := range hist {
			msgs[i] = e.json
		}
		res := resumeNone
		if stale {
			res = resumeFalse
		}
		*p = appendHistory(nil, "", msgs, res)
	}
	return *p
}

// An item is a message of a resume or a page, encoded.
type item struct {
	id   uint64
	json []byte
}

// items returns the messages in memory with IDs in (after, before) that
// the user with key may see, oldest first: the first n if fromStart, else
// the last n.
func (r *recent) items(after, before uint64, key string, n int, fromStart bool) []item {
	pub := r.collect(&r.pub, after, before, "", n, fromStart)
	priv := r.collect(&r.priv, after, before, key, n, fromStart)
	return trim(mergeItems(pub, priv), n, fromStart)
}

// collect returns the entries of g with IDs in (after, before) that the
// user with key may see (every one if key is ""), oldest first: the first n
// if fromStart, else the last n.
func (r *recent) collect(g *ring, after, before uint64, key string, n int, fromStart bool) []item {
	lo, hi := g.after(after), g.after(before-1)
	var out []item
	if fromStart {
		for i := lo; i < hi && len(out) < n; i++ {
			if e := g.at(i); key == "" || e.from == key || e.to == key {
				out = append(out, item{e.id, e.json})
			}
		}
		return out
	}
	for i := hi - 1; i >= lo && len(out) < n; i-- {
		if e := g.at(i); key == "" || e.from == key || e.to == key {
			out = append(out, item{e.id, e.json})
		}
	}
	slices.Reverse(out)
	return out
}

// mergeItems merges a and b, each in ID order, into one list in ID order
// in which each ID appears once.
func mergeItems(a, b []item) []item {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]item, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch {
		case a[0].id < b[0].id:
			out, a = append(out, a[0]), a[1:]
		case a[0].id > b[0].id:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}

// trim returns the first n items if fromStart, else the last n.
func trim(items []item, n int, fromStart bool) []item {
	if len(items) <= n {
		return items
	}
	if fromStart {
		return items[:n]
	}
	return items[len(items)-n:]
}

// encodeItems encodes messages read from the Store.
func encodeItems(msgs []Message, filesURL string) ([]item, error) {
	out := make([]item, len(msgs))
	for i := range msgs {
		id, err := strconv.ParseUint(msgs[i].ID, 10, 64)
		if err != nil {
			return nil, err
		}
		out[i] = item{id, appendMessageJSON(nil, &msgs[i], filesURL, "")} // a Store keeps no Origin
	}
	return out, nil
}

// A resumeReq is what a client that reconnects with since asks for,
// prepared by its reader before it joins (prepareResume) and answered at
// the join (resumeFrameLocked).
type resumeReq struct {
	since  uint64
	valid  bool   // since is an ID and resume is on
	stored []item // the messages after since that the Store held
	read   bool   // stored is every one of them (no more than ResumeLimit)
}

// prepareResume reads, off the hub's lock, what the Store holds after
// since for the user name, unless the hub's memory reaches back to it.
func (h *Hub) prepareResume(name, since string) *resumeReq {
	r := &resumeReq{}
	id, err := strconv.ParseUint(since, 10, 64)
	if err != nil || h.opts.ResumeLimit <= 0 {
		return r
	}
	r.since, r.valid = id, true
	if h.opts.Store == nil {
		return r
	}
	h.mu.Lock()
	floor, exact := h.mem.floor()
	known := id <= h.mem.last
	lost := h.ap.lost
	h.mu.Unlock()
	if !known || (exact && floor <= id) || id < lost {
		return r // from memory, or not at all
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.WriteTimeout)
	defer cancel()
	msgs, err := h.opts.Store.After(ctx, h.opts.Name, name, strconv.FormatUint(id, 10), h.opts.ResumeLimit+1)
	if err == nil && len(msgs) <= h.opts.ResumeLimit {
		r.stored, err = encodeItems(msgs, h.opts.FilesURL)
		r.read = err == nil
	}
	if err != nil && !errors.Is(err, ErrNotRetained) && h.ctx.Err() == nil {
		h.met.storeErrors.Add(1)
		h.log.Warn("chat: cannot read the store to resume", "user", name, "err", err)
	}
	return r
}

// resumeFrameLocked returns the history frame for a member with key who
// asked to resume with r: the messages after r.since it may see, from the
// Store (if read) and memory, with "resume":true; or, if they cannot all
// be known, or are too many, the plain history with "resume":false.
func (h *Hub) resumeFrameLocked(r *resumeReq, key string) []byte {
	m := &h.mem
	if !r.valid || r.since > m.last {
		return m.historyPayload(true)
	}
	var stored []item
	floor, exact := m.floor()
	if !exact || floor > r.since {
		// Memory must hold everything after what the Store held.
		last := r.since
		if n := len(r.stored); n > 0 {
			last = r.stored[n-1].id
		}
		if !r.read || max(m.base, m.pub.floor, m.priv.floor) > last {
			return m.historyPayload(true)
		}
		stored = r.stored
	}
	limit := h.opts.ResumeLimit
	items := mergeItems(stored, m.items(r.since, maxID, key, limit+1, true))
	if len(items) > limit {
		return m.historyPayload(true)
	}
	msgs := make([][]byte, len(items))
	for i, it := range items {
		msgs[i] = it.json
	}
	return appendHistory(nil, "", msgs, resumeTrue)
}

const maxID = ^uint64(0)

// joinHistoryLocked returns the history frame for c, which joins as m:
// the resumed history if it asked to resume, else the plain history.
func (h *Hub) joinHistoryLocked(c *client, m *member) []byte {
	if r := c.res; r != nil {
		c.res = nil
		return h.resumeFrameLocked(r, m.key)
	}
	return h.mem.historyPayload(false)
}

// page returns the reply to a member's request for older messages: the
// last limit messages before the ID before that name may see, oldest
// first, from the Store if there is one and from memory, read off the
// hub's lock but for a short look at memory.
func (h *Hub) page(name string, before uint64, limit int) ([]byte, error) {
	if before == 0 {
		return appendHistory(nil, "0", nil, resumeNone), nil
	}
	var stored []item
	if st := h.opts.Store; st != nil {
		ctx, cancel := context.WithTimeout(h.ctx, h.opts.WriteTimeout)
		msgs, err := st.Before(ctx, h.opts.Name, name, strconv.FormatUint(before, 10), limit)
		cancel()
		if err == nil {
			stored, err = encodeItems(msgs, h.opts.FilesURL)
		}
		if err != nil {
			if h.ctx.Err() == nil {
				h.met.storeErrors.Add(1)
				h.log.Warn("chat: cannot read the store for a page of history", "user", name, "err", err)
			}
			return nil, rejected(rejectUnavailable, errors.New(errTextHistoryUnavailable))
		}
	}
	key := nameKey(name)
	h.mu.Lock()
	mem := h.mem.items(0, before, key, limit, false)
	h.mu.Unlock()
	items := trim(mergeItems(stored, mem), limit, false)
	msgs := make([][]byte, len(items))
	for i, it := range items {
		msgs[i] = it.json
	}
	return appendHistory(nil, strconv.FormatUint(before, 10), msgs, resumeNone), nil
}
