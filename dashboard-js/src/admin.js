// The admins' settings: API keys (create, shown once; revoke) and shared links (create with an
// optional password, copy, revoke), through the collector's /admin endpoints.
import { h, fill } from './dom.js';
import { t } from './i18n.js';
import { admin } from './api.js';
import { formatInstant } from './format.js';

/** Renders the settings page into `main`. */
export function renderSettings(main, app) {
  const keys = h('section', { class: 'card settings', 'aria-labelledby': 'keys-title' });
  const links = h('section', { class: 'card settings', 'aria-labelledby': 'links-title' });
  main.append(h('h1', { class: 'page-title' }, t(app.lang, 'settings')), keys, links);
  renderKeys(keys, app);
  renderLinks(links, app);
}

function errorLine(lang, e) {
  return h('p', { class: 'error', role: 'alert' }, t(lang, 'error', { message: e.message }));
}

function copyButton(lang, text) {
  const b = h('button', { type: 'button', onclick: async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = t(lang, 'copied');
    } catch {
      // no clipboard (plain http, permissions): select the text so it can be copied by hand
      const field = b.parentElement?.querySelector('input');
      field?.select();
    }
  } }, t(lang, 'copy'));
  return b;
}

function status(lang, revoked) {
  return revoked ? t(lang, 'revoked', { date: formatInstant(lang, revoked) }) : t(lang, 'live');
}

async function renderKeys(box, app, created) {
  const { lang, config, sites } = app;
  const list = h('div', {}, h('p', { class: 'muted' }, t(lang, 'loading')));
  const form = h('form', { class: 'admin-form', onsubmit: async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const chosen = data.getAll('sites').map(Number);
    try {
      const made = await admin(config, config.admin.keys, { name: String(data.get('name')), sites: chosen.length ? chosen : [app.state.site] });
      renderKeys(box, app, made);
    } catch (err) {
      form.append(errorLine(lang, err));
    }
  } },
    h('label', {}, t(lang, 'key_name'), h('input', { name: 'name', required: true, maxlength: '100', autocomplete: 'off' })),
    h('fieldset', {}, h('legend', {}, t(lang, 'key_sites')),
      sites.map((s) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'sites', value: String(s.id), checked: s.id === app.state.site }), s.name))),
    h('button', { type: 'submit' }, t(lang, 'key_create')));
  fill(box,
    h('h2', { id: 'keys-title' }, t(lang, 'keys_title')),
    h('p', { class: 'muted' }, t(lang, 'keys_intro')),
    created ? h('div', { class: 'secret', role: 'status' }, h('p', {}, t(lang, 'key_created')),
      h('div', { class: 'copy-row' }, h('input', { readonly: true, value: created.key, 'aria-label': t(lang, 'key_created'), size: '60' }), copyButton(lang, created.key))) : null,
    list, form);
  try {
    const answer = await admin(config, config.admin.keys);
    const siteName = (id) => sites.find((s) => s.id === id)?.name ?? String(id);
    fill(list, answer.keys.length ? h('div', { class: 'scroll' }, h('table', { class: 'admin' },
      h('thead', {}, h('tr', {}, ['key_name', 'key_sites', 'created', 'status', 'actions'].map((k) => h('th', { scope: 'col' }, t(lang, k))))),
      h('tbody', {}, answer.keys.map((k) => h('tr', {},
        h('th', { scope: 'row' }, k.name || k.id),
        h('td', {}, (k.sites ?? []).map(siteName).join(', ')),
        h('td', {}, formatInstant(lang, k.created)),
        h('td', {}, status(lang, k.revoked)),
        h('td', {}, k.revoked ? '' : h('button', { type: 'button', onclick: async () => {
          if (!confirm(t(lang, 'revoke_confirm', { name: k.name || k.id }))) return;
          try {
            await admin(config, `${config.admin.keys}/${encodeURIComponent(k.id)}/revoke`, {});
            renderKeys(box, app);
          } catch (err) {
            list.append(errorLine(lang, err));
          }
        } }, t(lang, 'revoke')))))))) : h('p', { class: 'muted' }, t(lang, 'none_yet')));
  } catch (e) {
    fill(list, errorLine(lang, e));
  }
}

async function renderLinks(box, app) {
  const { lang, config, sites } = app;
  const list = h('div', {}, h('p', { class: 'muted' }, t(lang, 'loading')));
  const form = h('form', { class: 'admin-form', onsubmit: async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const password = String(data.get('password') ?? '');
    try {
      await admin(config, config.admin.links, { site: Number(data.get('site')), name: String(data.get('name')), password: password || null });
      renderLinks(box, app);
    } catch (err) {
      form.append(errorLine(lang, err));
    }
  } },
    h('label', {}, t(lang, 'link_site'), h('select', { name: 'site' }, sites.map((s) => h('option', { value: String(s.id), selected: s.id === app.state.site }, s.name)))),
    h('label', {}, t(lang, 'link_name'), h('input', { name: 'name', required: true, maxlength: '100', autocomplete: 'off' })),
    h('label', {}, t(lang, 'link_password'), h('input', { name: 'password', type: 'password', autocomplete: 'new-password' })),
    h('button', { type: 'submit' }, t(lang, 'link_create')));
  fill(box, h('h2', { id: 'links-title' }, t(lang, 'links_title')), h('p', { class: 'muted' }, t(lang, 'links_intro')), list, form);
  try {
    const answer = await admin(config, config.admin.links);
    const siteName = (id) => sites.find((s) => s.id === id)?.name ?? String(id);
    fill(list, answer.links.length ? h('div', { class: 'scroll' }, h('table', { class: 'admin' },
      h('thead', {}, h('tr', {}, ['link_name', 'link_site', 'link_url', 'created', 'status', 'actions'].map((k) => h('th', { scope: 'col' }, t(lang, k))))),
      h('tbody', {}, answer.links.map((l) => h('tr', {},
        h('th', { scope: 'row' }, l.name, l.protected ? h('span', { class: 'badge' }, t(lang, 'link_protected')) : null),
        h('td', {}, siteName(l.site)),
        h('td', {}, l.revoked ? '' : h('div', { class: 'copy-row' }, h('input', { readonly: true, value: l.url, 'aria-label': `${t(lang, 'link_url')}: ${l.name}` }), copyButton(lang, l.url))),
        h('td', {}, formatInstant(lang, l.created)),
        h('td', {}, status(lang, l.revoked)),
        h('td', {}, l.revoked ? '' : h('button', { type: 'button', onclick: async () => {
          if (!confirm(t(lang, 'revoke_confirm', { name: l.name }))) return;
          try {
            await admin(config, `${config.admin.links}/${encodeURIComponent(l.id)}/revoke`, {});
            renderLinks(box, app);
          } catch (err) {
            list.append(errorLine(lang, err));
          }
        } }, t(lang, 'revoke')))))))) : h('p', { class: 'muted' }, t(lang, 'none_yet')));
  } catch (e) {
    fill(list, errorLine(lang, e));
  }
}
