// nginx as the reference cache: proxy_cache with a forced TTL in front of the simulator (it attaches
// the token itself), proxy_cache_lock on. Started from a config of its own in a temp dir.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEMO_TOKEN } from '../simulator/app.js'
import { freePort, sleep } from './lib.js'

export const hasNginx = (): boolean => spawnSync('nginx', ['-v']).status === 0

export interface Nginx {
  url: string
  close(): Promise<void>
}

export async function startNginx(simUrl: string, ttlSeconds: number): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'jpp-nginx-'))
  for (const d of ['cache', 'body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d))
  const port = await freePort()
  const sim = new URL(simUrl)
  const conf = `
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=jp:32m max_size=512m inactive=60m use_temp_path=off;
  upstream sim { server ${sim.host}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location /api/v3/ {
      proxy_pass http://sim;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer ${DEMO_TOKEN}";
      proxy_cache jp;
      proxy_cache_key $request_uri;
      proxy_cache_valid 200 ${ttlSeconds}s;
      proxy_ignore_headers Cache-Control Set-Cookie Expires;
      proxy_hide_header Set-Cookie;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 30s;
      add_header X-Cache $upstream_cache_status;
    }
  }
}`
  writeFileSync(join(dir, 'nginx.conf'), conf)
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${url}/nothing`).then(
        () => true,
        () => false,
      )
    )
      break
    await sleep(50)
  }
  return {
    url,
    close: () =>
      new Promise<void>((r) => {
        child.once('exit', () => r())
        child.kill('SIGQUIT')
      }),
  }
}
