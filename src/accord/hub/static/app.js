// accord hub dashboard: a small script, no build step, nothing from the network.
// It only ever sets textContent: names from users and clients stay text.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { run: null, listed: false };

async function call(method, path, body) {
  const options = { method, headers: { 'x-accord-csrf': '1' } };
  if (body !== undefined) {
    options.headers['content-type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  const answer = await fetch(path, options);
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    const error = (data.error && data.error.message) || `the hub answered ${answer.status}`;
    throw new Error(error);
  }
  return data;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function size(bytes) {
  if (bytes === null || bytes === undefined) return '';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes, unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} B`;
}

function side(id) {
  const value = $(id).value || '';
  const at = value.indexOf(':');
  return { kind: value.slice(0, at), name: value.slice(at + 1) };
}

function pair() {
  return { left: side('left'), right: side('right'), mode: $('mode').value };
}

function say(id, text, bad) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle('error', Boolean(bad));
}

async function test(name) {
  say(`${name}-status`, 'testing…');
  try {
    const found = await call('POST', '/ui/api/check', { side: side(name) });
    if (found.ok) {
      const ro = found.read_only ? ', read only' : '';
      say(`${name}-status`, `ok: ${found.items} files, ${size(found.bytes)}${ro}`);
    } else {
      say(`${name}-status`, found.error, true);
    }
  } catch (error) {
    say(`${name}-status`, error.message, true);
  }
}

function rows() {
  return Array.from($('items').tBodies[0].rows);
}

function count() {
  const all = rows();
  const chosen = all.filter((row) => row.querySelector('input').checked).length;
  $('item-count').textContent = state.listed ? `${chosen} of ${all.length} selected` : '';
}

async function listItems() {
  say('item-count', 'listing…');
  try {
    const found = await call('POST', '/ui/api/items', pair());
    const body = $('items').tBodies[0];
    body.replaceChildren();
    for (const item of found.items) {
      const row = document.createElement('tr');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = true;
      box.dataset.key = item.key;
      box.addEventListener('change', count);
      const cell = el('td');
      cell.append(box);
      row.append(cell, el('td', item.key, 'key'), el('td', size(item.left)), el('td', size(item.right)));
      body.append(row);
    }
    $('items').hidden = false;
    state.listed = true;
    filter();
    count();
    if (found.more) say('item-count', `${$('item-count').textContent} (${found.more} more not listed)`);
  } catch (error) {
    say('item-count', error.message, true);
  }
}

function filter() {
  const text = $('filter').value.toLowerCase();
  for (const row of rows()) {
    const key = row.querySelector('input').dataset.key.toLowerCase();
    row.hidden = Boolean(text) && !key.includes(text);
  }
}

function selectShown(on) {
  for (const row of rows()) row.querySelector('input').checked = on && !row.hidden;
  count();
}

function keys() {
  if (!state.listed) return null;
  const all = rows();
  const chosen = all.filter((row) => row.querySelector('input').checked);
  if (chosen.length === all.length) return null;
  return chosen.map((row) => row.querySelector('input').dataset.key);
}

function describe(action) {
  const target = action.new_key ? ` → ${action.new_key}` : '';
  const where = action.side ? ` (${action.side})` : '';
  const bytes = action.size ? `, ${size(action.size)}` : '';
  return `${action.op} ${action.key}${target}${where}${bytes}`;
}

async function showPlan() {
  const box = $('plan');
  box.replaceChildren(el('p', 'planning…'));
  try {
    const found = await call('POST', '/ui/api/preview', { ...pair(), keys: keys() });
    box.replaceChildren();
    if (!found.ok) { box.append(el('p', found.error, 'error')); return; }
    box.append(el('p', `${found.actions.length} changes, ${found.conflicts.length} conflicts, ${size(found.bytes)} to copy`, 'summary'));
    const list = el('ul');
    list.id = 'plan-actions';
    for (const action of found.actions) list.append(el('li', describe(action)));
    for (const conflict of found.conflicts) list.append(el('li', `conflict ${conflict.key}: ${conflict.reason}`, 'conflict'));
    for (const line of [...found.guards, ...found.problems, ...found.notices]) list.append(el('li', line, 'warning'));
    box.append(list);
  } catch (error) {
    box.replaceChildren(el('p', error.message, 'error'));
  }
}

function log(line) {
  const pre = $('log');
  pre.textContent += `${line}\n`;
  pre.scrollTop = pre.scrollHeight;
}

async function start() {
  $('log').textContent = '';
  $('bar').value = 0;
  $('bar').max = 1;
  say('progress-text', 'starting…');
  try {
    const found = await call('POST', '/ui/api/runs', { ...pair(), keys: keys() });
    state.run = found.run;
    say('progress-text', 'planning…');
  } catch (error) {
    say('progress-text', error.message, true);
  }
}

function showRun(data) {
  const list = $('running');
  if (list) {
    let item = list.querySelector(`li[data-run="${CSS.escape(data.run)}"]`);
    if (!item) {
      item = el('li');
      item.dataset.run = data.run;
      list.append(item);
    }
    item.textContent = `${data.label || data.run}: ${data.done}/${data.total} (${data.state})`;
    if (data.state === 'done' || data.state === 'failed') item.classList.add('finished');
  }
  if (data.run !== state.run) return;
  const bar = $('bar');
  bar.max = Math.max(data.total, 1);
  bar.value = data.state === 'done' ? bar.max : Math.min(data.done, bar.max);
  for (const line of data.log || []) log(line);
  const text = data.state === 'failed' ? `failed: ${data.error}` : `${data.state}: ${data.done} of ${data.total}, ${size(data.bytes)}`;
  say('progress-text', text, data.state === 'failed');
  if (data.state === 'done' || data.state === 'failed') {
    $('bar').dataset.finished = data.state;
  }
}

function listen() {
  const feed = new EventSource('/api/v1/events');
  feed.addEventListener('progress', (event) => showRun(JSON.parse(event.data)));
  feed.addEventListener('run', (event) => {
    const data = JSON.parse(event.data);
    const list = $('running');
    if (!list || !data.collection) return;
    if (data.status === 'started') {
      list.append(el('li', `${data.collection}: a sync by ${data.user || '?'} started`, 'lock'));
    }
  });
  feed.addEventListener('open', () => { document.body.dataset.live = 'yes'; });
}

function wire() {
  const on = (id, what, handler) => { const node = $(id); if (node) node.addEventListener(what, handler); };
  on('logout', 'click', async () => {
    await call('DELETE', '/api/v1/session').catch(() => null);
    location.href = '/';
  });
  on('test-left', 'click', () => test('left'));
  on('test-right', 'click', () => test('right'));
  on('list', 'click', listItems);
  on('filter', 'input', filter);
  on('select-shown', 'click', () => selectShown(true));
  on('select-none', 'click', () => selectShown(false));
  on('preview', 'click', showPlan);
  on('start', 'click', start);
  for (const id of ['left', 'right']) {
    on(id, 'change', () => { state.listed = false; $('items').hidden = true; count(); });
  }
  if ($('sync')) listen();
}

wire();
