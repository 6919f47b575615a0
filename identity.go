package chat

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// An Identity is who a connection is: its username and, when
// Options.Authenticate says so, more. Display and Avatar are public: every
// member of the room receives them, in the join event and the users
// snapshot (see [Profile]). Roles and Claims are private: they never leave
// the process, and only the hooks see them.
//
// Every part has a size cap, so that an identity takes at most about 5 KB:
// Name those of [ValidateUsername], Display [MaxDisplayRunes] characters,
// Avatar [MaxAvatarBytes] bytes, and Roles and Claims together
// [MaxClaims] entries and [MaxClaimsBytes] bytes. An identity from
// Authenticate over a cap, or otherwise invalid, is refused: the upgrade
// gets 401 and a line is logged at Warn. Nothing is ever cut to fit.
// [ValidateIdentity] applies the same rules, for a sign-in page that
// wants to refuse bad input before it issues a token.
//
// The hub keeps the identity of a member's first connection for the
// member's life: later connections of the same name (other tabs, other
// devices) do not change its public part. The hooks receive identities by
// value; treat Roles and Claims as read-only.
type Identity struct {
	// Name is the username: unique in the room under [NameKey], checked
	// by [ValidateUsername].
	Name string

	// Display is a name to show instead of Name, e.g. "Alice Liddell";
	// empty for none. It is trimmed of surrounding white space and
	// checked as names are (the characters allowed, nothing invisible),
	// but it need not be unique, and may be up to [MaxDisplayRunes]
	// characters long. Public.
	Display string

	// Avatar is the absolute http or https URL of a picture of the member,
	// e.g. "https://example.com/a/alice.png"; empty for none. At most
	// [MaxAvatarBytes] bytes of printable ASCII (percent-encode the rest),
	// without user information ("user@"). Public.
	Avatar string

	// Roles are the member's roles, e.g. "admin", for the hooks to act
	// on. Private.
	Roles []string

	// Claims are further facts about the member, e.g. from a token, for
	// the hooks to act on. Private.
	Claims map[string]string
}

// A Profile is the public part of an [Identity] besides its name: what the
// room's clients receive, as "display" and "avatar", in a member's join
// event and in the users snapshot. Both fields are optional.
type Profile struct {
	Display string
	Avatar  string
}

// Profile returns the public part of id besides its name.
func (id Identity) Profile() Profile { return Profile{Display: id.Display, Avatar: id.Avatar} }

// Size caps of an [Identity].
const (
	// MaxDisplayRunes is the longest Identity.Display, in characters
	// (runes), after surrounding white space is trimmed.
	MaxDisplayRunes = 64
	// MaxAvatarBytes is the longest Identity.Avatar, in bytes.
	MaxAvatarBytes = 512
	// MaxClaims is the most entries that Identity.Roles and
	// Identity.Claims hold together.
	MaxClaims = 64
	// MaxClaimsBytes caps the text of Identity.Roles and Identity.Claims
	// together (every role, key and value), in bytes.
	MaxClaimsBytes = 4096
)

// ValidateIdentity checks id as [Options.Authenticate]'s result is
// checked. It returns id with Name and Display trimmed of surrounding
// white space, or an error that says what is wrong: one wrapping
// [ErrInvalidName] for the name (see [ValidateUsername]), or one wrapping
// [ErrInvalidIdentity] for the rest. The error's text never repeats the
// values it checks, only their sizes and the first offending character.
func ValidateIdentity(id Identity) (Identity, error) {
	name, err := ValidateUsername(id.Name)
	if err != nil {
		return Identity{}, err
	}
	id.Name = name
	return id.checkExtras()
}

// checkExtras checks every part of id but the name, which the hub
// validates later (its errors are answered after the upgrade), and
// returns id with Display trimmed.
func (id Identity) checkExtras() (Identity, error) {
	var err error
	if id.Display, err = validateDisplay(id.Display); err != nil {
		return Identity{}, err
	}
	if err := validateAvatar(id.Avatar); err != nil {
		return Identity{}, err
	}
	n, size := len(id.Roles)+len(id.Claims), 0
	for _, r := range id.Roles {
		size += len(r)
	}
	for k, v := range id.Claims {
		size += len(k) + len(v)
	}
	switch {
	case n > MaxClaims:
		return Identity{}, errorf(ErrInvalidIdentity, "invalid identity: %d roles and claims, at most %d allowed", n, MaxClaims)
	case size > MaxClaimsBytes:
		return Identity{}, errorf(ErrInvalidIdentity, "invalid identity: roles and claims of %d bytes, at most %d allowed", size, MaxClaimsBytes)
	}
	return id, nil
}

// clone returns id with Roles and Claims of its own, so that the caller of
// Authenticate cannot change what the hub holds.
func (id Identity) clone() Identity {
	id.Roles = slices.Clone(id.Roles)
	id.Claims = maps.Clone(id.Claims)
	return id
}

// bare reports whether id has nothing but a name.
func (id *Identity) bare() bool {
	return id.Display == "" && id.Avatar == "" && len(id.Roles) == 0 && len(id.Claims) == 0
}

// validateDisplay trims a display name and checks it as names are
// checked, with a cap of its own; empty is valid (no display name).
func validateDisplay(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errorf(ErrInvalidIdentity, "invalid display name: not valid UTF-8")
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if n := utf8.RuneCountInString(s); n > MaxDisplayRunes {
		return "", errorf(ErrInvalidIdentity, "invalid display name: %d characters, at most %d allowed", n, MaxDisplayRunes)
	}
	base := false
	for _, r := range s {
		if !allowedNameRune(r) {
			what := "character"
			if invisible(r) {
				what = "invisible character"
			}
			return "", errorf(ErrInvalidIdentity, "invalid display name: %s %U not allowed", what, r)
		}
		base = base || unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S)
	}
	if !base {
		return "", errorf(ErrInvalidIdentity, "invalid display name: no letter, number, punctuation mark or symbol")
	}
	return s, nil
}

// validateAvatar checks an avatar URL; empty is valid (no avatar).
func validateAvatar(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxAvatarBytes {
		return errorf(ErrInvalidIdentity, "invalid avatar: %d bytes, at most %d allowed", len(s), MaxAvatarBytes)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return errorf(ErrInvalidIdentity, "invalid avatar: byte %#02x at %d: not printable ASCII (percent-encode it)", c, i)
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errorf(ErrInvalidIdentity, "invalid avatar: not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errorf(ErrInvalidIdentity, "invalid avatar: want an http or https URL")
	case u.Host == "":
		return errorf(ErrInvalidIdentity, "invalid avatar: no host")
	case u.User != nil:
		return errorf(ErrInvalidIdentity, "invalid avatar: user information (user@) not allowed")
	}
	return nil
}
