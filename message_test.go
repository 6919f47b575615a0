package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func FuzzDecodeClientFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"join","username":"alice"}`,
		`{"type":"message","body":"Hello"}`,
		`{"type":"message","body":"psst","to":"bob"}`,
		`{"type":"message","file":"Q2ZJ7UXM4V3K5N6P2RSTAB7CDE"}`,
		`{"type":"message","body":"look","file":"../../etc/passwd"}`,
		`{"type":"message","file":12}`,
		`{"type":"message","body":null}`,
		`{"type":"message","body":"a"} {"type":"message"}`,
		`{"type":"shout"}`,
		`{"type":"join","username":"alice","since":"17"}`,
		`{"type":"history","before":"17","limit":20}`,
		`{"type":"history","before":17}`,
		`{"type":"history","before":"17","limit":-1}`,
		`{"type":"history","limit":5}`,
		`[1,2]`,
		`{"type":"message","body":"\u0000\ud800"}`,
		"{\"type\":\"message\",\"body\":\"\xff\"}",
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := decodeClientFrame(data)
		if err != nil {
			if !reflect.DeepEqual(fr, clientFrame{}) {
				t.Fatalf("error %v with a non-zero frame %+v", err, fr)
			}
			if err.Error() == "" {
				t.Fatal("empty error text")
			}
			return
		}
		if !utf8.Valid(data) {
			t.Fatal("accepted invalid UTF-8")
		}
		switch fr.Type {
		case typeJoin:
			if fr.Username == nil {
				t.Fatal("join without username accepted")
			}
			if name, err := ValidateUsername(*fr.Username); err == nil {
				checkName(t, name)
			}
		case typeMessage:
			if fr.Body == nil && fr.File == nil {
				t.Fatal("message without body or file accepted")
			}
			if fr.Body != nil && validateBody(*fr.Body, defaultMaxBody) == nil {
				// What we would send back must decode to the same text.
				m := Message{ID: "1", Username: "u", Body: *fr.Body, Time: time.UnixMilli(1)}
				var back struct{ Body string }
				if err := json.Unmarshal(appendMessageJSON(nil, &m, "", ""), &back); err != nil || back.Body != m.Body {
					t.Fatalf("re-encoded body %q decodes to %q, %v", m.Body, back.Body, err)
				}
			}
		case typeHistory:
			if fr.limit < 1 || fr.limit > maxPageLimit {
				t.Fatalf("history with limit %d accepted", fr.limit)
			}
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
	})
}

func checkName(t *testing.T, name string) {
	t.Helper()
	if name != strings.TrimSpace(name) || name == "" || utf8.RuneCountInString(name) > MaxUsernameRunes {
		t.Fatalf("accepted name %q", name)
	}
	base := false
	for _, r := range name {
		if !allowedNameRune(r) {
			t.Fatalf("accepted name %q with %U", name, r)
		}
		base = base || !unicode.IsMark(r) && r != ' '
	}
	if !base {
		t.Fatalf("accepted name %q of only marks and spaces", name)
	}
	if k := nameKey(name); nameKey(k) != k {
		t.Fatalf("nameKey not idempotent on %q", name)
	}
}

func FuzzUsername(f *testing.F) {
	for _, seed := range [][2]string{
		{"alice", "ALICE"}, {"ſam", "SAM"}, {"K", "k"}, {"straße", "STRASSE"},
		{"a\u200bb", "ab"}, {"\u202eabc", "abc"}, {"  bob ", "bob"}, {"ǅ", "ǆ"},
		{"alice\u034f", "alice"}, {"\u3164", "\uffa0"}, {"\u0301\u0302", "e"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if name, err := ValidateUsername(a); err == nil {
			checkName(t, name)
		}
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		// One canonical form serves uniqueness and comparison alike.
		if got, want := nameKey(a) == nameKey(b), strings.EqualFold(a, b); got != want {
			t.Fatalf("nameKey equal = %v, EqualFold = %v for %q, %q", got, want, a, b)
		}
	})
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", "\"\\/", "\x00\x1f\t\n\r", "<script>&amp;", "\u2028\u2029", "日本語 ✓ 🎉"} {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Errorf("appendJSONString(%q) = %s, decodes to %q, %v", s, b, got, err)
		}
		if strings.ContainsAny(string(b), "<>&\u2028") {
			t.Errorf("appendJSONString(%q) = %s: not safe inside HTML", s, b)
		}
	}
}

func TestBucket(t *testing.T) {
	start := time.Unix(1000, 0)
	b := newBucket(2, 3, start) // 2/s, burst 3
	var got []bool
	at := func(d time.Duration) { got = append(got, b.allow(start.Add(d))) }
	at(0)
	at(0)
	at(0)
	at(0)                      // burst spent
	at(400 * time.Millisecond) // 0.8 token
	at(500 * time.Millisecond) // 1.0 token
	at(500 * time.Millisecond)
	at(10 * time.Second) // refilled, capped at the burst
	at(10 * time.Second)
	at(10 * time.Second)
	at(10 * time.Second)
	want := []bool{true, true, true, false, false, true, false, true, true, true, false}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("allow sequence (-want +got):\n%s", d)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Name != "default" || o.HistorySize != 50 || o.MaxBodyBytes != 4096 || o.RateLimit != 20 ||
		o.RateBurst != 20 || o.ReadTimeout != 60*time.Second || o.SystemName != "system" || o.Logger == nil {
		t.Errorf("zero Options = %+v", o)
	}
	if o := (Options{HistorySize: -1, RateLimit: -1}).withDefaults(); o.HistorySize != 0 || o.RateLimit > 0 {
		t.Errorf("negative values do not turn features off: %+v", o)
	}
	// The default read limit holds the largest body with every byte escaped.
	worst := appendMessageJSON(nil, &Message{ID: "1", Username: strings.Repeat("w", 32), Body: strings.Repeat("\x01", defaultMaxBody)}, "", "")
	if int64(len(worst)) > o.ReadLimit {
		t.Errorf("ReadLimit %d < %d bytes of a legal, fully escaped message", o.ReadLimit, len(worst))
	}
}

func TestFrames(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f := textFrame(make([]byte, n))
		hdr := map[bool]int{true: 2}[n < 126]
		if n >= 126 {
			hdr = 4
		}
		if n > 65535 {
			hdr = 10
		}
		if len(f) != hdr+n || f[0] != 0x81 {
			t.Errorf("textFrame(%d bytes): len %d, first byte %#x", n, len(f), f[0])
		}
	}
	if c := closeFrame(1008, strings.Repeat("é", 100)); len(c) > 2+125 {
		t.Errorf("close frame of %d bytes exceeds the control-frame limit", len(c))
	}
}

// TestQueryParam: queryParam agrees with url.Values.Get, except that a
// malformed first value of the key is reported rather than skipped.
func TestQueryParam(t *testing.T) {
	for _, raw := range []string{
		"", "username=alice", "a=1&username=bob&username=carol", "username=", "username",
		"x=1;username=eve&username=dan", "user%6Eame=ann", "username=%41nn+B", "user%zz=x&username=ok",
		"username=a%3Db&b=2", "&&username=z&", "usernamex=no&username=yes",
	} {
		want := ""
		if v, err := url.ParseQuery(raw); err == nil || v != nil {
			want = v.Get("username")
		}
		if got, ok := queryParam(raw, "username"); got != want || !ok {
			t.Errorf("queryParam(%q) = %q, %v; want %q, true", raw, got, ok, want)
		}
	}
	for _, raw := range []string{"username=%zz&username=ok", "username=%ZZbob", "a=1&username=bob%", "username=a;b", "user%6Eame=%"} {
		if got, ok := queryParam(raw, "username"); ok {
			t.Errorf("queryParam(%q) = %q, true; want malformed", raw, got)
		}
	}
}

// TestUsernameDefaultIgnorable: every Default_Ignorable_Code_Point of the
// Unicode Character Database (testdata/DerivedCoreProperties.txt) is
// refused, alone and within a name.
func TestUsernameDefaultIgnorable(t *testing.T) {
	version, points := readUCDProperty(t, "testdata/DerivedCoreProperties.txt", "Default_Ignorable_Code_Point")
	if version != unicode.Version {
		// Code points the tables of this Go do not know are refused as
		// unassigned, so an older file or older tables still pass.
		t.Logf("the property list is Unicode %s, Go's tables are Unicode %s", version, unicode.Version)
	}
	failed := 0
	for _, r := range points {
		s := string(r)
		for _, name := range []string{"alice" + s, s, s + "alice", "al" + s + "ice", s + s} {
			if got, err := ValidateUsername(name); !errors.Is(err, ErrInvalidName) {
				if failed++; failed <= 20 {
					t.Errorf("ValidateUsername(%+q) = %q, %v; want ErrInvalidName (%U is Default_Ignorable_Code_Point)", name, got, err, r)
				}
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d names with one of %d Default_Ignorable_Code_Points accepted", failed, len(points))
	}
}

// readUCDProperty returns the Unicode version of a file of the Unicode
// Character Database in the format of DerivedCoreProperties.txt, and the
// code points it lists with property prop. It checks the count against
// the file's "# Total code points" line.
func readUCDProperty(t *testing.T, path, prop string) (version string, points []rune) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	total := -1
	inProp := false
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "# DerivedCoreProperties-"); ok && version == "" {
			version = strings.TrimSuffix(v, ".txt")
		}
		if strings.HasPrefix(line, "# Derived Property: ") {
			inProp = line == "# Derived Property: "+prop
		}
		if n, ok := strings.CutPrefix(line, "# Total code points: "); ok && inProp {
			if total, err = strconv.Atoi(n); err != nil {
				t.Fatalf("%s: %q: %v", path, line, err)
			}
		}
		fields, _, _ := strings.Cut(line, "#")
		cps, name, ok := strings.Cut(fields, ";")
		if !ok || strings.TrimSpace(name) != prop {
			continue
		}
		lo, hi, isRange := strings.Cut(strings.TrimSpace(cps), "..")
		if !isRange {
			hi = lo
		}
		first, err1 := strconv.ParseUint(lo, 16, 32)
		last, err2 := strconv.ParseUint(hi, 16, 32)
		if err1 != nil || err2 != nil || first > last || last > unicode.MaxRune {
			t.Fatalf("%s: bad line %q", path, line)
		}
		for r := rune(first); r <= rune(last); r++ {
			points = append(points, r)
		}
	}
	if version == "" || len(points) == 0 || len(points) != total {
		t.Fatalf("%s: version %q, %d code points with %s, the file says %d", path, version, len(points), prop, total)
	}
	return version, points
}

// TestUsernameVisible: names that look like another name or like nothing
// are refused; ordinary names in many scripts are accepted.
func TestUsernameVisible(t *testing.T) {
	refused := []string{
		"alice\u034f",        // COMBINING GRAPHEME JOINER
		"alice\ufe0f",        // VARIATION SELECTOR-16
		"alice\U000e0100",    // VARIATION SELECTOR-17
		"alice\u17b4",        // KHMER VOWEL INHERENT AQ
		"alice\u115f",        // HANGUL CHOSEONG FILLER
		"alice\u1160",        // HANGUL JUNGSEONG FILLER
		"alice\uffa0",        // HALFWIDTH HANGUL FILLER
		"alice\u3164",        // HANGUL FILLER
		"alice\u2800",        // BRAILLE PATTERN BLANK
		"alice\U0001d159",    // MUSICAL SYMBOL NULL NOTEHEAD
		"alice\U00016fe4",    // KHITAN SMALL SCRIPT FILLER
		"\u3164",             // only a filler
		"\u3164 \u3164",      // fillers and a space
		"\u2800\u2800",       // only blank braille
		"\u0301",             // only a combining mark
		"\u0301\u0308\u20dd", // only combining marks
		" \u0301 \u0302 ",    // marks and spaces
		"\u0e31\u0e48",       // Thai marks without a consonant
	}
	for _, name := range refused {
		if got, err := ValidateUsername(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateUsername(%+q) = %q, %v; want ErrInvalidName", name, got, err)
		}
	}
	accepted := []string{
		"alice", "Zoë 2", "e\u0301", "José", "O'Brien", "a-b_c", "日本語", "김민준", "ㄱ",
		"ผู้ใช้", "नमस्ते", "Ελένη", "Дмитрий", "محمد", "🎉", "👍🏽", "+", "42", "⠁", "♥",
	}
	for _, name := range accepted {
		if got, err := ValidateUsername(name); err != nil || got != name {
			t.Errorf("ValidateUsername(%+q) = %q, %v; want it accepted", name, got, err)
		}
	}
}

func TestQuote(t *testing.T) {
	e32 := strings.Repeat("é", maxEchoRunes)
	for in, want := range map[string]string{
		"":                               `""`,
		`say "hi"`:                       `"say \"hi\""`,
		e32:                              `"` + e32 + `"`,
		e32 + "é":                        `"` + e32 + `…"`,
		e32 + strings.Repeat("x", 30000): `"` + e32 + `…"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%.40q) = %s, want %s", in, got, want)
		}
	}
}

