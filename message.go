package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Message is one chat message, as published to a hub.
type Message struct {
	// ID is assigned by the hub: a decimal number, unique and increasing
	// within the room.
	ID string
	// Username is the sender's name as it joined, or Options.SystemName for
	// messages posted with [Hub.Post].
	Username string
	// Body is the text, valid UTF-8, at most Options.MaxBodyBytes bytes.
	Body string
	// To is the recipient of a private message, or empty for a message to
	// everyone.
	To string
	// System reports whether the message was posted with [Hub.Post].
	System bool
	// Time is when the hub accepted the message; on the wire it is "ts",
	// in Unix milliseconds.
	Time time.Time
	// File is the message's attachment, a file its sender uploaded to
	// the room (see [Hub.FilesHandler]), or nil for none. A message with a
	// file may have an empty Body.
	File *File
	// Origin names where the sender is, when that is not this hub: the
	// Options.Origin of the hub its sender is connected to, in a room
	// whose hubs share a Broker; or, for a private message from outside
	// the room (see [Hub.Deliver]), the place it came from, e.g. another
	// server. On the wire it is "origin", left out by a hub whose own
	// Options.Origin it is. Clients cannot set it.
	Origin string
	// ToOrigin, on a private message to someone outside the room, names
	// where the recipient is, e.g. another server; To is then the
	// recipient's address there, as the sender's client shows it (e.g.
	// "bob@8082"). Such a message is its sender's copy of what Go code
	// carried elsewhere: only the sender receives it (see
	// Options.OnMessage). It is not on the wire: "to" says it all.
	ToOrigin string
}

// Wire type strings.
const (
	typeJoin    = "join"
	typeLeave   = "leave"
	typeMessage = "message"
	typeUsers   = "users"
	typeHistory = "history"
	typeError   = "error"
	typeUpload  = "upload"
	typeTyping  = "typing"
)

// MaxUsernameRunes is the longest username, in characters (runes), after
// surrounding white space is trimmed.
const MaxUsernameRunes = 32

// Error-frame texts are part of the wire contract; they are all here.
const (
	errTextJoinFirst   = "join first: the first frame must be {\"type\":\"join\",\"username\":...}"
	errTextJoinTimeout = "join timeout: no join frame within %v"
	errTextBadQuery    = "invalid username: malformed ?username= query"
	errTextJoined      = "already joined"
	errTextJSON        = "invalid JSON: each frame must hold one JSON object"
	errTextBinary      = "binary frames are not supported: send JSON in text frames"
	errTextUTF8        = "invalid UTF-8 in text frame"
	errTextEmptyBody   = "empty body"
	errTextRate        = "rate limit exceeded: slow down (at most %g messages/s)"
	errTextRoomFull    = "room is full"
	errTextSlow        = "too slow: disconnected"
	errTextClosed      = "server is shutting down"
	errTextUnavailable = "room temporarily unavailable, try again"
	errTextKicked      = "kicked by a moderator"          // + ": " and the reason, if any
	errTextBanned      = "banned until %s"                // the member, disconnected; + reason
	errTextBannedName  = "username %s is banned until %s" // at join; + reason
	errTextBannedNow   = "username %s is banned"          // at join, before the hub has the ban's end
	errTextMuted       = "you are muted until %s: your messages are not published"
	errTextMutedNow    = "you are muted: your messages are not published"

	errTextBefore             = `history needs "before": the id of a message`
	errTextLimit              = "invalid limit: want a whole number of at least 1 (at most 100 messages are sent)"
	errTextHistoryUnavailable = "history temporarily unavailable, try again"

	errTextFilesOff         = "file sharing is off in this room"
	errTextNoFile           = "no such file %s: attach a file you uploaded to this room"
	errTextFilesUnavailable = "files temporarily unavailable, try again"
	errTextUploadRate       = "upload rate exceeded: slow down (at most %g uploads a minute)"
)

