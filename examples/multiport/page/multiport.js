// multiport.js drives the multiport page: a button per chat server, a
// custom port box, and one shared chat panel (chat.js) that switches
// between servers. Each server is its own room on its own port of this
// page's host.
(function () {
  'use strict';

  const { Chat, el, storage } = window.HubChat;
  const CUSTOM_KEY = 'hubchat.multiport.ports'; // ports added with the Port box
  const LAST_KEY = 'hubchat.multiport.last'; // the server selected last

  const list = document.getElementById('server-list');
  const form = document.getElementById('custom-port');
  const portInput = document.getElementById('port');
  const portError = document.getElementById('port-error');
  const chat = new Chat(document.getElementById('chat'));
  chat.msgInput.placeholder = 'Write a message… (/msg name text to whisper, /msg name@PORT to reach another server)';

  let servers = []; // {name, port, custom}: custom ones are only known from localStorage
  let current = null; // selected port
  let pending = null; // {port, why}: a port that gets its button once joined

  const find = (port) => servers.find((s) => s.port === port);

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
      const b = el('button', { type: 'button', 'aria-pressed': String(s.port === current), text: s.name });
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

  function select(port, title) {
    current = port;
    storage.set(LAST_KEY, String(port));
    render();
    const s = find(port);
    chat.connect(chatURL(port), {
      key: 'hubchat.username:' + location.hostname + ':' + port,
      title: s ? s.name : title || 'Port ' + port,
    });
  }

  function forget(port) {
    rememberPort(port, false);
    servers = servers.filter((s) => s.port !== port);
    if (current === port) {
      current = null;
      chat.disconnect();
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
  chat.addEventListener('joined', () => {
    if (pending && pending.port === current) {
      addServer({ name: 'Port ' + pending.port, port: pending.port, custom: true });
      pending = null;
      portInput.value = '';
    }
  });
  chat.addEventListener('failed', () => {
    if (pending && pending.port === current) {
      portError.textContent = 'Cannot connect to port ' + pending.port + ': ' + pending.why;
      pending = null;
      current = null;
      chat.disconnect();
      render();
      portInput.focus();
    }
  });

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
    pending = { port, why: body.error || 'no chat server there' };
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
  }

  load();
})();
