// The dashboard: one self-contained page (no CDN), polling /_proxy/status.
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>jobprogress-proxy</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:2rem;color:#222;background:#fafafa}
 h1{font-size:1.3rem} .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:12px}
 .card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px}
 .v{font-size:1.6rem;font-weight:600} .l{color:#666;font-size:.85rem}
 .bar{height:8px;background:#eee;border-radius:4px;margin-top:6px} .bar>div{height:8px;background:#2a7;border-radius:4px}
</style></head><body>
<h1>jobprogress-proxy</h1>
<div class="grid" id="cards"></div>
<p class="l" id="foot">loading…</p>
<script>
const cards = [
 ['req_rate','requests/s'],['hit_ratio','hit ratio'],['budget','budget left in window'],['queue','queue depth'],
 ['throttled','429s absorbed'],['calls','upstream calls'],['bytes','cache bytes'],['entries','cache entries'],
];
const el = document.getElementById('cards');
for (const [id,label] of cards) el.insertAdjacentHTML('beforeend','<div class="card"><div class="v" id="'+id+'">–</div><div class="l">'+label+'</div><div class="bar"><div id="'+id+'_bar" style="width:0"></div></div></div>');
let last;
function set(id, v, frac){ document.getElementById(id).textContent = v; document.getElementById(id+'_bar').style.width = (frac===undefined?0:Math.max(0,Math.min(1,frac))*100)+'%'; }
async function tick(){
 try {
  const s = await (await fetch('/_proxy/status',{cache:'no-store'})).json();
  const c = s.cache, u = s.upstream, now = Date.now();
  const served = c.hits + c.misses + c.stale + c.bypass;
  if (last) set('req_rate', ((served - last.served) / ((now - last.t)/1000)).toFixed(1));
  last = { served, t: now };
  set('hit_ratio', served ? ((c.hits + c.stale) / served * 100).toFixed(1) + '%' : '–', served ? (c.hits + c.stale)/served : 0);
  set('budget', u.budget_left + ' / ' + u.budget_limit, u.budget_left / u.budget_limit);
  set('queue', u.queue_depth); set('throttled', u.throttled); set('calls', u.calls);
  set('bytes', (c.bytes/1048576).toFixed(2) + ' MiB', c.bytes / c.max_bytes); set('entries', c.entries);
  document.getElementById('foot').textContent = 'version ' + s.version + ' · up ' + s.uptime_seconds + ' s · updated ' + new Date().toLocaleTimeString();
 } catch (e) { document.getElementById('foot').textContent = 'status unavailable'; }
}
tick(); setInterval(tick, 2000);
</script></body></html>`
