// The dashboard: one self-contained page (no CDN, no chart library: the charts are plain SVG drawn by
// the page). It polls /_proxy/status every 2 s and /_proxy/history (15 minutes, a sample per 5 s).
import { TEAM_PANEL_HTML, TEAM_PANEL_SCRIPT } from './dashboard-team.js'

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jobprogress-proxy</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
 body{font:14px system-ui,sans-serif;margin:1.5rem 2rem;color:#222;background:#f6f7f9}
 h1{font-size:1.25rem;margin:0 0 1rem} h2{font-size:1rem;margin:1.5rem 0 .5rem}
 .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
 .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px}
 .card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 12px}
 .v{font-size:1.5rem;font-weight:600} .l{color:#667;font-size:.8rem}
 .bar{height:6px;background:#eceff3;border-radius:3px;margin-top:6px} .bar>div{height:6px;background:#2a7;border-radius:3px}
 svg{width:100%;height:140px;display:block} .axis{stroke:#ccd;stroke-width:1} .line{fill:none;stroke-width:2}
 .legend{font-size:.75rem;color:#556} table{border-collapse:collapse;width:100%;font-size:.85rem;background:#fff}
 td,th{border-bottom:1px solid #eee;padding:4px 8px;text-align:left} .warn{color:#b50}
</style></head><body>
<h1>jobprogress-proxy <span class="l" id="version"></span></h1>
<div class="grid" id="cards"></div>
<h2>Last 15 minutes</h2>
<div class="charts">
 <div class="card"><div class="l">requests per second</div><svg id="c_rps"></svg></div>
 <div class="card"><div class="l">cache hit ratio (hits and stale over all cacheable requests), %</div><svg id="c_hit"></svg></div>
 <div class="card"><div class="l">upstream calls in the trailing window (<span style="color:#27a">calls</span>) against the budget (<span style="color:#c44">UPSTREAM_RATE_LIMIT</span>)</div><svg id="c_calls"></svg></div>
 <div class="card"><div class="l">queue depth (<span style="color:#27a">waiting</span>) and budget left (<span style="color:#2a7">slots</span>)</div><svg id="c_queue"></svg></div>
</div>
<h2>Recent upstream errors</h2>
<table><thead><tr><th>time</th><th>call</th><th>status</th></tr></thead><tbody id="errors"><tr><td colspan="3">none</td></tr></tbody></table>
${TEAM_PANEL_HTML}
<p class="l" id="foot">loading…</p>
<script>
const cards = [
 ['req_rate','requests/s'],['hit_ratio','hit ratio'],['budget','budget left in window'],['queue','queue depth'],
 ['throttled','429s absorbed'],['calls','upstream calls'],['bytes','cache bytes / max'],['entries','cache entries'],
 ['unauth','upstream 401s (token)'],['token','token expires'],
];
const el = document.getElementById('cards');
for (const [id, label] of cards) {
  el.insertAdjacentHTML('beforeend', '<div class="card"><div class="v" id="' + id + '">–</div><div class="l">' + label +
    '</div><div class="bar"><div id="' + id + '_bar" style="width:0"></div></div></div>');
}
let last, limit = 0, windowMs = 60000;
function set(id, text, frac) {
  document.getElementById(id).textContent = text;
  document.getElementById(id + '_bar').style.width = (frac === undefined ? 0 : Math.max(0, Math.min(1, frac)) * 100) + '%';
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]); }
async function status() {
  try {
    const s = await (await fetch('/_proxy/status', { cache: 'no-store' })).json();
    const c = s.cache, u = s.upstream, now = Date.now();
    const cacheable = c.hits + c.misses + c.stale + c.bypass;
    if (last) set('req_rate', ((s.requests - last.requests) / ((now - last.t) / 1000)).toFixed(1));
    last = { requests: s.requests, t: now };
    limit = u.budget_limit; windowMs = u.window_ms;
    set('hit_ratio', cacheable ? ((c.hits + c.stale) / cacheable * 100).toFixed(1) + '%' : '–', cacheable ? (c.hits + c.stale) / cacheable : 0);
    set('budget', u.budget_left + ' / ' + u.budget_limit, u.budget_left / u.budget_limit);
    set('queue', String(u.queue_depth));
    set('throttled', String(u.throttled));
    set('calls', String(u.calls));
    set('bytes', (c.bytes / 1048576).toFixed(1) + ' / ' + (c.max_bytes / 1048576).toFixed(0) + ' MiB', c.bytes / c.max_bytes);
    set('entries', String(c.entries));
    set('unauth', String(u.unauthorized));
    document.getElementById('unauth').className = u.unauthorized ? 'v warn' : 'v';
    const days = s.token.expires_in_days;
    set('token', days === null ? 'unknown' : days < 0 ? 'expired' : 'in ' + days + ' d');
    document.getElementById('token').className = days !== null && days <= 14 ? 'v warn' : 'v';
    document.getElementById('version').textContent = 'v' + s.version + ' · up ' + s.uptime_seconds + ' s';
    const rows = u.recent_errors.slice().reverse().map((e) =>
      '<tr><td>' + esc(e.time.slice(11, 19)) + '</td><td>' + esc(e.method + ' ' + e.path) + '</td><td>' + esc(e.status) + '</td></tr>');
    document.getElementById('errors').innerHTML = rows.length ? rows.join('') : '<tr><td colspan="3">none</td></tr>';
    document.getElementById('foot').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById('foot').textContent = 'status unavailable';
  }
}
function chart(id, series, maxHint) {
  const svg = document.getElementById(id), W = Math.max(200, svg.clientWidth || 400), H = 140, P = 24;
  svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  const n = Math.max(2, ...series.map((s) => s.points.length));
  const max = Math.max(maxHint || 0, 1, ...series.flatMap((s) => s.points));
  let out = '<line class="axis" x1="' + P + '" y1="' + (H - P) + '" x2="' + W + '" y2="' + (H - P) + '"/>' +
    '<line class="axis" x1="' + P + '" y1="4" x2="' + P + '" y2="' + (H - P) + '"/>' +
    '<text x="2" y="12" font-size="10" fill="#667">' + (max >= 10 ? Math.round(max) : max.toFixed(1)) + '</text>' +
    '<text x="2" y="' + (H - P) + '" font-size="10" fill="#667">0</text>' +
    '<text x="' + P + '" y="' + (H - 6) + '" font-size="10" fill="#667">-15 min</text>' +
    '<text x="' + (W - 24) + '" y="' + (H - 6) + '" font-size="10" fill="#667">now</text>';
  for (const s of series) {
    const pts = s.points.map((v, i) => {
      const x = P + (W - P) * (n - s.points.length + i) / (n - 1);
      const y = (H - P) - (H - P - 6) * v / max;
      return x.toFixed(1) + ',' + y.toFixed(1);
    });
    if (pts.length) out += '<polyline class="line" stroke="' + s.color + '" points="' + pts.join(' ') + '"' + (s.dash ? ' stroke-dasharray="4 3"' : '') + '/>';
  }
  svg.innerHTML = out;
}
async function history() {
  try {
    const h = await (await fetch('/_proxy/history', { cache: 'no-store' })).json();
    const s = h.samples, step = h.interval_ms / 1000;
    const d = (k) => s.slice(1).map((x, i) => Math.max(0, x[k] - s[i][k]));
    const rps = d('requests').map((v) => v / step);
    const hits = d('hits'), stale = d('stale'), misses = d('misses'), bypass = d('bypass');
    const ratio = hits.map((v, i) => { const all = v + stale[i] + misses[i] + bypass[i]; return all ? (v + stale[i]) / all * 100 : 0; });
    const calls = d('calls'), per = Math.max(1, Math.round(windowMs / h.interval_ms));
    const inWindow = calls.map((_, i) => calls.slice(Math.max(0, i - per + 1), i + 1).reduce((a, b) => a + b, 0));
    chart('c_rps', [{ points: rps, color: '#27a' }]);
    chart('c_hit', [{ points: ratio, color: '#2a7' }], 100);
    chart('c_calls', [{ points: inWindow, color: '#27a' }, { points: inWindow.map(() => limit), color: '#c44', dash: true }], limit);
    chart('c_queue', [{ points: s.map((x) => x.queue), color: '#27a' }, { points: s.map((x) => x.budget), color: '#2a7' }]);
  } catch (e) {
    document.getElementById('foot').textContent = 'history unavailable';
  }
}
${TEAM_PANEL_SCRIPT}
status(); history();
setInterval(status, 2000); setInterval(history, 5000);
</script></body></html>`
