// The dashboard's "who spends the budget" panel: top clients and top routes by upstream calls over the
// last 15 minutes, with each client's share (CLIENT_BUDGET_SHARES) and its use of the current window.
// Polls GET /_proxy/usage. Plain strings spliced into DASHBOARD_HTML (no backticks, no ${ here).
export const TEAM_PANEL_HTML = `
<h2>Who spends the budget (last 15 minutes)</h2>
<div class="charts">
 <div class="card"><div class="l">top clients by upstream calls</div>
  <table><thead><tr><th>client</th><th>calls</th><th>this window / share</th><th>requests</th><th>hits</th><th>queue waits</th><th>503s</th></tr></thead>
  <tbody id="top_clients"><tr><td colspan="7">none</td></tr></tbody></table></div>
 <div class="card"><div class="l">top routes by upstream calls</div>
  <table><thead><tr><th>route</th><th>calls</th></tr></thead>
  <tbody id="top_routes"><tr><td colspan="2">none</td></tr></tbody></table></div>
</div>`

export const TEAM_PANEL_SCRIPT = `
async function usage() {
  try {
    const u = await (await fetch('/_proxy/usage', { cache: 'no-store' })).json();
    const calls = new Map(u.top_clients.map((c) => [c.client, c.upstream_calls]));
    const names = Object.keys(u.clients).sort((a, b) => (calls.get(b) || 0) - (calls.get(a) || 0) || a.localeCompare(b)).slice(0, 10);
    const rows = names.map((n) => {
      const c = u.clients[n];
      const share = c.window_cap === null ? String(c.window_calls) : c.window_calls + ' / ' + c.window_cap + ' (' + c.share_percent + '%)';
      return '<tr data-client="' + esc(n) + '"><td>' + esc(n) + '</td><td class="calls">' + (calls.get(n) || 0) + '</td><td class="share">' + esc(share) +
        '</td><td>' + c.requests + '</td><td>' + (c.hits + c.stale) + '</td><td>' + c.queue_waits + '</td><td' + (c.rejected_503 ? ' class="warn"' : '') + '>' + c.rejected_503 + '</td></tr>';
    });
    document.getElementById('top_clients').innerHTML = rows.length ? rows.join('') : '<tr><td colspan="7">none</td></tr>';
    const routes = u.top_routes.map((r) => '<tr data-route="' + esc(r.route) + '"><td>' + esc(r.route) + '</td><td class="calls">' + r.upstream_calls + '</td></tr>');
    document.getElementById('top_routes').innerHTML = routes.length ? routes.join('') : '<tr><td colspan="2">none</td></tr>';
  } catch (e) {
    document.getElementById('foot').textContent = 'usage unavailable';
  }
}
usage(); setInterval(usage, 2000);
`
