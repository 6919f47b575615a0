package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// UploadTokenHeader is the request header that carries a connection's
// upload token (see [Hub.FilesHandler]).
const UploadTokenHeader = "Hubchat-Upload-Token"

// fileCSP is the Content-Security-Policy of every file response: a file
// opened on its own can load nothing and run nothing, whatever it is.
const fileCSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"

// FilesHandler returns the handler of the room's files: members upload
// files to it, and everyone downloads them from it. Mount it on a pattern
// ending in "/" at Options.FilesURL relative to the [Server], by default
// "files/" beside it:
//
//	mux.Handle("/ws", chat.NewServer(hub))
//	mux.Handle("/files/", hub.FilesHandler())
//
// It looks at the last segment of the path only, so it works under any
// prefix and behind [http.StripPrefix]. Without Options.Files it answers
// 404 to everything. It answers to the Hosts of Options.AllowedHosts
// only (403 otherwise), as the Server does.
//
// # Upload
//
// POST to the mount point ("files/") with the file's content as the
// request body, its name in ?name= (percent-encoded) and the connection's
// upload token in the [UploadTokenHeader] header. Every connection of a
// member receives its own token when it joins, in a frame of its own:
//
//	{"type":"upload","url":"files/","token":"…","max":10485760}
//
// ("url" is Options.FilesURL, "max" is Options.MaxUploadBytes). A token
// is good while its connection is open. Without a token, and with
// Options.Authenticate, the request's own identity (Authenticate's
// result for the upload request) must be a member of the room. The
// answer is 201 Created with the file's JSON object, as messages carry
// it, {"id":…,"name":…,"size":…,"type":…,"url":…}; the member then sends
// {"type":"message","body":"…","file":ID} to share it. Every error is a
// JSON object {"error":"…"}; nothing is stored and no one else notices:
//
//   - 401 Unauthorized: no token, or one that is not (or no longer) a
//     connection's; or Authenticate's error.
//   - 403 Forbidden: a Host or Origin not allowed (Options.AllowedHosts,
//     Options.OriginPatterns, as for WebSocket upgrades), or an
//     authenticated identity that is not a member of the room.
//   - 400 Bad Request: a name that breaks the rules below, or an empty
//     file.
//   - 413 Request Entity Too Large: more than Options.MaxUploadBytes.
//   - 429 Too Many Requests: over the member's upload rate
//     (Options.UploadRate), with a Retry-After header.
//   - 503 Service Unavailable: the hub has shut down.
//
// A name is trimmed of surrounding white space and must then be 1 to
// [MaxFileNameRunes] characters, without "/" or "\" (no paths), not "."
// or "..", and of the characters allowed in usernames (see
// [ValidateUsername]; spaces are allowed): no control characters, nothing
// invisible, no bidi controls that would make "gnp.exe" look like
// "exe.png". Names are refused, never cut or rewritten; they are for
// display only, since files are stored under their IDs.
//
// The content type is sniffed from the first 512 bytes of the content
// ([http.DetectContentType]); the request's Content-Type is ignored.
//
// Browsers on other origins that Options.OriginPatterns allows (the
// multiport example's page on another port, say) may upload: the
// handler answers CORS preflight requests for them.
//
// # Download
//
// GET (or HEAD) the mount point + ID, the "url" of the file's object.
// Anyone who has the URL may download the file: IDs are unguessable
// (DirFiles' have 128 random bits), and a file in a private message is
// as private as its URL. A file of another room of the same FileStore,
// or an unknown ID, gets 404. PNG, JPEG, GIF and WebP images are served
// inline with their type; everything else, SVG and HTML included, as an
// attachment (Content-Disposition: attachment, with the file's name) of
// type application/octet-stream, so that a browser downloads it and never
// renders it. Every file response carries X-Content-Type-Options: nosniff
// and a Content-Security-Policy that allows no script and sandboxes the
// file. Files never change, so responses may be cached for a year; Range
// requests are served.
//
// The http.Server's ReadTimeout, if set, bounds the whole upload: leave
// time for Options.MaxUploadBytes at your users' speeds, or extend the
// read deadline of uploads with [http.ResponseController] in a wrapper,
// as the example programs do.
func (h *Hub) FilesHandler() http.Handler { return filesHandler{h} }

type filesHandler struct{ h *Hub }

func (fh filesHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := fh.h
	if h.opts.Files == nil {
		writeJSONError(w, http.StatusNotFound, "file sharing is off")
		return
	}
	if !h.checkHost(r) {
		writeJSONError(w, http.StatusForbidden, "host "+quote(r.Host)+" not allowed")
		return
	}
	id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	switch {
	case r.Method == http.MethodOptions:
		h.preflight(w, r)
	case r.Method == http.MethodPost && id == "":
		h.upload(w, r)
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && id != "":
		h.download(w, r, id)
	case id == "":
		w.Header().Set("Allow", "POST, OPTIONS")
		writeJSONError(w, http.StatusMethodNotAllowed, "method "+quote(r.Method)+" not allowed: POST a file here")
	default:
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, "method "+quote(r.Method)+" not allowed: GET a file here")
	}
}

