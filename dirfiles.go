package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DirFiles returns a [FileStore] that keeps files in the directory dir,
// which it creates (mode 0700) on the first upload if need be. Each file
// is two files of dir named by its ID, 26 random characters (128 bits,
// [rand.Text]): the content, and its [FileMeta] as JSON in ID.json, both
// mode 0600. Nothing a client sends becomes part of a path. A file is
// written to a temporary file, synced and renamed into place, content
// first and metadata last, so that a file exists once both are complete;
// an upload cut off, too large or interrupted by a crash leaves at most a
// temporary ".upload-*" file behind, never a file of the room.
//
// DirFiles deletes nothing: files stay as long as the directory, as the
// room's stored history does. Hubs in several processes may share a
// directory (e.g. with a [Broker], so that every hub serves every file
// of the room).
func DirFiles(dir string) FileStore { return &dirFiles{dir: dir} }

type dirFiles struct{ dir string }

// dirMeta is a FileMeta as DirFiles writes it beside the content.
type dirMeta struct {
	Name  string    `json:"name"`
	Size  int64     `json:"size"`
	Type  string    `json:"type"`
	Room  string    `json:"room"`
	Owner string    `json:"owner"`
	Time  time.Time `json:"time"`
}

// dirIDLen is the length of the IDs DirFiles issues: rand.Text's.
const dirIDLen = 26

// dirID reports whether id is one that DirFiles may have issued:
// rand.Text's alphabet, upper case only, which is safe as a file name
// everywhere, on case-insensitive file systems too.
func dirID(id string) bool {
	if len(id) != dirIDLen {
		return false
	}
	for i := range len(id) {
		if c := id[i]; !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

func (d *dirFiles) Put(ctx context.Context, meta FileMeta, r io.Reader) (_ FileMeta, err error) {
	if err := ctx.Err(); err != nil {
		return FileMeta{}, err
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return FileMeta{}, fmt.Errorf("chat: files directory: %w", err)
	}
	var tmps []string
	defer func() {
		if err != nil {
			for _, name := range tmps {
				os.Remove(name)
			}
		}
	}()
	write := func(r io.Reader) (int64, error) {
		f, err := os.CreateTemp(d.dir, ".upload-*")
		if err != nil {
			return 0, err
		}
		tmps = append(tmps, f.Name())
		n, err := io.Copy(f, ctxReader{ctx, r})
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return n, err
	}
	n, err := write(r)
	if err != nil {
		return FileMeta{}, fmt.Errorf("chat: storing a file: %w", err)
	}
	meta.ID, meta.Size = rand.Text(), n
	b, err := json.Marshal(dirMeta{meta.Name, meta.Size, meta.Type, meta.Room, meta.Owner, meta.Time})
	if err != nil {
		return FileMeta{}, err
	}
	if _, err = write(bytes.NewReader(b)); err != nil {
		return FileMeta{}, fmt.Errorf("chat: storing a file: %w", err)
	}
	data := filepath.Join(d.dir, meta.ID)
	if err = os.Rename(tmps[0], data); err != nil {
		return FileMeta{}, fmt.Errorf("chat: storing a file: %w", err)
	}
	tmps[0] = data
	if err = os.Rename(tmps[1], data+".json"); err != nil {
		return FileMeta{}, fmt.Errorf("chat: storing a file: %w", err)
	}
	return meta, nil
}

func (d *dirFiles) Open(ctx context.Context, id string) (io.ReadSeekCloser, FileMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, FileMeta{}, err
	}
	if !dirID(id) {
		return nil, FileMeta{}, ErrNoSuchFile
	}
	path := filepath.Join(d.dir, id)
	b, err := os.ReadFile(path + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, FileMeta{}, ErrNoSuchFile
	}
	if err != nil {
		return nil, FileMeta{}, fmt.Errorf("chat: reading a file's metadata: %w", err)
	}
	var m dirMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, FileMeta{}, fmt.Errorf("chat: reading a file's metadata: %s: %w", id, err)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, FileMeta{}, ErrNoSuchFile
	}
	if err != nil {
		return nil, FileMeta{}, fmt.Errorf("chat: opening a file: %w", err)
	}
	return f, FileMeta{
		File: File{ID: id, Name: m.Name, Size: m.Size, Type: m.Type},
		Room: m.Room, Owner: m.Owner, Time: m.Time,
	}, nil
}

// ctxReader reads from r until ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
