// chat.js is the browser client of the webui Go package
// (github.com/hubchat/chat/webui), shared by its default page and by any
// page served with webui.PageHandler, such as the multiport example's.
//
// It builds a chat panel (status, message log, users list, username prompt
// and send box) and speaks the hubchat wire protocol: one JSON object per
// WebSocket text frame, see the chat package documentation.
//
// Text from the network is only ever inserted with textContent, never as
// HTML.
//
// The panel forgets nothing it can ask for again. It remembers the ID of
// the last message it showed, one per server, and reconnects (by itself,
// with back-off) with ?since= that ID: the server then sends exactly the
// messages missed meanwhile, shown under a line "n missed messages", or,
// if it cannot reach back that far, its latest history, shown under a line
// "Some messages were missed". Scrolling to the top of the log loads the
// page of messages before the oldest one shown, one page at a time, until
// an empty page: "Beginning of the conversation".
//
// Every element with a data-hubchat-ws attribute (the WebSocket URL, may be
// relative to the page, e.g. "ws" or "/ws"; data-hubchat-title names the
// room) gets a panel that connects on load. With data-hubchat-auth the
// server knows who the user is (chat.Options.Authenticate, from a cookie):
// the panel connects without asking for a username. Pages that need more
// control use window.HubChat.Chat directly, as the multiport example's
// multiport.js and the jwt example's jwt.js do.
//
// Members with a public profile (display name, avatar URL; see
// chat.Identity) are shown by their display name, followed by their
// username, which is what identifies them: display names need not be
// unique. An avatar is shown if the page's Content-Security-Policy allows
// its URL (webui's allows https: images), else the initials.
//
// Files: when the server shares files (chat.Options.Files), each
// connection receives an upload frame with its upload token, and the
// composer gets an attach button (a file may also be pasted into the
// message box or dropped on the panel). The file is uploaded at once,
// with its progress shown, and goes with the next message sent (the text
// may be empty). PNG, JPEG, GIF and WebP images show as previews (<img>
// with the file's URL, loaded lazily), other files as download links with
// their name and size.
//
// Typing: while the user types a message (not a /command), the panel
// sends {"type":"typing"} at most every 2 s, and it shows who else is
// typing under the log ("alice is typing…", "alice and bob are typing…",
// "Several people are typing…"), each name until that member's message
// arrives, it leaves, or 4 s pass without a new notice.
//
// Messages from elsewhere carry an "origin" (another server of a bridged
// room, or a private message from another server): the panel tags them
// with "@origin". A private message to another server is written
// "/msg bob@8082 text".
(function () {
  'use strict';

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  const MAX_LOG_ITEMS = 500; // beyond this, the oldest lines go while the log is scrolled to its end
  const PAGE_SIZE = 50; // messages asked for per page of older messages
  const TOP_PX = 64; // the log is "at the top" this close to it: load the page before
  const UPLOAD_HEADER = 'Hubchat-Upload-Token'; // chat.UploadTokenHeader
  const INLINE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp']; // chat.File.Inline
  const TYPING_SEND_MS = 2000; // at most one typing frame this often (the server forwards one per 1.5 s)
  const TYPING_SHOW_MS = 4000; // a member shows as typing this long after its last notice

  let nextID = 0;

  // el creates an element. props may hold "class", "text" (set as
  // textContent) and any attribute; children are nodes or strings (text).
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c); // append() inserts strings as text
    }
    return e;
  }

  // initials returns up to two letters for an avatar: the first letters of
  // the first two words, or the first two letters of a single word.
  function initials(name) {
    const words = String(name).trim().split(/[\s._-]+/).filter(Boolean);
    if (words.length === 0) return '?';
    const first = Array.from(words[0]);
    const letters = words.length > 1 ? [first[0], Array.from(words[1])[0]] : first.slice(0, 2);
    return letters.join('').toUpperCase();
  }

  // avatarColor derives a stable colour from a name (FNV-1a over its code
  // points, as a hue), of the same lightness whatever the hue (OKLCH) and
  // dark enough for white initials to pass WCAG AA (4.5:1).
  function avatarColor(name) {
    let h = 0x811c9dc5;
    for (const ch of String(name).toLowerCase()) {
      h ^= ch.codePointAt(0);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return 'oklch(50% 0.13 ' + (h % 360) + ')';
  }

  // avatar returns a member's avatar: the picture at url, if any, over
  // initials of label coloured by name, which show if it fails to load.
  function avatar(name, label, url) {
    const a = el('span', { class: 'avatar', 'aria-hidden': 'true', text: initials(label || name) });
    a.style.backgroundColor = avatarColor(name); // CSSOM: allowed by the page's CSP
    if (url && /^https?:\/\//i.test(url)) {
      const img = el('img', { alt: '', src: url, referrerpolicy: 'no-referrer', loading: 'lazy', decoding: 'async' });
      img.addEventListener('error', () => img.remove());
      a.append(img);
    }
    return a;
  }

  // profileOf returns the public profile fields of a frame or profiles entry.
  function profileOf(p) {
    const out = {};
    if (p && typeof p.display === 'string' && p.display) out.display = p.display;
    if (p && typeof p.avatar === 'string' && p.avatar) out.avatar = p.avatar;
    return out;
  }

  // wsURL resolves a WebSocket URL relative to the page.
  function wsURL(url) {
    const u = new URL(url, location.href);
    if (u.protocol === 'http:') u.protocol = 'ws:';
    if (u.protocol === 'https:') u.protocol = 'wss:';
    return u.href;
  }

  const storage = {
    get(key) {
      try { return localStorage.getItem(key); } catch (e) { return null; }
    },
    set(key, value) {
      try { localStorage.setItem(key, value); } catch (e) { /* private mode */ }
    },
    remove(key) {
      try { localStorage.removeItem(key); } catch (e) { /* private mode */ }
    },
  };

  // idLess compares two message IDs, decimal strings of up to 20 digits
  // (beyond a Number's precision).
  function idLess(a, b) {
    return a.length !== b.length ? a.length < b.length : a < b;
  }

  function isID(id) {
    return typeof id === 'string' && /^(0|[1-9][0-9]{0,19})$/.test(id);
  }

  // httpURL turns a WebSocket URL into the http(s) URL files are resolved
  // against.
  function httpURL(url) {
    const u = new URL(url);
    if (u.protocol === 'ws:') u.protocol = 'http:';
    if (u.protocol === 'wss:') u.protocol = 'https:';
    return u.href;
  }

  // fileURL resolves a file's URL against the chat server's WebSocket URL
  // ws, or returns null unless it is http(s).
  function fileURL(url, ws) {
    try {
      const u = new URL(String(url), httpURL(ws));
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  // formatSize formats a size in bytes for people: 512 B, 12 KB, 3.4 MB.
  function formatSize(n) {
    n = Number(n) || 0;
    if (n < 1024) return n + ' B';
    const units = ['KB', 'MB', 'GB', 'TB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return (n < 10 ? n.toFixed(1) : Math.round(n)) + ' ' + units[i];
  }

  function sameName(a, b) {
    return String(a).trim().toLowerCase() === String(b).trim().toLowerCase();
  }

  // parseInput turns what the user typed into a client frame:
  // "/msg bob hi" and '/msg "bob smith" hi' become private messages.
  function parseInput(text) {
    const m = /^\/msg\s+(?:"([^"]+)"|(\S+))\s+([\s\S]+)$/.exec(text);
    if (m) return { type: 'message', to: m[1] || m[2], body: m[3] };
    return { type: 'message', body: text };
  }

  // Days and the empty room. The log shows a line with the day ("Today",
  // "Yesterday", or the date, in local time) before the first message of
  // each day, wherever messages come in (live, resumed, a page of older
  // ones), and "No messages yet — say hello" in a room whose history came
  // and held nothing, until the first message. Chat.tidy keeps both true
  // after every change to the log.

  const EMPTY_TEXT = 'No messages yet — say hello';

  // dayKey returns the local day of a date as YYYY-MM-DD.
  function dayKey(d) {
    const pad = (n) => String(n).padStart(2, '0');
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  }

  // dayLabel names the day key as the user reads it on the date now.
  function dayLabel(key, now) {
    const [y, m, d] = key.split('-').map(Number);
    const day = new Date(y, m - 1, d);
    const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    if (key === dayKey(now)) return 'Today';
    if (key === dayKey(yesterday)) return 'Yesterday';
    return day.toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long',
      year: y === now.getFullYear() ? undefined : 'numeric' });
  }

  // lineDay returns the day key of a message line (a message or an
  // announcement, with its time), or null for other lines.
  function lineDay(li) {
    if (!li.classList.contains('msg') && !li.classList.contains('announce')) return null;
    const t = li.querySelector('time[datetime]');
    const d = t ? new Date(t.dateTime) : null;
    return d && !isNaN(d) ? dayKey(d) : null;
  }

  // The labels say "Today" of the day they were made: at midnight, every
  // panel on the page names its days again.
  const chats = new Set(); // every Chat made on the page
  function atMidnight() {
    const now = new Date();
    const next = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1, 0, 0, 1);
    setTimeout(() => {
      for (const c of chats) {
        if (c.root.isConnected) c.markDays();
        else chats.delete(c);
      }
      atMidnight();
    }, next - now);
  }
  atMidnight();

  // Chat is one chat panel and its connection. It fires "joined" when the
  // server has accepted the username, and "failed" when a connection closed
  // before it ever opened (nothing listening, or the origin was refused).
  // It fires "message" for every message it adds to its log, live, resumed
  // or in the history of a join (detail: its id, and mine, true for the
  // user's own), not for pages of older ones, and "loaded" once the
  // history of a connection (on joining or resuming) is shown.
  class Chat extends EventTarget {
    constructor(root) {
      super();
      this.root = root;
      this.url = null; // WebSocket URL without ?username=
      this.auth = false; // the server knows the user (a cookie): no username to ask for
      this.key = null; // localStorage key remembering the username
      this.ws = null;
      this.name = null; // name requested for the current connection
      this.me = null; // name the server confirmed
      this.joined = false;
      this.opened = false;
      this.retries = 0;
      this.timer = null;
      this.gen = 0; // bumped by close(); event handlers of older connections check it
      this.lastError = null;
      this.users = [];
      this.profiles = new Map(); // username → { display, avatar } of members that have one
      this.myJoinLine = null;
      // The messages of the room, as far as the log shows them. shown maps
      // the ID of each message in the log to its line, to skip repeats;
      // lastID is the greatest of them, sent as ?since= on reconnecting.
      // After a server lost its messages (a reset: its IDs start again),
      // shown and lastID start again too, and the lines shown before
      // stay, cut off from the room by a line "Some messages were missed".
      this.shown = new Map();
      this.lastID = null;
      this.paging = null; // the "before" of the page of older messages asked for, if any
      this.rooms = new Map(); // URL of a server → its log, shown and lastID while another is shown
      this.upload = null; // {url, token, max} of the connection, from its upload frame
      this.uploading = null; // the XMLHttpRequest of the upload under way, if any
      this.attached = null; // the file uploaded for the next message: its object
      this.typers = new Map(); // username → the timer that stops showing it as typing
      this.typingSent = 0; // when this panel last sent a typing frame (Date.now())
      this.loaded = false; // the history of this connection is shown: an empty log is an empty room
      chats.add(this);
      this.build();
      window.addEventListener('online', () => { if (this.timer) this.reconnectNow(); });
      // A page kept in the back/forward cache would keep its member, and
      // its name taken, while out of sight: leave when it is hidden there,
      // and come back (resuming) when it is shown again.
      window.addEventListener('pagehide', (e) => {
        if (e.persisted && (this.ws || this.timer)) { this.close(); this.cached = true; }
      });
      window.addEventListener('pageshow', (e) => {
        if (e.persisted && this.cached) { this.cached = false; this.reconnectNow(); }
      });
      this.log.addEventListener('scroll', () => this.loadOlderAtTop(), { passive: true });
    }

    build() {
      const id = 'hc' + (++nextID);
      this.titleEl = el('h2', { class: 'room', text: 'Chat' });
      this.statusText = el('span', { class: 'status-text', text: 'Disconnected' });
      this.statusEl = el('p', { class: 'status', role: 'status', 'data-state': 'disconnected' },
        el('span', { class: 'dot', 'aria-hidden': 'true' }), this.statusText);
      this.retryBtn = el('button', { type: 'button', class: 'link', hidden: true, text: 'Reconnect now' });
      this.retryBtn.addEventListener('click', () => this.reconnectNow());

      this.log = el('ol', { class: 'log', role: 'log', 'aria-label': 'Messages', 'aria-live': 'polite', tabindex: '0' });
      this.usersCount = el('span', { class: 'count', text: '0' });
      this.usersList = el('ul', { class: 'users-list' });
      const users = el('aside', { class: 'users', 'aria-labelledby': id + '-users' },
        el('h3', { id: id + '-users' }, 'Users ', this.usersCount), this.usersList);

      this.nameInput = el('input', {
        id: id + '-username', name: 'username', autocomplete: 'nickname', maxlength: '32',
        required: true, spellcheck: 'false', autocapitalize: 'off',
      });
      this.joinError = el('p', { class: 'form-error', role: 'alert', id: id + '-join-error' });
      this.nameInput.setAttribute('aria-describedby', this.joinError.id);
      this.joinForm = el('form', { class: 'join', hidden: true },
        el('h3', { text: 'Choose a username' }),
        el('div', { class: 'row' },
          el('label', { for: this.nameInput.id, text: 'Username' }),
          this.nameInput,
          el('button', { type: 'submit', text: 'Join' })),
        this.joinError);
      this.joinForm.addEventListener('submit', (e) => { e.preventDefault(); this.submitName(); });

      this.msgInput = el('input', {
        id: id + '-message', name: 'message', autocomplete: 'off', enterkeyhint: 'send',
        maxlength: '4096', placeholder: 'Write a message… (/msg name text to whisper)',
      });
      this.fileInput = el('input', { type: 'file', id: id + '-file', class: 'visually-hidden', tabindex: '-1' });
      this.attachBtn = el('button', { type: 'button', class: 'attach', hidden: true, title: 'Attach a file or image',
        'aria-label': 'Attach a file', text: '📎' });
      this.attachBtn.addEventListener('click', () => this.fileInput.click());
      this.fileInput.addEventListener('change', () => {
        if (this.fileInput.files.length > 0) this.attach(this.fileInput.files[0]);
        this.fileInput.value = '';
      });
      this.msgInput.addEventListener('input', () => this.noteTyping());
      this.msgInput.addEventListener('paste', (e) => {
        const files = e.clipboardData ? e.clipboardData.files : null;
        if (files && files.length > 0 && this.upload) {
          e.preventDefault();
          this.attach(files[0]);
        }
      });
      this.root.addEventListener('dragover', (e) => {
        if (this.upload && this.joined && e.dataTransfer && [...e.dataTransfer.types].includes('Files')) e.preventDefault();
      });
      this.root.addEventListener('drop', (e) => {
        if (!this.upload || !this.joined || !e.dataTransfer || e.dataTransfer.files.length === 0) return;
        e.preventDefault();
        this.attach(e.dataTransfer.files[0]);
      });
      this.uploadName = el('span', { class: 'upload-name' });
      this.uploadProgress = el('progress', { max: '100', value: '0', 'aria-label': 'Upload progress' });
      this.uploadCancel = el('button', { type: 'button', class: 'link', text: 'Remove' });
      this.uploadCancel.addEventListener('click', () => this.clearAttachment());
      this.uploadBox = el('div', { class: 'upload', hidden: true }, this.uploadName, this.uploadProgress, this.uploadCancel);
      this.uploadError = el('p', { class: 'form-error', role: 'alert' });
      this.typingEl = el('p', { class: 'typing', 'aria-live': 'polite' });
      this.sendForm = el('form', { class: 'composer', hidden: true },
        el('label', { for: this.msgInput.id, class: 'visually-hidden', text: 'Message' }),
        this.fileInput, this.attachBtn,
        this.msgInput,
        el('button', { type: 'submit', text: 'Send' }));
      this.sendForm.addEventListener('submit', (e) => { e.preventDefault(); this.submitMessage(); });

      this.root.classList.add('chat');
      this.root.replaceChildren(
        el('header', { class: 'chat-head' }, this.titleEl,
          el('div', { class: 'status-box' }, this.statusEl, this.retryBtn)),
        el('div', { class: 'chat-main' }, this.log, users),
        el('footer', { class: 'chat-foot' }, this.typingEl, this.joinForm, this.uploadBox, this.uploadError, this.sendForm));
    }

    // connect switches the panel to the chat server at url. The username is
    // remembered in localStorage under key; title names the room. With
    // auth, the server names the user (from a cookie, say): the panel
    // connects without a username and never asks for one.
    connect(url, { key, title, auth } = {}) {
      url = wsURL(url);
      if (url === this.url && (this.ws || this.timer)) return;
      const switching = url !== this.url;
      this.close();
      if (switching) {
        this.clearAttachment(); // uploaded to the other server
        if (this.url) this.saveRoom(this.url);
        this.restoreRoom(url);
        this.profiles.clear();
        this.setUsers([]);
      }
      this.url = url;
      this.auth = !!auth;
      this.key = key || 'hubchat.username:' + url;
      this.titleEl.textContent = title || 'Chat';
      this.retries = 0;
      if (this.auth) {
        this.open('');
        return;
      }
      const name = storage.get(this.key);
      if (name) this.open(name);
      else this.promptName('');
    }

    // saveRoom keeps the log of the server at url, to show it again, and
    // resume from its last message, when the panel switches back.
    saveRoom(url) {
      this.rooms.set(url, { lines: [...this.log.children], shown: this.shown, lastID: this.lastID });
    }

    // restoreRoom shows the log kept for the server at url, or an empty one.
    restoreRoom(url) {
      const room = this.rooms.get(url);
      this.rooms.delete(url);
      this.log.replaceChildren(...(room ? room.lines : []));
      this.shown = room ? room.shown : new Map();
      this.lastID = room ? room.lastID : null;
      this.log.scrollTop = this.log.scrollHeight;
    }

    // disconnect closes the connection and stops reconnecting.
    disconnect() {
      this.close();
      this.joinForm.hidden = true;
      this.sendForm.hidden = true;
      this.setStatus('disconnected', 'Disconnected');
    }

    close() {
      this.gen++;
      clearTimeout(this.timer);
      this.timer = null;
      this.retryBtn.hidden = true;
      if (this.ws) {
        const ws = this.ws;
        this.ws = null; // its events are ignored from now on
        ws.close(1000);
      }
      this.joined = false;
      this.setUpload(null);
      this.clearTyping();
    }

    promptName(error) {
      this.close();
      this.setStatus('disconnected', 'Disconnected: choose a username');
      this.sendForm.hidden = true;
      this.joinForm.hidden = false;
      this.joinError.textContent = error || '';
      this.nameInput.setAttribute('aria-invalid', error ? 'true' : 'false');
      if (!this.nameInput.value && this.name) this.nameInput.value = this.name;
      this.nameInput.focus();
      this.nameInput.select();
    }

    submitName() {
      const name = this.nameInput.value.trim();
      if (!name) {
        this.joinError.textContent = 'Please enter a username.';
        this.nameInput.focus();
        return;
      }
      this.joinError.textContent = '';
      this.retries = 0;
      this.open(name);
    }

    open(name) {
      this.close();
      this.name = name;
      this.me = null;
      this.opened = false;
      this.lastError = null;
      this.myJoinLine = null;
      this.paging = null;
      this.loaded = false;
      this.setStatus('connecting', name ? 'Connecting as ' + name + '…' : 'Connecting…');
      const params = [];
      if (!this.auth) params.push('username=' + encodeURIComponent(name));
      if (this.lastID !== null) params.push('since=' + this.lastID); // resume after the last message shown
      let url = this.url;
      if (params.length > 0) url += (url.includes('?') ? '&' : '?') + params.join('&');
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        this.addLine('error', 'Cannot connect: ' + e.message);
        this.setStatus('disconnected', 'Disconnected');
        return;
      }
      this.ws = ws;
      ws.onopen = () => { if (ws === this.ws) this.opened = true; };
      ws.onmessage = (e) => { if (ws === this.ws) this.receive(e.data); };
      ws.onclose = (e) => { if (ws === this.ws) this.closed(e); };
    }

    closed(e) {
      const wasJoined = this.joined;
      this.ws = null;
      this.joined = false;
      this.sendForm.hidden = true;
      this.setUpload(null);
      this.clearTyping();
      if (!this.opened) {
        const gen = this.gen;
        this.dispatchEvent(new CustomEvent('failed', { detail: { url: this.url } }));
        if (gen !== this.gen) return; // a listener switched or disconnected
      }
      if (e.code === 1008 && !wasJoined && this.auth) {
        // Refused at join (banned, taken on another server, room full):
        // there is no other name to try. Say why, and let the user retry.
        const why = this.lastError || e.reason || 'the server refused the connection';
        this.addLine('error', 'Refused: ' + why);
        this.setStatus('disconnected', 'Refused: ' + why);
        this.retryBtn.hidden = false;
        return;
      }
      if (e.code === 1008 && !wasJoined) {
        // Refused at join: taken, invalid or room full. Let the user pick again.
        storage.remove(this.key);
        this.promptName(this.lastError || e.reason || 'The server refused this username.');
        return;
      }
      if (wasJoined && e.code === 1008 && /^(kicked by a moderator|banned until)/.test(this.lastError || '')) {
        // Removed by a moderator: coming straight back would undo a kick
        // (and a ban refuses it anyway). Say why; the user may rejoin.
        this.addLine('error', 'Removed from the room: ' + this.lastError);
        this.setStatus('disconnected', 'Removed from the room');
        this.retryBtn.hidden = false;
        return;
      }
      if (wasJoined) {
        const why = e.code === 1001 ? 'the server is going away' : e.reason || 'connection lost';
        this.addLine('system', 'Disconnected: ' + why + ' (code ' + e.code + ')');
      }
      this.scheduleReconnect();
    }

    scheduleReconnect() {
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.retries);
      const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
      this.retries++;
      this.setStatus('disconnected', 'Disconnected: reconnecting in ' + Math.max(1, Math.round(delay / 1000)) + ' s');
      this.retryBtn.hidden = false;
      this.timer = setTimeout(() => { this.timer = null; this.open(this.name); }, delay);
    }

    reconnectNow() {
      if ((this.name || this.auth) && this.url) this.open(this.name);
    }

    // label returns how to show the member named name: its display name,
    // if it has one, else its name.
    label(name) {
      const p = this.profiles.get(name);
      return (p && p.display) || name;
    }

    // who returns the text naming a member in lines and headers: the
    // display name followed by the username, or the username alone.
    who(name) {
      const l = this.label(name);
      return l === name ? name : l + ' (' + name + ')';
    }

    // nameParts returns elements naming a member: the display name and, if
    // it has one, the username after it, which is what identifies it.
    nameParts(name, cls) {
      const l = this.label(name);
      const parts = [el('span', { class: cls, text: l })];
      if (l !== name) parts.push(el('span', { class: 'handle', text: '@' + name }));
      return parts;
    }

    setProfile(name, p) {
      p = profileOf(p);
      if (p.display || p.avatar) this.profiles.set(name, p);
      else this.profiles.delete(name);
    }

    receive(data) {
      let f;
      try { f = JSON.parse(data); } catch (e) { return; }
      switch (f.type) {
        case 'join':
          this.setProfile(f.username, f);
          if (!this.joined && !this.me && (this.auth || sameName(f.username, this.name))) {
            // The first join of a connection is its own.
            this.me = f.username;
            this.myJoinLine = this.addLine('system', 'You joined as ' + this.who(f.username));
          } else {
            this.addLine('system', this.who(f.username) + ' joined');
          }
          if (!this.users.includes(f.username)) this.setUsers(this.users.concat(f.username));
          break;
        case 'leave':
          this.stopTyping(f.username);
          this.addLine('system', this.who(f.username) + ' left');
          this.profiles.delete(f.username);
          this.setUsers(this.users.filter((u) => u !== f.username));
          break;
        case 'users': {
          const users = Array.isArray(f.users) ? f.users.map(String) : [];
          const profiles = f.profiles && typeof f.profiles === 'object' ? f.profiles : {};
          this.profiles.clear();
          for (const u of users) {
            if (Object.prototype.hasOwnProperty.call(profiles, u)) this.setProfile(u, profiles[u]);
          }
          this.setUsers(users);
          this.onJoined();
          break;
        }
        case 'history':
          if (f.before !== undefined) this.addPage(f);
          else this.addHistory(f);
          break;
        case 'message': {
          this.stopTyping(f.username);
          const li = this.renderMessage(f);
          if (li) this.append(li, null);
          break;
        }
        case 'typing':
          if (typeof f.username === 'string' && f.username !== this.me) this.startTyping(f.username);
          break;
        case 'upload':
          this.setUpload(f);
          break;
        case 'error':
          // Perhaps the answer to a page request (rate limit, store
          // down): the next scroll to the top may ask again.
          this.paging = null;
          this.lastError = String(f.error);
          if (this.joined) this.addLine('error', 'Error: ' + f.error);
          else this.joinError.textContent = f.error;
          break;
      }
    }

    onJoined() {
      this.joined = true;
      this.retries = 0;
      if (!this.me) this.me = this.name;
      if (!this.auth) storage.set(this.key, this.me);
      this.setStatus('connected', 'Connected as ' + this.who(this.me));
      this.retryBtn.hidden = true;
      this.joinForm.hidden = true;
      this.sendForm.hidden = false;
      this.renderUsers();
      if (!this.root.contains(document.activeElement) || document.activeElement === this.nameInput ||
          document.activeElement === document.body) {
        this.msgInput.focus();
      }
      this.dispatchEvent(new CustomEvent('joined', { detail: { url: this.url, username: this.me } }));
    }

    submitMessage() {
      const text = this.msgInput.value;
      if (this.uploading) {
        this.uploadError.textContent = 'Wait for the upload to finish.';
        return;
      }
      if (!text.trim() && !this.attached) return;
      if (!this.ws || !this.joined || this.ws.readyState !== WebSocket.OPEN) {
        this.addLine('error', 'Not connected: the message was not sent.');
        return;
      }
      const frame = parseInput(text);
      if (this.attached) frame.file = this.attached.id;
      this.ws.send(JSON.stringify(frame));
      this.msgInput.value = '';
      this.typingSent = 0; // typing again after this is news
      this.clearAttachment();
    }

    // noteTyping tells the server the user is typing, at most every
    // TYPING_SEND_MS: not for an empty box, nor for a command (a /msg is
    // private: the room need not know).
    noteTyping() {
      const text = this.msgInput.value;
      if (!this.joined || !this.ws || this.ws.readyState !== WebSocket.OPEN || !text.trim() || text.startsWith('/')) return;
      const now = Date.now();
      if (now - this.typingSent < TYPING_SEND_MS) return;
      this.typingSent = now;
      this.ws.send('{"type":"typing"}');
    }

    // startTyping shows name as typing for TYPING_SHOW_MS from now.
    startTyping(name) {
      clearTimeout(this.typers.get(name));
      this.typers.set(name, setTimeout(() => this.stopTyping(name), TYPING_SHOW_MS));
      this.renderTyping();
    }

    // stopTyping stops showing name as typing.
    stopTyping(name) {
      if (!this.typers.has(name)) return;
      clearTimeout(this.typers.get(name));
      this.typers.delete(name);
      this.renderTyping();
    }

    clearTyping() {
      for (const t of this.typers.values()) clearTimeout(t);
      this.typers.clear();
      this.typingSent = 0;
      this.renderTyping();
    }

    renderTyping() {
      const names = [...this.typers.keys()].map((n) => this.label(n));
      let text = '';
      if (names.length === 1) text = names[0] + ' is typing…';
      else if (names.length === 2) text = names[0] + ' and ' + names[1] + ' are typing…';
      else if (names.length > 2) text = 'Several people are typing…';
      if (this.typingEl.textContent !== text) this.typingEl.textContent = text;
    }

    // setUpload takes the connection's upload frame (null: none, the
    // connection is gone): the attach button shows while uploads are on.
    setUpload(f) {
      this.upload = null;
      if (f && typeof f.token === 'string' && this.url) {
        const url = fileURL(typeof f.url === 'string' ? f.url : 'files/', this.url);
        if (url) this.upload = { url, token: f.token, max: Number(f.max) || 0 };
      }
      this.attachBtn.hidden = !this.upload;
    }

    // attach uploads file for the next message, showing its progress; the
    // file's object is kept in this.attached once the server has it.
    attach(file) {
      this.clearAttachment();
      const up = this.upload;
      if (!up) return;
      if (up.max > 0 && file.size > up.max) {
        this.uploadError.textContent = file.name + ' is too large: at most ' + formatSize(up.max) + '.';
        return;
      }
      const xhr = new XMLHttpRequest();
      this.uploading = xhr;
      this.uploadName.textContent = file.name + ' (' + formatSize(file.size) + ')';
      this.uploadProgress.hidden = false;
      this.uploadProgress.value = 0;
      this.uploadBox.hidden = false;
      this.uploadBox.dataset.state = 'uploading';
      xhr.open('POST', up.url + (up.url.includes('?') ? '&' : '?') + 'name=' + encodeURIComponent(file.name));
      xhr.setRequestHeader(UPLOAD_HEADER, up.token);
      xhr.responseType = 'json';
      xhr.upload.addEventListener('progress', (e) => {
        if (e.lengthComputable && xhr === this.uploading) this.uploadProgress.value = Math.round(100 * e.loaded / e.total);
      });
      xhr.addEventListener('loadend', () => {
        if (xhr !== this.uploading) return; // removed meanwhile
        this.uploading = null;
        const r = xhr.response;
        if (xhr.status === 201 && r && typeof r.id === 'string') {
          this.attached = r;
          this.uploadBox.dataset.state = 'ready';
          this.uploadProgress.hidden = true;
          this.uploadName.textContent = '📎 ' + String(r.name) + ' (' + formatSize(r.size) + ')';
          this.msgInput.focus();
          return;
        }
        const why = r && typeof r.error === 'string' ? r.error : xhr.status ? 'HTTP ' + xhr.status : 'the server cannot be reached';
        this.clearAttachment();
        this.uploadError.textContent = 'Upload of ' + file.name + ' failed: ' + why;
      });
      xhr.send(file);
    }

    // clearAttachment drops the file for the next message, stopping its
    // upload if under way.
    clearAttachment() {
      const xhr = this.uploading;
      this.uploading = null;
      if (xhr) xhr.abort();
      this.attached = null;
      this.uploadBox.hidden = true;
      this.uploadError.textContent = '';
    }

    setStatus(state, text) {
      this.statusEl.dataset.state = state;
      this.statusText.textContent = text;
    }

    setUsers(users) {
      this.users = users.map(String);
      this.renderUsers();
    }

    renderUsers() {
      this.usersCount.textContent = String(this.users.length);
      this.usersList.replaceChildren(...this.users.map((u) => {
        const mine = this.me !== null && u === this.me;
        const p = this.profiles.get(u) || {};
        const b = el('button', { type: 'button', class: 'user', title: mine ? null : 'Send ' + this.who(u) + ' a private message' },
          avatar(u, this.label(u), p.avatar), ...this.nameParts(u, 'name'),
          mine ? el('span', { class: 'you', text: '(you)' }) : null);
        if (mine) b.disabled = true;
        b.addEventListener('click', () => {
          this.msgInput.value = '/msg ' + (/\s/.test(u) ? '"' + u + '"' : u) + ' ';
          this.msgInput.focus();
        });
        return el('li', null, b);
      }));
    }

    // addHistory shows the history frame a joiner receives, before the
    // line "You joined as …". On a resume ("resume":true) it holds exactly
    // the messages missed since lastID, under a line saying how many; with
    // "resume":false the server could not reach back that far, and the
    // latest history comes under a line "Some messages were missed".
    addHistory(f) {
      const msgs = Array.isArray(f.messages) ? f.messages : [];
      const at = this.myJoinLine;
      if (f.resume === false) {
        const first = msgs.length > 0 && msgs[0] ? msgs[0].id : null;
        if (!isID(first) || this.lastID === null || !idLess(this.lastID, first)) {
          // The server numbers its messages anew (it lost them), or shows
          // none: what the log shows is no longer the room's.
          this.shown = new Map();
          this.lastID = null;
        }
        this.addLine('notice', 'Some messages were missed', at);
      }
      const lines = msgs.map((m) => this.renderMessage(m)).filter(Boolean);
      if (f.resume === true && lines.length > 0) {
        this.addLine('notice', lines.length === 1 ? '1 missed message' : lines.length + ' missed messages', at);
      }
      for (const li of lines) this.append(li, at);
      this.loaded = true;
      this.tidy();
      this.dispatchEvent(new CustomEvent('loaded', { detail: { url: this.url } }));
      this.loadOlderAtTop();
    }

    // loadOlderAtTop asks for the page before the oldest message shown if
    // the log is scrolled to (or too short to leave) its top, unless a page
    // is on its way, the beginning is shown, or the oldest line is from
    // before a reset.
    loadOlderAtTop() {
      const log = this.log;
      if (log.scrollTop > TOP_PX || log.clientHeight === 0 || this.paging !== null || !this.joined ||
          !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      const first = log.firstElementChild;
      const oldest = log.querySelector(':scope > [data-id]');
      if (!oldest || first.classList.contains('beginning') || this.shown.get(oldest.dataset.id) !== oldest) return;
      this.paging = oldest.dataset.id;
      this.ws.send(JSON.stringify({ type: 'history', before: this.paging, limit: PAGE_SIZE }));
    }

    // addPage shows a page of older messages at the top of the log, keeping
    // in place what the user sees. An empty page (or one with nothing new)
    // is the beginning of the conversation, shown at the top.
    addPage(f) {
      if (f.before !== this.paging) return; // not the page asked for last
      this.paging = null;
      const log = this.log;
      const page = document.createDocumentFragment();
      for (const m of Array.isArray(f.messages) ? f.messages : []) {
        if (!m || !isID(m.id) || !idLess(m.id, f.before)) continue;
        const li = this.renderMessage(m);
        if (li) page.append(li);
      }
      if (!page.firstChild) {
        log.prepend(el('li', { class: 'line notice beginning', text: 'Beginning of the conversation' }));
        return;
      }
      const anchor = log.querySelector(':scope > :not(.day)'); // the day line above it may go
      const y = anchor ? anchor.getBoundingClientRect().top : 0;
      log.prepend(page);
      this.tidy();
      if (anchor) log.scrollTop += anchor.getBoundingClientRect().top - y;
      this.loadOlderAtTop();
    }

    // addLine adds a system, error or notice line, before the node
    // `before` if given, else at the end, and returns it.
    addLine(kind, text, before) {
      const li = el('li', { class: 'line ' + kind, text });
      this.append(li, before);
      return li;
    }

    // renderMessage returns the line of a message frame, or null if the log
    // shows the message already, and counts it as shown.
    renderMessage(m) {
      if (!m || typeof m !== 'object') return null;
      const id = isID(m.id) ? m.id : null;
      if (id !== null && this.shown.has(id)) return null;
      const when = new Date(Number(m.ts));
      const time = el('time', { datetime: when.toISOString(), title: when.toLocaleString(),
        text: when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) });
      let li;
      if (m.system) {
        li = el('li', { class: 'line system announce' }, el('span', { text: m.body }), ' ', time);
      } else {
        // A sender elsewhere carries its origin: another server of the
        // room, or the server of an address such as alice@8081, which is
        // shown as alice, tagged @8081.
        const origin = typeof m.origin === 'string' && m.origin ? m.origin : null;
        let author = String(m.username);
        if (origin && author.endsWith('@' + origin) && author.length > origin.length + 1) {
          author = author.slice(0, -(origin.length + 1));
        }
        const mine = this.me !== null && m.username === this.me && !origin;
        // An address is no member's name: no profile of a member goes with it.
        const meta = el('div', { class: 'meta' }, ...(author === m.username ? this.nameParts(author, 'author')
          : [el('span', { class: 'author', text: author })]));
        if (origin) meta.append(el('span', { class: 'origin', title: 'From server ' + origin, text: '@' + origin }));
        if (m.to) meta.append(el('span', { class: 'to', text: '→ ' + this.who(m.to) + ' (private)' }));
        meta.append(time);
        const p = this.profiles.get(m.username) || {};
        const body = typeof m.body === 'string' && m.body !== '' ? el('p', { class: 'body', text: m.body }) : null;
        li = el('li', { class: 'msg ' + (mine ? 'mine' : 'theirs') + (m.to ? ' private' : '') },
          avatar(m.username, this.label(m.username), p.avatar),
          el('div', { class: 'bubble' }, meta, body, this.renderFile(m.file)));
      }
      if (id !== null) {
        li.dataset.id = id;
        this.shown.set(id, li);
        if (this.lastID === null || idLess(this.lastID, id)) this.lastID = id;
      }
      return li;
    }

    // renderFile returns the element showing a message's file: a preview
    // for an image the server serves inline, else a download link with its
    // name and size; null for none.
    renderFile(f) {
      if (!f || typeof f !== 'object' || !this.url) return null;
      const url = fileURL(f.url, this.url);
      if (!url) return null;
      const name = String(f.name || 'file');
      const link = el('a', { class: 'file', href: url, download: name, target: '_blank', rel: 'noopener noreferrer',
        title: 'Download ' + name },
      el('span', { class: 'file-name', text: name }), ' ', el('span', { class: 'file-size', text: formatSize(f.size) }));
      if (!INLINE_TYPES.includes(f.type)) return el('div', { class: 'attachment' }, link);
      const img = el('img', { class: 'preview', src: url, alt: name, loading: 'lazy', decoding: 'async',
        referrerpolicy: 'no-referrer' });
      const a = el('a', { class: 'preview-link', href: url, target: '_blank', rel: 'noopener noreferrer', title: name }, img);
      img.addEventListener('error', () => a.replaceWith(link)); // gone, or refused: the link stays
      img.addEventListener('load', () => {
        // Keep following the end of the log if it did before the image
        // took its room.
        const log = this.log;
        if (log.scrollHeight - log.scrollTop - log.clientHeight < 48 + img.clientHeight) log.scrollTop = log.scrollHeight;
      });
      return el('div', { class: 'attachment image' }, a);
    }

    // append inserts a line before the node `before`, or at the end, and
    // follows the end of the log if it was there. Only then do the oldest
    // lines beyond MAX_LOG_ITEMS go (scrolling up loads them again), so
    // that nothing moves under a user reading older messages.
    append(li, before) {
      const log = this.log;
      const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
      const follow = atBottom || li.classList.contains('mine');
      if (before && before.parentNode === log) log.insertBefore(li, before);
      else log.append(li);
      while (follow && log.childElementCount > MAX_LOG_ITEMS) {
        const old = log.firstElementChild;
        if (old.dataset.id && this.shown.get(old.dataset.id) === old) this.shown.delete(old.dataset.id);
        old.remove();
      }
      this.tidy();
      if (follow) log.scrollTop = log.scrollHeight;
      if (li.dataset.id) {
        this.dispatchEvent(new CustomEvent('message', { detail: { id: li.dataset.id, mine: li.classList.contains('mine') } }));
      }
    }

    // tidy keeps the day lines and the empty room's line true to the log.
    tidy() {
      this.markDays();
      const messages = this.log.querySelector(':scope > .msg, :scope > .announce') !== null;
      const line = this.log.querySelector(':scope > .placeholder');
      if (!messages && !line && this.loaded) this.log.prepend(el('li', { class: 'line placeholder', text: EMPTY_TEXT }));
      else if (messages && line) line.remove();
    }

    // markDays puts a day line right before the first message line of
    // each day, and nowhere else, keeping those already in place.
    markDays() {
      const now = new Date();
      const stale = [];
      let prev = null; // the day of the last message line
      let sep = null; // a day line right before the current element
      for (const li of [...this.log.children]) {
        if (li.classList.contains('day')) {
          if (sep) stale.push(sep);
          sep = li;
          continue;
        }
        const day = lineDay(li);
        if (day !== null && day !== prev) {
          if (sep && sep.dataset.day === day) {
            const t = sep.firstElementChild;
            const label = dayLabel(day, now);
            if (t.textContent !== label) t.textContent = label;
          } else {
            if (sep) stale.push(sep);
            this.log.insertBefore(el('li', { class: 'line day', 'data-day': day },
              el('time', { datetime: day, text: dayLabel(day, now) })), li);
          }
          sep = null;
          prev = day;
          continue;
        }
        if (sep) stale.push(sep);
        sep = null;
      }
      if (sep) stale.push(sep);
      for (const s of stale) s.remove();
    }
  }

  window.HubChat = { Chat, el, initials, avatarColor, wsURL, storage, formatSize };

  function mountAll() {
    for (const root of document.querySelectorAll('[data-hubchat-ws]')) {
      const chat = new Chat(root);
      chat.connect(root.dataset.hubchatWs, { title: root.dataset.hubchatTitle, auth: 'hubchatAuth' in root.dataset });
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mountAll);
  else mountAll();
})();
