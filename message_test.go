package chat

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func FuzzDecodeClientFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"join","username":"alice"}`,
		`{"type":"message","body":"Hello"}`,
		`{"type":"message","body":"psst","to":"bob"}`,
		`{"type":"message","body":null}`,
		`{"type":"message","body":"a"} {"type":"message"}`,
		`{"type":"shout"}`,
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
			if fr != (clientFrame{}) {
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
			if fr.Body == nil {
				t.Fatal("message without body accepted")
			}
			if validateBody(*fr.Body, defaultMaxBody) == nil {
				// What we would send back must decode to the same text.
				m := Message{ID: "1", Username: "u", Body: *fr.Body, Time: time.UnixMilli(1)}
				var back struct{ Body string }
				if err := json.Unmarshal(appendMessageJSON(nil, &m), &back); err != nil || back.Body != m.Body {
					t.Fatalf("re-encoded body %q decodes to %q, %v", m.Body, back.Body, err)
				}
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
	for _, r := range name {
		if !allowedNameRune(r) {
			t.Fatalf("accepted name %q with %U", name, r)
		}
	}
	if k := nameKey(name); nameKey(k) != k {
		t.Fatalf("nameKey not idempotent on %q", name)
	}
}

func FuzzUsername(f *testing.F) {
	for _, seed := range [][2]string{
		{"alice", "ALICE"}, {"ſam", "SAM"}, {"K", "k"}, {"straße", "STRASSE"},
		{"a\u200bb", "ab"}, {"\u202eabc", "abc"}, {"  bob ", "bob"}, {"ǅ", "ǆ"},
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
	worst := appendMessageJSON(nil, &Message{ID: "1", Username: strings.Repeat("w", 32), Body: strings.Repeat("\x01", defaultMaxBody)})
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

// TestQueryParam: queryParam agrees with url.Values.Get.
func TestQueryParam(t *testing.T) {
	for _, raw := range []string{
		"", "username=alice", "a=1&username=bob&username=carol", "username=", "username",
		"x=1;username=eve&username=dan", "user%6Eame=ann", "username=%41nn+B", "username=%zz&username=ok",
		"username=a%3Db&b=2", "&&username=z&", "usernamex=no&username=yes",
	} {
		want := ""
		if v, err := url.ParseQuery(raw); err == nil || v != nil {
			want = v.Get("username")
		}
		if got := queryParam(raw, "username"); got != want {
			t.Errorf("queryParam(%q) = %q, want %q", raw, got, want)
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