// Sentinel errors. Client-facing ones double as the text of error frames,
// without the "chat: " prefix.
var (
	// ErrHubClosed is returned by Hub methods after Shutdown or Close.
	ErrHubClosed = errors.New("chat: hub closed")
	// ErrNameTaken means another member of the room already uses the name,
	// compared case-insensitively.
	ErrNameTaken = errors.New("chat: username taken")
	// ErrInvalidName means a username broke the rules of [ValidateUsername].
	ErrInvalidName = errors.New("chat: invalid username")
	// ErrInvalidBody means a message body was empty, too long or not UTF-8.
	ErrInvalidBody = errors.New("chat: invalid message body")
	// ErrNoSuchUser means a private message named a user who is not in the
	// room.
	ErrNoSuchUser = errors.New("chat: no such user")
	// ErrRoomFull means the hub has Options.MaxUsers members.
	ErrRoomFull = errors.New("chat: room is full")
	// ErrBanned means a name is banned from the room (see [Hub.Ban]).
	ErrBanned = errors.New("chat: username banned")
	// ErrMuted means a member is muted (see [Hub.Mute]): its messages are
	// not published.
	ErrMuted = errors.New("chat: muted")
	// ErrInvalidIdentity means an [Identity] broke one of its rules or
	// size caps, other than those of its name (see [ValidateIdentity]).
	ErrInvalidIdentity = errors.New("chat: invalid identity")
)

// clientFrame is the decoded form of every frame a client may send.
type clientFrame struct {
	Type     string          `json:"type"`
	Username *string         `json:"username"`
	Body     *string         `json:"body"`
	To       *string         `json:"to"`
	File     *string         `json:"file"`   // message: the ID of an attachment
	Since    json.RawMessage `json:"since"`  // join: the last message ID seen
	Before   json.RawMessage `json:"before"` // history: page before this ID
	Limit    json.RawMessage `json:"limit"`  // history: page size

	// A history request, validated.
	before uint64
	limit  int
}

// decodeClientFrame decodes one text frame into a fresh value. It rejects
// invalid UTF-8, anything but a single JSON object, and unknown types. The
// returned error's text is fit for an error frame; its cause (see
// rejected) says why, for Metrics.
func decodeClientFrame(data []byte) (clientFrame, error) {
	var f clientFrame
	if !utf8.Valid(data) {
		return f, rejected(rejectJSON, errors.New(errTextUTF8))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return clientFrame{}, rejected(rejectJSON, errors.New(errTextJSON))
	}
	if _, err := dec.Token(); err != io.EOF {
		return clientFrame{}, rejected(rejectJSON, errors.New(errTextJSON))
	}
	switch f.Type {
	case typeJoin:
		if f.Username == nil {
			return clientFrame{}, rejected(rejectType, errors.New("join needs a username"))
		}
	case typeMessage:
		if f.Body == nil && f.File == nil {
			return clientFrame{}, rejected(rejectBody, errors.New(errTextEmptyBody))
		}
	case typeTyping:
	case typeHistory:
		var err error
		if f.before, err = strconv.ParseUint(rawText(f.Before), 10, 64); err != nil {
			return clientFrame{}, rejected(rejectHistory, errors.New(errTextBefore))
		}
		f.limit = defaultPageLimit
		if l := rawText(f.Limit); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 1 || len(f.Limit) != len(l) {
				return clientFrame{}, rejected(rejectHistory, errors.New(errTextLimit))
			}
			f.limit = min(n, maxPageLimit)
		}
	case "":
		return clientFrame{}, rejected(rejectType, errors.New("missing type"))
	default:
		return clientFrame{}, rejected(rejectType, fmt.Errorf("unknown type %s", quote(f.Type)))
	}
	return f, nil
}

// rawText returns the text of a JSON string or the literal text of any
// other JSON value; "" for none or null.
func rawText(raw json.RawMessage) string {
	var s string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return ""
	case json.Unmarshal(raw, &s) == nil:
		return s
	}
	return string(raw)
}

