// multiport.js drives the multiport page: a button per chat server, a
// custom port box, and a chat panel (chat.js) per server, of which the
// selected one is shown. Each server is its own room on its own port of
// this page's host.
//
// Unread counts. The panels of the servers the user has joined stay
// connected while others are shown, so that each server's button shows,
// live, how many messages came there since the user last viewed it
// ("Server 2 (8082), 3 unread"). The cost: one WebSocket per joined server
// per tab, and the user stays a member of each of those rooms (in its
// users list) while the page is open, as in any chat app with several
// rooms. The last message viewed on each server is remembered in
// localStorage, so that after a reload the count includes the messages
// sent while the page was closed, as far as the history a server sends a
// joiner reaches (the last 50 messages by default). The user's own
// messages never count. A server that lost its messages and numbers them
// anew starts counting again from its latest.
(function () {
  'use strict';

  const { Chat, el, storage } = window.HubChat;
  const CUSTOM_KEY = 'hubchat.multiport.ports'; // ports added with the Port box
  const LAST_KEY = 'hubchat.multiport.last'; // the server selected last
  const READ_KEY = 'hubchat.multiport.read:'; // + host:port: ID of the last message viewed there

  const list = document.getElementById('server-list');
  const form = document.getElementById('custom-port');
  const portInput = document.getElementById('port');
  const portError = document.getElementById('port-error');
  const box = document.getElementById('chat');

  let servers = []; // {name, port, custom}: custom ones are only known from localStorage
  let current = null; // selected port
  let pending = null; // {port, why, back}: a port that gets its button once joined; back: the port before
  const panels = new Map(); // port → {chat, root, unread}

  const find = (port) => servers.find((s) => s.port === port);
  const nameKey = (port) => 'hubchat.username:' + location.hostname + ':' + port;
  const readKey = (port) => READ_KEY + location.hostname + ':' + port;

  // idLess compares two message IDs, decimal strings of up to 20 digits.
  const idLess = (a, b) => (a.length !== b.length ? a.length < b.length : a < b);

  function chatURL(port) {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    return scheme + location.hostname.replace(/^([^[].*:.*)$/, '[$1]') + ':' + port + '/ws';
  }

  function customPorts() {
    try {
      const ports = JSON.parse(storage.get(CUSTOM_KEY) || '[]');
      return Array.isArray(ports) ? ports.filter(Number.isInteger) : [];
    } catch (e) {
      return [];
    }
  }

  function rememberPort(port, keep) {
    const ports = customPorts().filter((p) => p !== port);
    if (keep) ports.push(port);
    storage.set(CUSTOM_KEY, JSON.stringify(ports));
  }

  function render() {
    list.replaceChildren(...servers.map((s) => {
      const b = el('button', { type: 'button', 'aria-pressed': String(s.port === current), 'data-port': s.port, text: s.name });
      showUnread(b, s);
      b.addEventListener('click', () => select(s.port));
      const li = el('li', null, b);
      if (s.custom) {
        const x = el('button', { type: 'button', class: 'link', 'aria-label': 'Forget ' + s.name, text: '×' });
        x.addEventListener('click', () => forget(s.port));
        li.append(x);
      }
      return li;
    }));
  }

  // showUnread shows on the button b of the server s how many messages
  // came there unread: a badge (chat.css shows data-unread) and its label,
  // e.g. "Server 2 (8082), 3 unread".
  function showUnread(b, s) {
    const n = panels.has(s.port) ? panels.get(s.port).unread : 0;
    if (n > 0) {
      b.dataset.unread = n > 99 ? '99+' : String(n);
      b.setAttribute('aria-label', s.name + ', ' + n + ' unread');
    } else {
      delete b.dataset.unread;
      b.removeAttribute('aria-label');
    }
  }

  // renderUnread updates the button of the server on port in place,
  // leaving the focus where it is.
  function renderUnread(port) {
    const b = list.querySelector('button[data-port="' + port + '"]');
    const s = find(port);
    if (b && s) showUnread(b, s);
  }

  // panel returns the chat panel of the server on port, made if need be.
  function panel(port) {
    let p = panels.get(port);
    if (p) return p;
    const root = el('section', { hidden: true });
    box.append(root);
    p = { chat: new Chat(root), root, unread: 0 };
    p.chat.msgInput.placeholder = 'Write a message… (/msg name text to whisper, /msg name@PORT to reach another server)';
    panels.set(port, p);
    p.chat.addEventListener('message', (e) => counted(port, e.detail));
    p.chat.addEventListener('loaded', () => loaded(port));
    p.chat.addEventListener('joined', () => joined(port));
    p.chat.addEventListener('failed', () => failed(port));
    return p;
  }

  // connect connects the panel of the server on port, if not connected.
  function connect(port, title) {
    const s = find(port);
    panel(port).chat.connect(chatURL(port), { key: nameKey(port), title: s ? s.name : title || 'Port ' + port });
  }

  function select(port, title) {
    current = port;
    storage.set(LAST_KEY, String(port));
    const p = panel(port);
    for (const [q, o] of panels) o.root.hidden = q !== port;
    box.prepend(p.root); // first on the page, as in reading order
    connect(port, title);
    p.unread = 0;
    markRead(port);
    render();
    const log = p.chat.log;
    log.scrollTop = log.scrollHeight; // shown again: at the end, then older messages if it is short
    p.chat.loadOlderAtTop();
  }

  // markRead remembers the last message shown on the server on port as read.
  function markRead(port) {
    const last = panels.get(port).chat.lastID;
    const read = storage.get(readKey(port));
    if (last !== null && (read === null || idLess(read, last))) storage.set(readKey(port), last);
  }

  // counted counts a message that came to the server on port, unless it is
  // the user's, read, or on the server shown.
  function counted(port, { id, mine }) {
    if (port === current) {
      markRead(port);
      return;
    }
    const read = storage.get(readKey(port));
    if (mine || read === null || !idLess(read, id)) return;
    panels.get(port).unread++;
    renderUnread(port);
  }

  // loaded: a history came. If nothing was ever read there, or the server
  // numbers its messages anew, it is all read. Message IDs start at 1: "0"
  // is before them all.
  function loaded(port) {
    const last = panels.get(port).chat.lastID || '0';
    const read = storage.get(readKey(port));
    if (read === null || idLess(last, read)) {
      storage.set(readKey(port), last);
      if (port !== current) panels.get(port).unread = 0;
      renderUnread(port);
    }
  }

  // dropPanel disconnects the server on port and forgets its panel.
  function dropPanel(port) {
    const p = panels.get(port);
    if (!p) return;
    p.chat.disconnect();
    p.root.remove();
    panels.delete(port);
  }

  function forget(port) {
    rememberPort(port, false);
    servers = servers.filter((s) => s.port !== port);
    dropPanel(port);
    if (current === port) {
      current = null;
      if (servers.length > 0) select(servers[0].port);
    }
    render();
  }

  function addServer(s) {
    if (!find(s.port)) servers.push(s);
    rememberPort(s.port, true);
    render();
  }

  // A port that was not started here gets its button once the user has
  // joined a server there (e.g. one started with "multiport custom PORT").
  function joined(port) {
    if (pending && pending.port === port) {
      addServer({ name: 'Port ' + pending.port, port: pending.port, custom: true });
      pending = null;
      portInput.value = '';
    }
  }
  function failed(port) {
    if (pending && pending.port === port) {
      portError.textContent = 'Cannot connect to port ' + pending.port + ': ' + pending.why;
      const back = pending.back;
      pending = null;
      dropPanel(port);
      current = null;
      if (back !== null && find(back)) select(back);
      render();
      portInput.focus();
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    portError.textContent = '';
    const port = Number(portInput.value);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      portError.textContent = 'Enter a port number from 1 to 65535.';
      portInput.focus();
      return;
    }
    if (!find(port)) await refresh(); // perhaps started from another tab
    if (find(port)) {
      select(port);
      return;
    }
    let res;
    let body = {};
    try {
      res = await fetch('/api/servers', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ port }),
      });
      body = await res.json().catch(() => ({}));
    } catch (err) {
      body = { error: 'the main server is unreachable' };
    }
    if (res && res.status === 201) {
      addServer({ name: body.name, port: body.port, custom: false });
      portInput.value = '';
      select(body.port);
      return;
    }
    // Not started by the main server: perhaps a chat server already
    // listens there. Try it; the button appears once joined.
    if (pending) dropPanel(pending.port); // an earlier try, still waiting
    pending = { port, why: body.error || 'no chat server there', back: current };
    select(port);
  });

  // refresh merges the main server's list into the buttons.
  async function refresh() {
    let api;
    try {
      const res = await fetch('/api/servers');
      if (!res.ok) throw new Error(res.statusText);
      api = await res.json();
    } catch (e) {
      portError.textContent = 'Cannot list the chat servers: the main server is unreachable.';
      return;
    }
    const known = api.map((s) => ({ name: s.name, port: s.port, custom: false }));
    const others = servers.filter((s) => !known.some((k) => k.port === s.port));
    servers = known.concat(others);
    render();
  }

  async function load() {
    await refresh();
    for (const port of customPorts()) {
      if (!find(port)) servers.push({ name: 'Port ' + port, port, custom: true });
    }
    render();
    const last = Number(storage.get(LAST_KEY));
    const start = find(last) ? last : servers.length ? servers[0].port : null;
    if (start !== null) select(start);
    // The servers joined before, in the background: their unread counts.
    for (const s of servers) {
      if (s.port !== start && storage.get(nameKey(s.port))) connect(s.port);
    }
  }

  load();
})();