// TestUsersSnap: the users snapshot and join events carry the members'
// profiles, escaped as encoding/json would; a fixed snapshot does not
// change when later joins extend the cache; and the welcome's parts make
// the same frames as framing the whole payloads would.
func TestUsersSnap(t *testing.T) {
	type wire struct {
		Type     string             `json:"type"`
		Users    []string           `json:"users"`
		Profiles map[string]Profile `json:"profiles"`
	}
	members := []struct {
		name string
		p    Profile
	}{
		{"alice", Profile{}},
		{`b"<o>b`, Profile{Display: "Bob </script> & \u2028", Avatar: `https://x.example/b?q="<&>"`}},
		{"carol", Profile{Avatar: "http://x.example/c.png"}},
		{"dave", Profile{Display: "Dave"}},
	}
	s := usersSnap{list: []byte(usersStart)}
	var fixed []usersSnap
	var wants []string
	for i, m := range members {
		fixed = append(fixed, s.fixed())
		wants = append(wants, string(s.appendTo(nil)))
		s.add(m.name, m.p)

		var got wire
		if err := json.Unmarshal(s.appendTo(nil), &got); err != nil {
			t.Fatalf("after %d members: %s: %v", i+1, s.appendTo(nil), err)
		}
		want := wire{Type: "users"}
		for _, m := range members[:i+1] {
			want.Users = append(want.Users, m.name)
			if m.p != (Profile{}) {
				if want.Profiles == nil {
					want.Profiles = map[string]Profile{}
				}
				want.Profiles[m.name] = m.p
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("after %d members (-want +got):\n%s", i+1, diff)
		}
		if len(s.appendTo(nil)) != s.size() {
			t.Errorf("size %d, encoded %d bytes", s.size(), len(s.appendTo(nil)))
		}
		if bytes.ContainsAny(s.appendTo(nil), "<>&\u2028") {
			t.Errorf("unescaped HTML or line separator in %s", s.appendTo(nil))
		}
		ev := appendJoinEvent(nil, m.name, m.p)
		var je struct {
			Type, Username, Display, Avatar string
		}
		if err := json.Unmarshal(ev, &je); err != nil || je.Type != "join" || je.Username != m.name ||
			je.Display != m.p.Display || je.Avatar != m.p.Avatar {
			t.Errorf("join event %s: %+v, %v", ev, je, err)
		}
	}
	for i, f := range fixed {
		if got := string(f.appendTo(nil)); got != wants[i] {
			t.Errorf("fixed snapshot %d changed: %s, was %s", i, got, wants[i])
		}
	}
	for _, snap := range []usersSnap{fixed[1], s.fixed()} { // without and with profiles
		for _, hist := range [][]byte{nil, []byte(`{"type":"history","messages":[]}`)} {
			parts, n := welcome(snap, hist)
			want := textFrame(snap.appendTo(nil))
			if hist != nil {
				want = append(want, textFrame(hist)...)
			}
			if got := bytes.Join(parts[:n], nil); !bytes.Equal(got, want) {
				t.Errorf("welcome(%s, %s) = %q, want %q", snap.appendTo(nil), hist, got, want)
			}
		}
	}
}

func FuzzFileName(f *testing.F) {
	for _, seed := range []string{"cat.png", "../../etc/passwd", "a/b", `a\b`, "..", " x ", "cat\u202egnp.exe", "a\x00b", "\xff", "résumé (final).pdf"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := validateFileName(name)
		if err != nil {
			if got != "" || err.Error() == "" {
				t.Fatalf("error %v with name %q", err, got)
			}
			return
		}
		if got == "" || got != strings.TrimSpace(got) || got == "." || got == ".." || strings.ContainsAny(got, `/\`) ||
			utf8.RuneCountInString(got) > MaxFileNameRunes || !strings.Contains(name, got) {
			t.Fatalf("accepted %q as %q", name, got)
		}
		for _, r := range got {
			if !allowedNameRune(r) {
				t.Fatalf("accepted %q with %U", got, r)
			}
		}
	})
}