// ValidateUsername trims white space from the ends of name and checks the
// result. It returns the trimmed name, or an error wrapping
// [ErrInvalidName] that says what is wrong. A valid name
//
//   - is valid UTF-8, 1 to [MaxUsernameRunes] characters (runes) long;
//   - consists of assigned letters (L), marks (M), numbers (N),
//     punctuation (P), symbols (S) and the space U+0020: no control
//     characters (Cc), no format characters (Cf: zero-width spaces and
//     joiners, bidi controls, the BOM, the soft hyphen, tags), no
//     private-use, surrogate or unassigned code points, no line or
//     paragraph separators, no other white space (tabs, no-break and
//     ideographic spaces), no U+FFFD;
//   - has no invisible characters: no Unicode Default_Ignorable_Code_Point
//     (besides format characters, these are variation selectors such as
//     U+FE0F, the combining grapheme joiner U+034F, the Khmer inherent
//     vowels U+17B4 and U+17B5 and the Hangul fillers U+115F, U+1160,
//     U+3164 and U+FFA0), and none of the blank-looking U+2800 BRAILLE
//     PATTERN BLANK, U+1D159 MUSICAL SYMBOL NULL NOTEHEAD and U+16FE4
//     KHITAN SMALL SCRIPT FILLER;
//   - has at least one letter, number, punctuation mark or symbol, so a
//     name of only combining marks (and spaces) is refused.
//
// Categories and properties are those of the [unicode] package, Unicode
// [unicode.Version].
//
// Names are unique within a room under simple Unicode case folding (the
// equivalence of [strings.EqualFold]): "Sam", "SAM" and "ſam" are one name.
// Names are not normalized: a precomposed "é" and "e" followed by U+0301 are
// different names.
func ValidateUsername(name string) (string, error) {
	return validateName(name, MaxUsernameRunes, "username")
}

// validateName checks name, trimmed, by the rules of ValidateUsername
// with at most maxRunes characters; what names it in errors.
func validateName(name string, maxRunes int, what string) (string, error) {
	if !utf8.ValidString(name) {
		return "", errorf(ErrInvalidName, "invalid %s: not valid UTF-8", what)
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", errorf(ErrInvalidName, "invalid %s: empty", what)
	}
	if n := utf8.RuneCountInString(name); n > maxRunes {
		return "", errorf(ErrInvalidName, "invalid %s: %d characters, at most %d allowed", what, n, maxRunes)
	}
	base := false
	for _, r := range name {
		if !allowedNameRune(r) {
			kind := "character"
			if invisible(r) {
				kind = "invisible character"
			}
			return "", errorf(ErrInvalidName, "invalid %s: %s %U not allowed", what, kind, r)
		}
		base = base || unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
	}
	if !base {
		return "", errorf(ErrInvalidName, "invalid %s: no letter, number, punctuation mark or symbol", what)
	}
	return name, nil
}

// allowedNameRune reports whether r may appear in a username.
func allowedNameRune(r rune) bool {
	switch {
	case r == utf8.RuneError || invisible(r):
		return false
	case unicode.In(r, unicode.Cc, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp):
		return false
	case unicode.IsSpace(r) && r != ' ':
		return false // tabs, NBSP and other look-alike spaces
	case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs):
		return false // unassigned
	}
	return true
}

// invisible reports whether r shows nothing, or only blank space, in a
// name. Default_Ignorable_Code_Point is derived (UAX #44) from
// Other_Default_Ignorable_Code_Point, Cf and Variation_Selector minus a
// few visible format characters, so the union of the three covers it.
func invisible(r rune) bool {
	switch r {
	case '\u2800', '\U0001D159', '\U00016FE4': // blank braille, null notehead, Khitan filler
		return true
	}
	return unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// nameKey is the canonical form of a username: every rune replaced by the
// smallest rune of its case-folding orbit. Two names have the same key
// exactly when strings.EqualFold says they are equal.
func nameKey(name string) string {
	b := make([]byte, 0, len(name))
	for _, r := range name {
		lo := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			lo = min(lo, f)
		}
		b = utf8.AppendRune(b, lo)
	}
	return string(b)
}

// validateBody checks a message body against the size limit.
func validateBody(body string, maxBytes int) error {
	if strings.TrimSpace(body) == "" {
		return errorf(ErrInvalidBody, "%s", errTextEmptyBody)
	}
	if len(body) > maxBytes {
		return errorf(ErrInvalidBody, "body too long: %d bytes, at most %d allowed", len(body), maxBytes)
	}
	if !utf8.ValidString(body) {
		return errorf(ErrInvalidBody, "%s", errTextUTF8)
	}
	return nil
}

