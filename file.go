package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// A File is an uploaded file as a message carries it (Message.File): on
// the wire the object "file" with "id", "name", "size", "type" and "url".
type File struct {
	// ID names the file in its [FileStore]: at most [MaxFileIDBytes]
	// bytes of ASCII letters, digits, '-' and '_'.
	ID string
	// Name is the name the uploader gave it, for display only: files are
	// stored under their ID, never under this name (see
	// [Hub.FilesHandler] for its rules).
	Name string
	// Size is its length in bytes.
	Size int64
	// Type is its media type as the server sniffed it from the content
	// ([http.DetectContentType]), never as the client claimed it, e.g.
	// "image/png" or "text/plain; charset=utf-8".
	Type string
}

// Inline reports whether f is an image that is served inline, which
// clients show as a preview: a PNG, JPEG, GIF or WebP image. Anything
// else, SVG and HTML included, is served as an attachment, to download.
func (f *File) Inline() bool { return inlineType(f.Type) }

// inlineType reports whether files of the media type typ are served
// inline: the raster image types that http.DetectContentType reports,
// which browsers only ever show as pictures.
func inlineType(typ string) bool {
	switch typ {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return true
	}
	return false
}

// FileMeta is what a [FileStore] keeps beside a file's content: the
// [File] as messages carry it, and who uploaded it to which room when.
type FileMeta struct {
	File
	// Room is the name of the room (Options.Name) it was uploaded to.
	Room string
	// Owner is the username of the member who uploaded it. Only the owner
	// may attach it to a message, and only in Room.
	Owner string
	// Time is when the upload began.
	Time time.Time
}

// A FileStore keeps the files that members upload (see Options.Files and
// [Hub.FilesHandler]): the content of each and its [FileMeta]. [DirFiles]
// keeps them in a directory on disk.
//
// Implementations must be safe for concurrent use. Files are never
// changed after Put; the hub never deletes them, so that the files of a
// room's stored messages stay available with its history.
type FileStore interface {
	// Put stores the content read from r, until EOF, with meta, and
	// returns meta with its ID and Size set: a new, unguessable ID (one
	// that follows the rules of File.ID; the hub checks) and the number
	// of bytes read. meta.ID and meta.Size are ignored. If r fails (the
	// upload was cut off or went over the size cap) or ctx ends, Put
	// stores nothing and returns an error that wraps r's or ctx's.
	Put(ctx context.Context, meta FileMeta, r io.Reader) (FileMeta, error)

	// Open returns the content and meta of the file with id, or an error
	// wrapping [ErrNoSuchFile] if there is none. id comes from clients:
	// any string, which Open must not trust (a path, say). The caller
	// closes the content.
	Open(ctx context.Context, id string) (io.ReadSeekCloser, FileMeta, error)
}

// ErrNoSuchFile means a [FileStore] has no file of that ID, or, for an
// attachment, none that the member uploaded to the room.
var ErrNoSuchFile = errors.New("chat: no such file")

// Limits of uploaded files.
const (
	// MaxFileIDBytes is the longest File.ID, in bytes.
	MaxFileIDBytes = 64
	// MaxFileNameRunes is the longest file name an upload may give, in
	// characters (runes), after surrounding white space is trimmed.
	MaxFileNameRunes = 128
)

// validFileID reports whether id follows the rules of File.ID.
func validFileID(id string) bool {
	if id == "" || len(id) > MaxFileIDBytes {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// validateFileName trims white space from the ends of name and checks the
// result as the name of an upload. It never cuts or rewrites a name: a
// name with a path in it, or with anything invisible, is refused, so that
// what the room sees is what the uploader sent.
func validateFileName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", errors.New("invalid file name: not valid UTF-8")
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", errors.New(`missing file name: give it as ?name=`)
	case name == "." || name == "..":
		return "", errors.New("invalid file name: " + quote(name))
	case strings.ContainsAny(name, `/\`):
		return "", errors.New(`invalid file name: no paths, "/" and "\" are not allowed`)
	}
	if n := utf8.RuneCountInString(name); n > MaxFileNameRunes {
		return "", fmt.Errorf("invalid file name: %d characters, at most %d allowed", n, MaxFileNameRunes)
	}
	for _, r := range name {
		if !allowedNameRune(r) {
			what := "character"
			if invisible(r) {
				what = "invisible character"
			}
			return "", fmt.Errorf("invalid file name: %s %U not allowed", what, r)
		}
	}
	return name, nil
}
