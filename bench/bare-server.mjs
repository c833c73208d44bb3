// The hit-path reference: a bare Fastify route sending the same bytes from memory, in its own process.
// argv: <body file> <headers json>; prints its URL on stdout.
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'

const body = readFileSync(process.argv[2])
const headers = JSON.parse(process.argv[3])
const app = Fastify({ logger: false })
app.get('/*', async (_req, reply) => reply.headers(headers).send(body))
const address = await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(`${address}\n`)
process.once('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
})