// validateMessageBody checks the body of a message from a client, which
// may be empty if it has a file; a body of white space only is then made
// empty.
func validateMessageBody(body *string, withFile bool, maxBytes int) error {
	if withFile && strings.TrimSpace(*body) == "" {
		*body = ""
		return nil
	}
	return validateBody(*body, maxBytes)
}

// maxEchoRunes is how many characters of a value a client sent an error
// text repeats; [quote] cuts the rest.
const maxEchoRunes = 32

// quote quotes s as %q does, for an error text that names a value a client
// sent (a name, a type): cut to its first maxEchoRunes characters and "…",
// so that no error frame echoes more than a short prefix of the input.
// Every such value goes through quote.
func quote(s string) string { return strconv.Quote(clip(s)) }

// clip cuts s to its first maxEchoRunes characters and "…".
func clip(s string) string {
	n := 0
	for i := range s {
		if n == maxEchoRunes {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// truncate cuts s to at most n bytes, at a rune boundary, and marks the cut
// with "…" (3 more bytes).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// detailError is an error of a sentinel kind with a text of its own, e.g.
// ErrNameTaken with `username "bob" is taken`: errors.Is matches the kind,
// and the text makes a readable error frame.
type detailError struct {
	kind error
	text string
}

func (e *detailError) Error() string { return "chat: " + e.text }
func (e *detailError) Unwrap() error { return e.kind }

// errorf returns an error of kind with a formatted text.
func errorf(kind error, format string, args ...any) error {
	return &detailError{kind: kind, text: fmt.Sprintf(format, args...)}
}

// publicText strips the "chat: " prefix from an error for an error frame.
func publicText(err error) string {
	return strings.TrimPrefix(err.Error(), "chat: ")
}

// Server events are encoded by hand: each is built once per event and
// framed once for all recipients, and the fields are few and fixed.

// appendMessageJSON appends the wire object of a message event, as sent
// by a hub whose Options.Origin is own; the URL of its file, if any, is
// filesURL followed by the file's ID.
func appendMessageJSON(b []byte, m *Message, filesURL, own string) []byte {
	b = append(b, `{"type":"message","id":`...)
	b = appendJSONString(b, m.ID)
	b = append(b, `,"username":`...)
	b = appendJSONString(b, m.Username)
	if m.Origin != "" && m.Origin != own {
		b = append(b, `,"origin":`...)
		b = appendJSONString(b, m.Origin)
	}
	b = append(b, `,"body":`...)
	b = appendJSONString(b, m.Body)
	if m.To != "" {
		b = append(b, `,"to":`...)
		b = appendJSONString(b, m.To)
	}
	if m.System {
		b = append(b, `,"system":true`...)
	}
	if m.File != nil {
		b = append(b, `,"file":`...)
		b = appendFileJSON(b, m.File, filesURL)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, m.Time.UnixMilli(), 10)
	return append(b, '}')
}

// appendFileJSON appends the wire object of f, whose URL is filesURL
// followed by its ID.
func appendFileJSON(b []byte, f *File, filesURL string) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, f.ID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, f.Name)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, f.Size, 10)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, f.Type)
	b = append(b, `,"url":`...)
	b = appendJSONString(b, filesURL+f.ID)
	return append(b, '}')
}

// appendNameEvent appends {"type":typ,"username":name} (a leave, a
// typing notice).
func appendNameEvent(b []byte, typ, name string) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","username":`...)
	b = appendJSONString(b, name)
	return append(b, '}')
}

// appendJoinEvent appends a join event: {"type":"join","username":name}
// with the fields of p that are set.
func appendJoinEvent(b []byte, name string, p Profile) []byte {
	b = appendNameEvent(b, typeJoin, name)
	return appendProfileFields(b[:len(b)-1], ',', p)
}

// appendProfileFields appends the fields of p that are set, "display"
// and "avatar", the first after sep, then '}'.
func appendProfileFields(b []byte, sep byte, p Profile) []byte {
	if p.Display != "" {
		b = append(b, sep)
		b = append(b, `"display":`...)
		b = appendJSONString(b, p.Display)
		sep = ','
	}
	if p.Avatar != "" {
		b = append(b, sep)
		b = append(b, `"avatar":`...)
		b = appendJSONString(b, p.Avatar)
	}
	return append(b, '}')
}

