// npm run simulator: the JobProgress simulator on its own, configured by SIM_* variables.
import { createSimulator, DEMO_TOKEN, type ThrottleMode } from './app.js'

const env = process.env
const sim = createSimulator({
  rateLimit: Number(env.SIM_RATE_LIMIT ?? 60),
  rateWindowMs: Number(env.SIM_RATE_WINDOW_MS ?? 60_000),
  throttleMode: (env.SIM_THROTTLE_MODE as ThrottleMode | undefined) ?? 'retry-after',
  latencyMs: Number(env.SIM_LATENCY_MS ?? 0),
  tokens: env.SIM_TOKEN ? [env.SIM_TOKEN] : undefined,
})
const url = await sim.listen(Number(env.SIM_PORT ?? 8081), env.SIM_HOST ?? '127.0.0.1')
process.stdout.write(`JobProgress simulator on ${url}\n`)
if (!env.SIM_TOKEN) process.stdout.write(`accepted token: ${DEMO_TOKEN}\n`)
const stop = () => {
  sim.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
