// The only entry that listens: load the config, build the app, listen, close with grace.
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ConfigError, loadConfig, readToken, type LoadedConfig } from './config.js'

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let loaded: LoadedConfig
  try {
    loaded = loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`jobprogress-proxy: configuration error: ${err.message}\n`)
      process.exit(1)
    }
    throw err
  }
  const { config } = loaded
  const app = await buildApp(loaded)

  // SIGHUP is not a shutdown here: it re-reads JOBPROGRESS_TOKEN_FILE (below)
  closeWithGrace({ delay: 10_000, skip: ['SIGHUP'] }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'closing after an error')
    else app.log.info({ signal }, 'shutting down: finishing requests in flight')
    await app.close()
  })

  // SIGHUP also reopens AUDIT_LOG (log rotation)
  process.on('SIGHUP', () => {
    if (!config.auditLog) return
    app.audit.reopen()
    app.log.info('AUDIT_LOG reopened')
  })

  process.on('SIGHUP', () => {
    if (!config.tokenFile) {
      app.log.info('SIGHUP: no JOBPROGRESS_TOKEN_FILE to re-read')
      return
    }
    try {
      app.upstream.setToken(readToken(env, config.tokenFile))
      app.log.info('token re-read from JOBPROGRESS_TOKEN_FILE')
    } catch (err) {
      app.log.error({ message: (err as Error).message }, 'token file re-read failed; keeping the current token')
    }
  })

  try {
    const address = await app.listen({ host: config.host, port: config.port })
    app.log.info({ address, host: config.host, port: config.port, upstream: config.apiUrl.href }, 'jobprogress-proxy listening')
  } catch (err) {
    process.stderr.write(`jobprogress-proxy: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}\n`)
    process.exit(1)
  }
}

// Run when executed directly (node dist/server.js), not when imported by the CLI or tests.
const entry = process.argv[1] ? pathToFileURL(realpathSync(process.argv[1])).href : ''
if (import.meta.url === entry) {
  main().catch((err: unknown) => {
    process.stderr.write(`jobprogress-proxy: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exit(1)
  })
}
