// theme.js applies the colour theme of the webui client's pages (light,
// dark, or the system's) and mounts the control that chooses it.
//
// Load it in the page's <head> as a plain script, before chat.css and
// without defer or async:
//
//	<script src="theme.js"></script>
//
// so that it runs before the page is first painted: a theme chosen as dark
// then never flashes light. (The page's Content-Security-Policy allows no
// inline script, hence a file.) It sets data-theme="light" or "dark" on
// the html element, or none for the system's theme, which chat.css follows
// with prefers-color-scheme (color-scheme and light-dark()).
//
// Every element with a data-hubchat-theme attribute gets a labelled
// select, "Theme: System, Light, Dark". The choice is remembered in
// localStorage (key "hubchat.theme") and applies to every page and tab of
// the origin at once.
(function () {
  'use strict';

  const KEY = 'hubchat.theme';
  const THEMES = [['system', 'System'], ['light', 'Light'], ['dark', 'Dark']];
  const root = document.documentElement;
  const selects = [];

  function stored() {
    let t = null;
    try { t = localStorage.getItem(KEY); } catch (e) { /* storage blocked: the system's */ }
    return t === 'light' || t === 'dark' ? t : 'system';
  }

  function apply(theme) {
    if (theme === 'system') delete root.dataset.theme;
    else root.dataset.theme = theme;
    for (const s of selects) s.value = theme;
  }

  function set(theme) {
    if (theme !== 'light' && theme !== 'dark') theme = 'system';
    try {
      if (theme === 'system') localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, theme);
    } catch (e) { /* private mode: this page only */ }
    apply(theme);
  }

  apply(stored()); // now, before the body is parsed or painted

  // Another tab chose.
  window.addEventListener('storage', (e) => {
    if (e.key === KEY || e.key === null) apply(stored());
  });

  let n = 0;
  function mount() {
    for (const box of document.querySelectorAll('[data-hubchat-theme]')) {
      if (box.querySelector('select')) continue;
      const s = document.createElement('select');
      s.id = 'hubchat-theme-' + (++n);
      for (const [value, text] of THEMES) s.add(new Option(text, value));
      s.value = stored();
      s.addEventListener('change', () => set(s.value));
      const l = document.createElement('label');
      l.htmlFor = s.id;
      l.textContent = 'Theme';
      box.classList.add('theme');
      box.replaceChildren(l, s);
      selects.push(s);
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mount);
  else mount();

  window.HubChatTheme = { get: stored, set };
})();