// preflight answers a CORS preflight request for an upload from an
// allowed origin.
func (h *Hub) preflight(w http.ResponseWriter, r *http.Request) {
	if !h.cors(w, r) || r.Header.Get("Access-Control-Request-Method") != http.MethodPost {
		writeJSONError(w, http.StatusForbidden, "cross-origin request refused")
		return
	}
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", http.MethodPost)
	hd.Set("Access-Control-Allow-Headers", "Content-Type, "+UploadTokenHeader)
	hd.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// cors reports whether the request's origin may upload, and, for an
// allowed Origin, lets the browser read the response.
func (h *Hub) cors(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	if !h.checkOrigin(r) {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		w.Header().Set("Access-Control-Allow-Origin", o)
	}
	return true
}

// upload stores the request's body as a file of the member it comes from.
func (h *Hub) upload(w http.ResponseWriter, r *http.Request) {
	if !h.cors(w, r) {
		writeJSONError(w, http.StatusForbidden, "origin "+quote(r.Header.Get("Origin"))+" not allowed")
		return
	}
	owner, status, err := h.uploader(r)
	if err != nil {
		writeJSONError(w, status, publicText(err))
		return
	}
	name, err := validateFileName(r.URL.Query().Get("name"))
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit := h.opts.MaxUploadBytes
	tooBig := fmt.Sprintf("file too large: at most %d bytes", limit)
	if r.ContentLength > limit {
		writeJSONError(w, http.StatusRequestEntityTooLarge, tooBig)
		return
	}
	// What can be refused without reading the body has been: now the
	// upload counts against the member's rate.
	if status, err := h.spendUpload(owner); err != nil {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(1/h.opts.UploadRate))))
		}
		writeJSONError(w, status, publicText(err))
		return
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var head [512]byte
	n, err := io.ReadFull(body, head[:])
	switch {
	case errors.Is(err, io.EOF):
		writeJSONError(w, http.StatusBadRequest, "empty file")
		return
	case errors.Is(err, io.ErrUnexpectedEOF):
	case err != nil:
		h.uploadFailed(w, r, err, tooBig)
		return
	}
	meta := FileMeta{
		File: File{Name: name, Type: http.DetectContentType(head[:n])},
		Room: h.opts.Name, Owner: owner, Time: time.Now(),
	}
	rd := io.Reader(bytes.NewReader(head[:n]))
	if n == len(head) {
		rd = io.MultiReader(rd, body)
	}
	meta, err = h.opts.Files.Put(r.Context(), meta, rd)
	if err != nil {
		h.uploadFailed(w, r, err, tooBig)
		return
	}
	if !validFileID(meta.ID) {
		h.met.storeErrors.Add(1)
		h.log.Warn("chat: the FileStore issued an invalid file id", "id", clip(meta.ID))
		writeJSONError(w, http.StatusInternalServerError, "cannot store the file")
		return
	}
	h.log.Debug("chat: upload", "user", owner, "id", meta.ID, "size", meta.Size, "type", meta.Type)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(appendFileJSON(nil, &meta.File, h.opts.FilesURL))
}

// uploadFailed answers an upload whose body could not be read or stored
// (err), with tooBig if it was too large.
func (h *Hub) uploadFailed(w http.ResponseWriter, r *http.Request, err error, tooBig string) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeJSONError(w, http.StatusRequestEntityTooLarge, tooBig)
		return
	}
	if r.Context().Err() == nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		h.met.storeErrors.Add(1)
		h.log.Warn("chat: cannot store an upload", "err", err)
		writeJSONError(w, http.StatusInternalServerError, "cannot store the file")
		return
	}
	writeJSONError(w, http.StatusBadRequest, "upload cut off")
}

// uploader returns the name of the member an upload comes from, from its
// token or, without one, from Options.Authenticate. On failure it returns
// the HTTP status and an error to answer with.
func (h *Hub) uploader(r *http.Request) (string, int, error) {
	var name string
	tok := r.Header.Get(UploadTokenHeader)
	switch {
	case tok != "":
	case h.opts.Authenticate != nil:
		id, err := h.opts.Authenticate(r)
		if err != nil {
			return "", http.StatusUnauthorized, err
		}
		name = id.Name
	default:
		return "", http.StatusUnauthorized, fmt.Errorf("missing upload token: join the room, then send the token of the connection's upload frame in the %s header", UploadTokenHeader)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return "", http.StatusServiceUnavailable, ErrHubClosed
	}
	var m *member
	if tok != "" {
		c := h.tokens[tok]
		if c == nil || c.ending.Load() || c.member == nil || h.members[c.member.key] != c.member {
			return "", http.StatusUnauthorized, errors.New("invalid upload token: not that of a connection of the room (it ends with its connection)")
		}
		m = c.member
	} else if m = h.members[nameKey(strings.TrimSpace(name))]; m == nil {
		return "", http.StatusForbidden, fmt.Errorf("%s is not a member of the room: join it first", quote(name))
	}
	return m.name, 0, nil
}

