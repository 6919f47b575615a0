// jwt.js mounts the chat panel of the signed-in page. The server knows the
// user from the cookie, so the panel connects without asking for a
// username (auth). If the connection cannot open, the page asks the
// server whether the sign-in is still valid, and if not (the token
// expired, or the key changed at a restart) goes back to the login page.
(function () {
  'use strict';
  const root = document.getElementById('chat');
  const chat = new window.HubChat.Chat(root);
  chat.addEventListener('failed', () => {
    fetch('me', { cache: 'no-store', credentials: 'same-origin' })
      .then((r) => { if (r.status === 401) location.assign('login?expired'); })
      .catch(() => { /* the server is down: the panel keeps retrying */ });
  });
  chat.connect('ws', { auth: true, title: root.dataset.title || 'Chat' });
})();
