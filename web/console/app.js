// app.js - the console's shell: who is logged in, the navigation, and the hash router that
// picks a page (#/offenses, #/offenses/ID, #/users, #/users/NAME, #/search, #/refsets,
// #/rules, #/ingest). Hash routes keep every page one static index.html, so the server needs
// no knowledge of the console's pages.
import { html, render, useEffect, useState } from './vendor/htm-preact.mjs';
import { call, get, setCsrf, whenUnauthorized } from './api.js';
import { ErrorLine } from './ui.js';
import { OffenseList, OffensePage } from './offenses.js';
import { UserList, UserPage } from './users.js';
import { SearchPage } from './search.js';
import { IngestPage, RefsetsPage, RulesPage } from './admin.js';

function useHash() {
  const [hash, setHash] = useState(window.location.hash || '#/offenses');
  useEffect(() => {
    const on = () => setHash(window.location.hash || '#/offenses');
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function Login({ onDone }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await call('POST', '/session', { body: { name, password } });
      onDone(r.data);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login"><form onSubmit=${submit} aria-label="Log in">
    <h1>coinhound</h1>
    <label>Account <input name="name" autocomplete="username" value=${name} required autofocus
      onInput=${(e) => setName(e.target.value)} /></label>
    <label>Password <input name="password" type="password" autocomplete="current-password"
      value=${password} required onInput=${(e) => setPassword(e.target.value)} /></label>
    <button type="submit" disabled=${busy}>Log in</button>
    <${ErrorLine} error=${error} />
  </form></main>`;
}

function ChangePassword({ session, onDone }) {
  const [old, setOld] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    if (next !== again) { setError(new Error('The two new passwords differ.')); return; }
    try {
      const r = await call('PUT', '/session/password', { body: { old_password: old, new_password: next } });
      onDone(r.data);
    } catch (err) { setError(err); }
  };
  return html`<main class="login"><form onSubmit=${submit} aria-label="Choose a new password">
    <h1>New password</h1>
    <p>${session.name}, the password you were given works once: choose your own.</p>
    <label>One-time password <input type="password" autocomplete="current-password" value=${old}
      required onInput=${(e) => setOld(e.target.value)} /></label>
    <label>New password <input type="password" autocomplete="new-password" value=${next} required
      onInput=${(e) => setNext(e.target.value)} /></label>
    <label>New password again <input type="password" autocomplete="new-password" value=${again}
      required onInput=${(e) => setAgain(e.target.value)} /></label>
    <button type="submit">Save</button>
    <${ErrorLine} error=${error} />
  </form></main>`;
}

const NAV = [
  ['#/offenses', 'Offenses'], ['#/users', 'Users'], ['#/search', 'Search'],
  ['#/refsets', 'Reference sets'], ['#/rules', 'Rules'], ['#/ingest', 'Ingest'],
];

function Shell({ session, onLogout }) {
  const hash = useHash();
  const [path, query] = hash.slice(1).split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || '');
  let page;
  switch (parts[0]) {
    case 'offenses':
      page = parts[1] ? html`<${OffensePage} id=${parts[1]} session=${session} />`
        : html`<${OffenseList} session=${session} params=${params} />`;
      break;
    case 'users':
      page = parts[1] ? html`<${UserPage} name=${parts[1]} />` : html`<${UserList} />`;
      break;
    case 'search': page = html`<${SearchPage} params=${params} />`; break;
    case 'refsets': page = html`<${RefsetsPage} session=${session} />`; break;
    case 'rules': page = html`<${RulesPage} session=${session} />`; break;
    case 'ingest': page = html`<${IngestPage} session=${session} />`; break;
    default: page = html`<p>No such page. <a href="#/offenses">Offenses</a></p>`;
  }
  return html`<div class="shell">
    <header><a class="brand" href="#/offenses">coinhound</a>
      <nav aria-label="Main">${NAV.map(([h, t]) => html`<a href=${h}
        aria-current=${hash.startsWith(h) ? 'page' : undefined}>${t}</a>`)}</nav>
      <span class="who">${session.name} (${session.role})</span>
      <button class="link" onClick=${onLogout}>Log out</button></header>
    <main id="main">${page}</main></div>`;
}

function App() {
  const [session, setSession] = useState(undefined);
  const adopt = (s) => { setCsrf(s ? s.csrf_token : null); setSession(s); };
  // Who am I: a reloaded page has its cookie but not the CSRF token, which this hands out anew.
  const refresh = () => get('/session').then((s) => adopt(s && s.via === 'session' ? s : null), () => adopt(null));
  useEffect(() => { whenUnauthorized(() => adopt(null)); refresh(); }, []);
  if (session === undefined) return html`<p class="muted">Loading…</p>`;
  if (session === null) return html`<${Login} onDone=${adopt} />`;
  if (session.must_change_password) {
    // The change ends every session of the account and answers with a new one (cookie and
    // CSRF token); when it does not, log in again with the new password.
    return html`<${ChangePassword} session=${session}
      onDone=${(s) => (s && s.csrf_token ? adopt(s) : refresh())} />`;
  }
  const logout = () => call('DELETE', '/session').finally(() => adopt(null));
  return html`<${Shell} session=${session} onLogout=${logout} />`;
}

render(html`<${App} />`, document.getElementById('app'));