// A usersSnap is the users snapshot, encoded in two parts that joins only
// extend:
//
//	{"type":"users","users":["alice","bob"],"profiles":{"bob":{"display":"Bob"}}}
//	<-------------- list ------------------>             <------- profs ------->
//
// list has the names in join order, without the closing bracket; profs
// the profiles of the members that have one, by name, without the braces
// around them: empty if none has, and then the frame has no "profiles".
// Appending to a usersSnap never changes the bytes of an earlier one (see
// fixed), so a snapshot queued for a joiner stays valid while the next
// joins extend the cache. The zero usersSnap is unknown (see known).
type usersSnap struct {
	list, profs []byte
}

// Pieces of the users snapshot around its two parts.
const (
	usersStart = `{"type":"users","users":[`
	usersEnd   = "]}"             // after list without profiles
	profsStart = `],"profiles":{` // after list with profiles
	profsEnd   = "}}"             // after profs
)

// newUsersSnap encodes the users snapshot of the members from first on.
func newUsersSnap(first *member) usersSnap {
	s := usersSnap{list: append([]byte(nil), usersStart...)}
	for m := first; m != nil; m = m.next {
		s.add(m.name, m.prof)
	}
	return s
}

// known reports whether s holds a snapshot.
func (s usersSnap) known() bool { return s.list != nil }

// add extends s by a member named name with profile p.
func (s *usersSnap) add(name string, p Profile) {
	if len(s.list) > len(usersStart) {
		s.list = append(s.list, ',')
	}
	s.list = appendJSONString(s.list, name)
	if p == (Profile{}) {
		return
	}
	if len(s.profs) > 0 {
		s.profs = append(s.profs, ',')
	}
	s.profs = appendJSONString(s.profs, name)
	s.profs = append(s.profs, ':')
	s.profs = appendProfileFields(s.profs, '{', p)
}

// fixed returns s capped, so that appending to s later cannot change it.
func (s usersSnap) fixed() usersSnap {
	return usersSnap{list: s.list[:len(s.list):len(s.list)], profs: s.profs[:len(s.profs):len(s.profs)]}
}

// size is the length of the snapshot's payload.
func (s usersSnap) size() int {
	if len(s.profs) == 0 {
		return len(s.list) + len(usersEnd)
	}
	return len(s.list) + len(profsStart) + len(s.profs) + len(profsEnd)
}

// appendTo appends the snapshot's payload to b.
func (s usersSnap) appendTo(b []byte) []byte {
	b = append(b, s.list...)
	if len(s.profs) == 0 {
		return append(b, usersEnd...)
	}
	b = append(b, profsStart...)
	b = append(b, s.profs...)
	return append(b, profsEnd...)
}

// The "resume" field of a history frame.
const (
	resumeNone  = iota // none: the plain history, or a page
	resumeTrue         // "resume":true: every message since the client's last
	resumeFalse        // "resume":false: the plain history; the client missed some
)

// appendHistory appends a history frame's payload holding the encoded
// message objects: with "before" if before is set (a page; before is
// digits only), and the "resume" field resume.
func appendHistory(b []byte, before string, msgs [][]byte, resume int) []byte {
	b = append(b, `{"type":"history",`...)
	if before != "" {
		b = append(b, `"before":"`...)
		b = append(b, before...)
		b = append(b, `",`...)
	}
	b = append(b, `"messages":[`...)
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m...)
	}
	b = append(b, ']')
	switch resume {
	case resumeTrue:
		b = append(b, `,"resume":true`...)
	case resumeFalse:
		b = append(b, `,"resume":false`...)
	}
	return append(b, '}')
}

// appendError appends an error event.
func appendError(b []byte, text string) []byte {
	b = append(b, `{"type":"error","error":`...)
	b = appendJSONString(b, text)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. s must be valid UTF-8 (all
// text the hub sends has been validated). Like encoding/json it escapes
// control characters, U+2028 and U+2029, and <, > and & so that the output
// is safe to embed in HTML.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' || (r == utf8.RuneError && size == 1) {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