// spendUpload spends a token of the upload rate of the member name, the
// uploader, or returns the HTTP status and an error to answer with.
func (h *Hub) spendUpload(name string) (int, error) {
	if h.opts.UploadRate <= 0 {
		return 0, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.members[nameKey(name)]
	if m == nil {
		return http.StatusUnauthorized, errors.New("not a member of the room any more")
	}
	now := time.Now()
	if m.uploads == nil {
		m.uploads = newBucket(h.opts.UploadRate, h.opts.UploadBurst, now)
	}
	if !m.uploads.allow(now) {
		return http.StatusTooManyRequests, fmt.Errorf(errTextUploadRate, h.opts.UploadRate*60)
	}
	return 0, nil
}

// download serves the file with id.
func (h *Hub) download(w http.ResponseWriter, r *http.Request, id string) {
	if !validFileID(id) {
		writeJSONError(w, http.StatusNotFound, "no such file")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.WriteTimeout)
	content, meta, err := h.opts.Files.Open(ctx, id)
	cancel()
	if err == nil && (meta.Room != h.opts.Name || meta.ID != id) {
		content.Close()
		err = ErrNoSuchFile
	}
	if errors.Is(err, ErrNoSuchFile) {
		writeJSONError(w, http.StatusNotFound, "no such file")
		return
	}
	if err != nil {
		h.met.storeErrors.Add(1)
		h.log.Warn("chat: cannot open a file", "id", id, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "cannot read the file")
		return
	}
	defer content.Close()
	hd := w.Header()
	disp, typ := "attachment", "application/octet-stream"
	if meta.Inline() {
		disp, typ = "inline", meta.Type
	}
	hd.Set("Content-Type", typ)
	hd.Set("Content-Disposition", contentDisposition(disp, meta.Name))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", fileCSP)
	hd.Set("Cache-Control", "private, max-age=31536000, immutable")
	hd.Set("ETag", strconv.Quote(id))
	http.ServeContent(w, r, "", meta.Time, content)
}

// contentDisposition returns a Content-Disposition header of type disp
// for a file named name; a name mime cannot encode is left out.
func contentDisposition(disp, name string) string {
	if v := mime.FormatMediaType(disp, map[string]string{"filename": name}); v != "" {
		return v
	}
	return disp
}

// writeJSONError answers with status and {"error":text}.
func writeJSONError(w http.ResponseWriter, status int, text string) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	b := append([]byte(nil), `{"error":`...)
	b = appendJSONString(b, text)
	_, _ = w.Write(append(b, "}\n"...))
}

// newUploadToken returns a fresh upload token.
func newUploadToken() string { return rand.Text() }

// grantUploadLocked gives c, a member's connection that has just joined,
// an upload token, and returns the upload frame that tells it the token.
func (h *Hub) grantUploadLocked(c *client) []byte {
	c.token = newUploadToken()
	h.tokens[c.token] = c
	b := append([]byte(nil), `{"type":"upload","url":`...)
	b = appendJSONString(b, h.opts.FilesURL)
	b = append(b, `,"token":`...)
	b = appendJSONString(b, c.token)
	b = append(b, `,"max":`...)
	b = strconv.AppendInt(b, h.opts.MaxUploadBytes, 10)
	return append(b, '}')
}

// attachment returns the file with id for a message from the member
// name: one it uploaded to this room. Anything else, an unknown ID or
// someone else's file, gets the same error, wrapping ErrNoSuchFile.
func (h *Hub) attachment(name, id string) (*File, error) {
	if h.opts.Files == nil {
		return nil, rejected(rejectFile, errors.New(errTextFilesOff))
	}
	notFound := errorf(ErrNoSuchFile, errTextNoFile, quote(id))
	if !validFileID(id) {
		return nil, notFound
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.WriteTimeout)
	defer cancel()
	content, meta, err := h.opts.Files.Open(ctx, id)
	if errors.Is(err, ErrNoSuchFile) {
		return nil, notFound
	}
	if err != nil {
		if h.ctx.Err() == nil {
			h.met.storeErrors.Add(1)
			h.log.Warn("chat: cannot open a file for a message", "id", id, "err", err)
		}
		return nil, rejected(rejectUnavailable, errors.New(errTextFilesUnavailable))
	}
	content.Close()
	if meta.ID != id || meta.Room != h.opts.Name || nameKey(meta.Owner) != nameKey(name) {
		return nil, notFound
	}
	return &meta.File, nil
}
