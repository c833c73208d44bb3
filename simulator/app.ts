// A JobProgress look-alike for the demo, the tests and the benchmarks: the shapes, quirks and
// fixed-window throttle of docs/jobprogress.md, plus fault injection. It shares no code with the proxy.
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { makeData, timestamp, type Row, type SimData } from './data.js'
import { registerDebugRoutes, type DebugControl } from './debug.js'

export type ThrottleMode = 'retry-after' | 'bare' | 'legacy500'

export interface SimulatorOptions {
  /** tokens the simulator accepts (one company); default: DEMO_TOKEN */
  tokens?: string[]
  rateLimit?: number
  rateWindowMs?: number
  throttleMode?: ThrottleMode
  /** added to every answer */
  latencyMs?: number
  seed?: number
  logger?: boolean
  /** random faults on API calls (soak): share of resets and of hangs (for hangMs) */
  chaos?: { reset?: number; hang?: number; hangMs?: number }
}

/** Test-only departures from JobProgress's behaviour (the proxy's safety checks must catch them). */
export interface Quirks {
  /** an answer with includes[] also changes a base field (description): a projection of it is wrong */
  includesChangeBase: boolean
  /** an update's answer (`data`) shows a field other than what a GET shows right after */
  updateAnswerDiffers: boolean
  /** an update's answer (`data`) carries one more key than a GET's item */
  updateAnswerExtraKey: boolean
}

export type FaultKind = 'reset' | 'reset-mid-body' | 'hang' | 'status' | 'html' | 'truncate' | 'not-json' | 'delay' | 'throttle' | 'no-store' | 'answer' | 'headers'

export interface Fault {
  kind: FaultKind
  method?: string
  /** a path under /api/v3, exact or a RegExp */
  path?: string | RegExp
  /** how many calls it hits; default 1, Infinity for all */
  times?: number
  /** 'delay', 'hang' (optional upper bound) */
  ms?: number
  /** 'status', 'answer' (any status, 600 too: written with Node's own writeHead) */
  status?: number
  /** 'answer': the whole body; 'headers': none (the real answer gets the headers) */
  body?: string | Buffer
  /** 'answer' and 'headers': headers sent */
  headers?: Record<string, string>
}

export interface CallRecord {
  time: number
  method: string
  /** the URL as received, path and query */
  url: string
  /** path under /api/v3 */
  path: string
  status: number | 'fault'
  /** when the answer was written in full */
  finishedAt?: number
  /** the Authorization header that arrived (tests check it; the simulator is test-only) */
  authorization: string | undefined
  headers: Record<string, string | string[] | undefined>
  bodyBytes: number
  body: string
}

/** A JWT-shaped demo token (header.payload.signature, not a real signature). */
export const DEMO_TOKEN =
  'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.' +
  Buffer.from(JSON.stringify({ aud: '1', jti: 'demo', sub: 'simulator', exp: 4102444800 })).toString('base64url') +
  '.' +
  'c2ltdWxhdG9yLW5vdC1hLXJlYWwtc2lnbmF0dXJl'

export interface Simulator {
  app: FastifyInstance
  /** http://127.0.0.1:PORT/api/v3 once listening */
  url: string
  calls: CallRecord[]
  /** answers that were the throttle (429 or legacy 500) */
  throttled: number
  /** API calls being answered now, and the most at once since the start or reset() */
  inFlight: number
  peakInFlight: number
  data: SimData
  options: Required<Omit<SimulatorOptions, 'seed' | 'logger' | 'chaos'>>
  inject(fault: Fault): void
  /** the test-only /_debug/ routes (debug.ts) */
  debug: DebugControl
  clearFaults(): void
  /** another program of the same company spends `n` calls of the current window */
  spend(n: number): void
  /** calls that reached the handler (counted by the throttle), optionally for one path */
  count(path?: string | RegExp, method?: string): number
  /** test-only behaviour switches; see Quirks */
  quirks: Quirks
  /**
   * What the simulator would answer to GET `pathAndQuery` (under /api/v3, e.g. /jobs/1?includes[]=x)
   * right now, rendered in-process: not recorded, not throttled, no faults. The bench's oracle.
   */
  render(pathAndQuery: string, host?: string): Promise<{ status: number; body: string }>
  reset(): void
  listen(port?: number, host?: string): Promise<string>
  close(): Promise<void>
}

const API = '/api/v3'
const RENDER_HEADER = 'x-simulator-render'

function json(reply: FastifyReply, status: number, body: unknown) {
  return reply.code(status).type('application/json').send(JSON.stringify(body))
}

function error(reply: FastifyReply, status: number, message: string, extra: Row = {}) {
  return json(reply, status, { error: { status_code: status, message, ...extra } })
}

/**
 * The includes PHP and Fractal see, from the raw query in order: `includes=a,b` is a string split on
 * commas, `includes[]`/`includes[N]` items are whole names; a later `includes=` replaces an array, a
 * later `includes[]` replaces a string, `includes[N]` twice keeps the later. Unknown names are ignored later.
 */
function includesOf(request: FastifyRequest): Set<string> {
  let str: string | undefined
  let arr: Map<string, string> | undefined
  let next = 0
  for (const [k, v] of new URLSearchParams((request.raw.url ?? '').split('?')[1] ?? '')) {
    const m = /^includes(?:\[(\d*)\])?$/.exec(k)
    if (!m) continue
    if (m[1] === undefined) {
      str = v
      arr = undefined
      continue
    }
    if (!arr) {
      arr = new Map()
      next = 0
    }
    const index = m[1] === '' ? String(next) : m[1]
    arr.set(index, v)
    if (/^(0|[1-9]\d*)$/.test(index)) next = Math.max(next, Number(index) + 1)
  }
  const items = arr ? [...arr.values()] : (str ?? '').split(',')
  return new Set(items.map((i) => i.trim()).filter(Boolean))
}

/** a=1&b[]=2&b[]=3&c[0][d]=4 -> nested object (Laravel/PHP style). */
export function parseForm(text: string): Row {
  const out: Row = {}
  for (const [key, value] of new URLSearchParams(text)) {
    const names = key.match(/^[^[]+|\[[^\]]*\]/g)?.map((s) => s.replace(/^\[|\]$/g, '')) ?? [key]
    let node: Record<string, unknown> | unknown[] = out
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!
      const next = names[i + 1]
      const container = next === undefined ? value : next === '' || /^\d+$/.test(next) ? [] : {}
      if (name === '' && Array.isArray(node)) {
        node.push(container)
        node = container as Row
        continue
      }
      const n = node as Record<string, unknown>
      if (next === undefined) n[name] = value
      else n[name] ??= container
      node = n[name] as Row
    }
  }
  return out
}

export function createSimulator(opts: SimulatorOptions = {}): Simulator {
  const options = {
    tokens: opts.tokens ?? [DEMO_TOKEN],
    rateLimit: opts.rateLimit ?? 60,
    rateWindowMs: opts.rateWindowMs ?? 60_000,
    throttleMode: opts.throttleMode ?? 'retry-after',
    latencyMs: opts.latencyMs ?? 0,
  }
  const app = Fastify({ logger: opts.logger ?? false, bodyLimit: 100 * 1024 * 1024, forceCloseConnections: true })
  let data = makeData(opts.seed)
  let faults: Array<Fault & { left: number }> = []
  const hanging = new Set<FastifyReply>()
  let windowStart = 0
  let used = 0
  // deterministic chaos: a small PRNG of its own
  let chaosState = (opts.seed ?? 42) * 7919
  const rnd = () => {
    chaosState = (chaosState * 1103515245 + 12345) % 2147483648
    return chaosState / 2147483648
  }

  let debugControl: DebugControl | undefined
  // in-process renders carry this secret: they skip recording, the throttle and faults
  const renderSecret = randomBytes(16).toString('hex')
  const isRender = (request: FastifyRequest) => request.headers[RENDER_HEADER] === renderSecret

  const sim: Simulator = {
    app,
    debug: { release: () => debugControl?.release() },
    url: '',
    calls: [],
    throttled: 0,
    inFlight: 0,
    peakInFlight: 0,
    data,
    options,
    quirks: { includesChangeBase: false, updateAnswerDiffers: false, updateAnswerExtraKey: false },
    async render(pathAndQuery, host = '127.0.0.1') {
      const r = await app.inject({ method: 'GET', url: API + pathAndQuery, headers: { host, [RENDER_HEADER]: renderSecret } })
      return { status: r.statusCode, body: r.body }
    },
    inject(f) {
      faults.push({ ...f, left: f.times ?? 1 })
    },
    clearFaults() {
      faults = []
    },
    spend(n) {
      rollWindow()
      used += n
    },
    count(path, method) {
      return sim.calls.filter((c) => (method === undefined || c.method === method) && (path === undefined || (typeof path === 'string' ? c.path === path : path.test(c.path)))).length
    },
    reset() {
      sim.calls.length = 0
      sim.throttled = 0
      sim.peakInFlight = 0
      faults = []
      used = 0
      data = makeData(opts.seed)
      sim.data = data
    },
    async listen(port = 0, host = '127.0.0.1') {
      await app.listen({ port, host })
      const addr = app.server.address()
      const p = typeof addr === 'object' && addr ? addr.port : port
      sim.url = `http://${host}:${p}${API}`
      return sim.url
    },
    async close() {
      for (const r of hanging) r.raw.destroy()
      hanging.clear()
      await app.close()
    },
  }

  function rollWindow() {
    const start = Math.floor(Date.now() / options.rateWindowMs) * options.rateWindowMs
    if (start !== windowStart) {
      windowStart = start
      used = 0
    }
  }

  // Every call is recorded as it arrives, with its body exactly as sent (even when it does not parse).
  const records = new WeakMap<object, CallRecord>()
  const keep = (req: FastifyRequest, raw: string | Buffer) => {
    const rec = records.get(req.raw)
    if (!rec) return
    const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : raw
    rec.body = text.slice(0, 4096)
    rec.bodyBytes = Buffer.byteLength(raw)
  }
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    keep(req, body as string)
    try {
      done(null, (body as string) === '' ? {} : JSON.parse(body as string))
    } catch {
      done(Object.assign(new Error("Body is not valid JSON but content-type is set to 'application/json'"), { statusCode: 400 }), undefined)
    }
  })
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (req, body, done) => {
    keep(req, body as string)
    done(null, parseForm(body as string))
  })
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (req, body, done) => {
    keep(req, body as Buffer)
    done(null, body)
  })
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    keep(req, body as Buffer)
    done(null, body)
  })

  app.addHook('onRequest', async (request, reply) => {
    if (isRender(request)) return
    const url = request.raw.url ?? '/'
    const rec: CallRecord = {
      time: Date.now(),
      method: request.method,
      url,
      path: url.split('?', 1)[0]!.slice(API.length) || '/',
      status: 0,
      authorization: request.headers.authorization,
      headers: { ...request.headers },
      bodyBytes: 0,
      body: '',
    }
    records.set(request.raw, rec)
    sim.calls.push(rec)
    sim.peakInFlight = Math.max(sim.peakInFlight, ++sim.inFlight)
    reply.raw.once('close', () => sim.inFlight--)
    reply.raw.once('finish', () => {
      rec.finishedAt = Date.now()
      if (rec.status === 0) rec.status = reply.statusCode
    })
    reply.header('cache-control', 'no-cache, private')
    reply.header('set-cookie', `laravel_session=${randomBytes(12).toString('hex')}; path=/; httponly`)
  })

  // Record, authenticate, throttle, inject faults: in that order, like the real stack.
  app.addHook('preHandler', async (request, reply) => {
    const url = request.raw.url ?? '/'
    const path = url.split('?', 1)[0]!.slice(API.length) || '/'
    if (isRender(request)) return
    const rec = records.get(request.raw)!
    if (!url.startsWith(API + '/') && url !== API) return
    const auth = request.headers.authorization
    const token = auth?.startsWith('Bearer ') ? auth.slice(7) : undefined
    if (!token || !options.tokens.includes(token)) return error(reply, 401, 'Unauthenticated.')

    rollWindow()
    used++
    const remaining = Math.max(0, options.rateLimit - used)
    const overLimit = used > options.rateLimit
    const forced = takeFault(request, path, 'throttle')
    if (overLimit || forced) {
      sim.throttled++
      const untilReset = Math.ceil((windowStart + options.rateWindowMs - Date.now()) / 1000)
      if (options.throttleMode === 'legacy500') {
        return error(reply, 500, 'An internal error occured.', {
          error_details: 'Too Many Attempts. in file /var/www/vendor/laravel/framework/src/Illuminate/Routing/Middleware/ThrottleRequests.php on line 56',
        })
      }
      if (options.throttleMode === 'retry-after') reply.header('retry-after', String(Math.max(1, untilReset)))
      reply.header('x-ratelimit-limit', String(options.rateLimit))
      reply.header('x-ratelimit-remaining', '0')
      return error(reply, 429, 'Too Many Attempts.')
    }
    reply.header('x-ratelimit-limit', String(options.rateLimit))
    reply.header('x-ratelimit-remaining', String(remaining))
    if (options.latencyMs) await sleep(options.latencyMs)

    const chaos = opts.chaos
    if (chaos) {
      const roll = rnd()
      if (roll < (chaos.reset ?? 0)) {
        rec.status = 'fault'
        request.raw.socket.destroy()
        return reply.hijack()
      }
      if (roll < (chaos.reset ?? 0) + (chaos.hang ?? 0)) {
        rec.status = 'fault'
        await sleep(chaos.hangMs ?? 60_000)
        if (reply.raw.destroyed) return reply.hijack()
      }
    }
    const added = takeFault(request, path, 'headers')
    if (added?.headers) reply.headers(added.headers)
    const answer = takeFault(request, path, 'answer')
    if (answer) {
      rec.status = answer.status ?? 200
      reply.hijack()
      reply.raw.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...reply.getHeaders(), ...answer.headers } as Record<string, string>)
      reply.raw.end(answer.body ?? '')
      return
    }
    for (const kind of ['reset', 'hang', 'status', 'html', 'delay'] as const) {
      const f = takeFault(request, path, kind)
      if (!f) continue
      if (kind === 'reset') {
        rec.status = 'fault'
        request.raw.socket.destroy()
        return reply.hijack()
      }
      if (kind === 'hang') {
        rec.status = 'fault'
        hanging.add(reply)
        if (f.ms) await sleep(f.ms)
        else await new Promise<void>((resolve) => reply.raw.once('close', () => resolve()))
        hanging.delete(reply)
        if (reply.raw.destroyed) return reply.hijack()
        continue
      }
      if (kind === 'status') return error(reply, f.status ?? 503, f.status === 503 ? 'Service Unavailable' : 'An internal error occured.')
      if (kind === 'html')
        return reply
          .code(f.status ?? 502)
          .type('text/html')
          .send('<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>')
      if (kind === 'delay') await sleep(f.ms ?? 100)
    }
  })

  // Faults that need the real answer first: decided in onSend, on the serialized body.
  app.addHook('onSend', async (request, reply, payload) => {
    const path = (request.raw.url ?? '/').split('?', 1)[0]!.slice(API.length) || '/'
    if (reply.statusCode >= 400 || isRender(request)) return payload
    if (takeFault(request, path, 'no-store')) reply.header('cache-control', 'no-store, private')
    if (takeFault(request, path, 'not-json')) {
      reply.type('text/plain')
      return 'OK, but not JSON'
    }
    const truncate = takeFault(request, path, 'truncate') ? 'truncate' : takeFault(request, path, 'reset-mid-body') ? 'reset' : undefined
    if (truncate) {
      const text = typeof payload === 'string' ? payload : String(payload)
      const raw = reply.raw
      const headers = [`HTTP/1.1 200 OK`, `content-type: application/json`, `content-length: ${Buffer.byteLength(text) + 100}`]
      const socket = request.raw.socket
      socket.write(headers.join('\r\n') + '\r\n\r\n' + text.slice(0, Math.floor(text.length / 2)))
      if (truncate === 'truncate') socket.end()
      else socket.destroy()
      reply.hijack()
      void raw
      return payload
    }
    return payload
  })

  function takeFault(request: FastifyRequest, path: string, kind: FaultKind): Fault | undefined {
    const i = faults.findIndex(
      (f) => f.kind === kind && f.left > 0 && (f.method === undefined || f.method === request.method) && (f.path === undefined || (typeof f.path === 'string' ? f.path === path : f.path.test(path))),
    )
    if (i < 0) return undefined
    const f = faults[i]!
    f.left--
    return f
  }

  registerRoutes(app, () => data, sim.quirks)
  debugControl = registerDebugRoutes(app)
  app.setNotFoundHandler((_req, reply) => json(reply, 404, { message: 'Not found' }))
  app.setErrorHandler((err, _req, reply) => {
    const status = (err as { statusCode?: number }).statusCode ?? 500
    if (status < 500) return error(reply, status, (err as Error).message)
    return error(reply, 500, 'An internal error occured.')
  })
  return sim
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

// ---------------------------------------------------------------- routes

function registerRoutes(app: FastifyInstance, db: () => SimData, quirks: Quirks): void {
  const num = (v: unknown, d: number) => {
    const n = Number(v)
    return Number.isFinite(n) && n > 0 ? Math.floor(n) : d
  }

  function paginate(request: FastifyRequest, reply: FastifyReply, rows: Row[], present: (r: Row) => Row) {
    const q = request.query as Record<string, unknown>
    const limit = Math.min(100, num(q.limit, 10))
    const page = num(q.page, 1)
    const total = rows.length
    const totalPages = Math.max(1, Math.ceil(total / limit))
    const slice = rows.slice((page - 1) * limit, page * limit)
    const base = `http://${request.headers.host}${(request.raw.url ?? '').split('?', 1)[0]}`
    const link = (p: number) => {
      const params = new URLSearchParams((request.raw.url ?? '').split('?')[1] ?? '')
      params.set('page', String(p))
      return `${base}?${params.toString()}`
    }
    const links: Record<string, string> = {}
    if (page > 1) links.previous = link(page - 1)
    if (page < totalPages) links.next = link(page + 1)
    return json(reply, 200, {
      data: slice.map(present),
      meta: { pagination: { total, count: slice.length, per_page: limit, current_page: page, total_pages: totalPages, links } },
      status: 200,
    })
  }

  const publicFields = (r: Row): Row => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('_')))

  // Fractal: "customer.phones" includes customer, and phones inside it; each include adds one
  // top-level key to the item and changes nothing else (unless a test switches that quirk on)
  const nested = (inc: Set<string>, name: string) => new Set([...inc].filter((n) => n.startsWith(name + '.')).map((n) => n.slice(name.length + 1)))
  const top = (inc: Set<string>) => new Set([...inc].map((n) => n.split('.', 1)[0]!))
  const quirk = (out: Row, inc: Set<string>) => {
    if (quirks.includesChangeBase && inc.size > 0 && 'description' in out) out.description = `${String(out.description)} (with includes)`
    if (quirks.includesChangeBase && inc.size > 0 && 'note' in out) out.note = `${String(out.note)} (with includes)`
    return out
  }

  function presentCustomer(d: SimData, c: Row, all: Set<string>): Row {
    const out = quirk(publicFields(c), all)
    const inc = top(all)
    if (inc.has('rep')) out.rep = d.users.find((u) => u.id === c._rep_id) ?? null
    if (inc.has('address')) out.address = d.addresses.get(c._address_id as number) ?? null
    if (inc.has('billing')) out.billing = d.addresses.get(c._address_id as number) ?? null
    if (inc.has('phones')) out.phones = { data: c._phones }
    if (inc.has('jobs')) out.jobs = { data: d.jobs.filter((j) => j.customer_id === c.id).map((j) => presentJob(d, j, nested(all, 'jobs'))) }
    if (inc.has('contacts')) out.contacts = { data: [] }
    return out
  }

  function presentJob(d: SimData, j: Row, all: Set<string>): Row {
    const out = quirk(publicFields(j), all)
    const inc = top(all)
    const ids = (k: string) => (j[k] as number[]) ?? []
    if (inc.has('address')) out.address = d.addresses.get(j._address_id as number) ?? null
    if (inc.has('reps')) out.reps = { data: d.users.filter((u) => ids('_rep_ids').includes(u.id as number)) }
    if (inc.has('estimators')) out.estimators = { data: [] }
    if (inc.has('customer')) {
      const c = d.customers.find((x) => x.id === j.customer_id)
      out.customer = c ? presentCustomer(d, c, nested(all, 'customer')) : null
    }
    if (inc.has('sub_contractors')) out.sub_contractors = { data: [] }
    if (inc.has('parent')) out.parent = null
    if (inc.has('projects')) out.projects = { data: [] }
    if (inc.has('work_types')) out.work_types = { data: [] }
    if (inc.has('trades')) out.trades = { data: d.trades.filter((t) => ids('_trade_ids').includes(t.id as number)) }
    if (inc.has('job_notes')) out.job_notes = { data: d.notes.filter((n) => n.job_id === j.id) }
    if (inc.has('division')) out.division = d.divisions.find((x) => x.id === j._division_id) ?? null
    if (inc.has('flags')) out.flags = { data: [] }
    if (inc.has('insurance_details')) out.insurance_details = j.insurance ? { insurance_company: 'Acme Mutual', claim_number: `CL-${j.id}` } : null
    if (inc.has('financial_details')) out.financial_details = financial(j)
    return out
  }

  function financial(j: Row): Row {
    const total = ((j.id as number) * 1234.5) % 25000
    return { total_job_amount: total.toFixed(2), total_received_payemnt: (total / 2).toFixed(2), pending_payment: (total / 2).toFixed(2) }
  }

  const updated = (r: Row): Row => {
    const out = publicFields(r)
    if (quirks.updateAnswerDiffers) out.updated_at = '1999-01-01 00:00:00'
    if (quirks.updateAnswerExtraKey) out.changed_fields = []
    return out
  }

  const body = (request: FastifyRequest): Row => {
    const b = request.body
    if (b && typeof b === 'object' && !Buffer.isBuffer(b)) return b as Row
    return {}
  }

  const idParam = (request: FastifyRequest) => Number((request.params as { id: string }).id)

  // customers
  app.get(`${API}/customers`, async (request, reply) => {
    const d = db()
    const q = request.query as Record<string, unknown>
    const inc = includesOf(request)
    const term = String(q.query ?? q.keyword ?? '').toLowerCase()
    const rows = term ? d.customers.filter((c) => `${c.first_name} ${c.last_name} ${c.company_name} ${c.email}`.toLowerCase().includes(term)) : d.customers
    return paginate(request, reply, rows, (c) => presentCustomer(d, c, inc))
  })
  app.get(`${API}/customers/:id`, async (request, reply) => {
    const d = db()
    const c = d.customers.find((x) => x.id === idParam(request))
    if (!c) return error(reply, 404, 'Customer Not Found')
    return json(reply, 200, { data: presentCustomer(d, c, includesOf(request)), status: 200 })
  })
  app.post(`${API}/customers`, async (request, reply) => {
    const d = db()
    const b = body(request)
    const validation: Record<string, string[]> = {}
    if (!b.first_name && !b.company_name) validation.first_name = ['The first name field is required.']
    if (b.email && !/^[^@\s]+@[^@\s]+$/.test(String(b.email))) validation.email = ['The email must be a valid email address.']
    if (Object.keys(validation).length) return error(reply, 412, 'Invalid data.', { validation })
    const now = timestamp(400)
    const c: Row = {
      id: d.nextId.customers!++,
      company_name: String(b.company_name ?? ''),
      first_name: String(b.first_name ?? ''),
      last_name: String(b.last_name ?? ''),
      email: String(b.email ?? ''),
      additional_emails: [],
      referred_by_type: String(b.referred_by_type ?? 'other'),
      call_required: false,
      appointment_required: false,
      note: String(b.note ?? ''),
      is_commercial: b.is_commercial ? 1 : 0,
      created_at: now,
      updated_at: now,
      deleted_at: null,
      _address_id: 1,
      _rep_id: 1,
      _phones: Array.isArray(b.phones) ? b.phones : [],
    }
    d.customers.push(c)
    return json(reply, 200, { message: 'Customer saved successfully.', customer: publicFields(c), status: 200 })
  })
  app.put(`${API}/customers/:id`, async (request, reply) => {
    const d = db()
    const c = d.customers.find((x) => x.id === idParam(request))
    if (!c) return error(reply, 412, 'No records found!')
    const b = body(request)
    for (const k of ['company_name', 'first_name', 'last_name', 'email', 'note', 'referred_by_type']) if (b[k] !== undefined) c[k] = String(b[k])
    c.updated_at = timestamp(401)
    return json(reply, 200, { message: 'Customer updated successfully.', data: updated(c), status: 200 })
  })

  // jobs
  app.get(`${API}/jobs`, async (request, reply) => {
    const d = db()
    const q = request.query as Record<string, unknown>
    const inc = includesOf(request)
    let rows = d.jobs
    const term = String(q.keyword ?? '').toLowerCase()
    if (term) rows = rows.filter((j) => `${j.name} ${j.number} ${j.description}`.toLowerCase().includes(term))
    if (q.customer_id) rows = rows.filter((j) => j.customer_id === Number(q.customer_id))
    if (q.job_number) rows = rows.filter((j) => j.number === q.job_number)
    const ids = q['job_ids[]'] ?? q.job_ids
    if (ids) {
      const set = new Set((Array.isArray(ids) ? ids : [ids]).map(Number))
      rows = rows.filter((j) => set.has(j.id as number))
    }
    const stages = q['stages[]'] ?? q.stages
    if (stages) {
      const set = new Set((Array.isArray(stages) ? stages : [stages]).map(String))
      rows = rows.filter((j) => set.has((j.current_stage as Row).code as string))
    }
    if (q.sort_by === 'id' && String(q.sort_order).toLowerCase() === 'desc') rows = [...rows].reverse()
    return paginate(request, reply, rows, (j) => presentJob(d, j, inc))
  })
  app.get(`${API}/jobs/:id`, async (request, reply) => {
    const d = db()
    const j = d.jobs.find((x) => x.id === idParam(request))
    if (!j) return error(reply, 404, 'Job Not Found')
    return json(reply, 200, { data: presentJob(d, j, includesOf(request)), status: 200 })
  })
  app.post(`${API}/jobs`, async (request, reply) => {
    const d = db()
    const b = body(request)
    const validation: Record<string, string[]> = {}
    if (!b.customer_id) validation.customer_id = ['The customer id field is required.']
    else if (!d.customers.some((c) => c.id === Number(b.customer_id))) validation.customer_id = ['The selected customer id is invalid.']
    if (Object.keys(validation).length) return error(reply, 412, 'Invalid data.', { validation })
    const id = d.nextId.jobs!++
    const now = timestamp(402)
    const j: Row = {
      id,
      name: String(b.name ?? `Job ${id}`),
      number: `2101-${String(id).padStart(4, '0')}`,
      customer_id: Number(b.customer_id),
      description: String(b.description ?? ''),
      created_by: 1,
      created_at: now,
      updated_at: now,
      call_required: false,
      appointment_required: false,
      tax_rate: null,
      alt_id: null,
      lead_number: String(5000 + id),
      duration: '0:0:1',
      completion_date: null,
      contract_signed_date: null,
      current_stage: { name: 'Lead', color: 'cl-blue', code: 'LEAD' },
      insurance: 0,
      archived: null,
      _address_id: 1,
      _trade_ids: [],
      _rep_ids: [],
      _division_id: 1,
    }
    d.jobs.push(j)
    return json(reply, 200, { message: 'Job saved successfully.', job: publicFields(j), status: 200 })
  })
  app.put(`${API}/jobs/:id`, async (request, reply) => {
    const d = db()
    const j = d.jobs.find((x) => x.id === idParam(request))
    if (!j) return error(reply, 412, 'No records found!')
    const b = body(request)
    for (const k of ['name', 'description', 'alt_id', 'lead_number', 'tax_rate']) if (b[k] !== undefined) j[k] = b[k]
    j.updated_at = timestamp(403)
    return json(reply, 200, { message: 'Job updated successfully.', data: updated(j), status: 200 })
  })
  app.get(`${API}/jobs/:id/notes`, async (request, reply) => {
    const d = db()
    const id = idParam(request)
    if (!d.jobs.some((x) => x.id === id)) return error(reply, 412, 'No records found!')
    return paginate(
      request,
      reply,
      d.notes.filter((n) => n.job_id === id),
      (n) => n,
    )
  })
  app.post(`${API}/jobs/:id/notes`, async (request, reply) => {
    const d = db()
    const id = idParam(request)
    if (!d.jobs.some((x) => x.id === id)) return error(reply, 412, 'No records found!')
    const b = body(request)
    if (!b.note) return error(reply, 412, 'Invalid data.', { validation: { note: ['The note field is required.'] } })
    const n = { id: d.nextId.notes!++, job_id: id, note: String(b.note), created_by: 1, created_at: timestamp(404) }
    d.notes.push(n)
    return json(reply, 200, { message: 'Job note saved successfully.', data: n, status: 200 })
  })
  app.put(`${API}/jobs/notes/:id`, async (request, reply) => {
    const d = db()
    const n = d.notes.find((x) => x.id === idParam(request))
    if (!n) return error(reply, 412, 'No records found!')
    const b = body(request)
    if (b.note !== undefined) n.note = String(b.note)
    return json(reply, 200, { message: 'Job note updated successfully.', data: n, status: 200 })
  })
  app.get(`${API}/jobs/:id/financial_summary`, async (request, reply) => {
    const j = db().jobs.find((x) => x.id === idParam(request))
    if (!j) return error(reply, 412, 'No records found!')
    return json(reply, 200, { data: financial(j), status: 200 })
  })
  app.get(`${API}/jobs/:id/invoices`, async (request, reply) => {
    const j = db().jobs.find((x) => x.id === idParam(request))
    if (!j) return error(reply, 412, 'No records found!')
    return paginate(request, reply, [{ id: j.id, job_id: j.id, title: 'Invoice 1', total_amount: financial(j).total_job_amount, status: 'open' }], (r) => r)
  })
  app.get(`${API}/jobs/:id/payment_history`, async (request, reply) => {
    const j = db().jobs.find((x) => x.id === idParam(request))
    if (!j) return error(reply, 412, 'No records found!')
    return paginate(request, reply, [], (r) => r)
  })
  app.post(`${API}/jobs/:id/estimates/upload`, async (request, reply) => {
    const j = db().jobs.find((x) => x.id === idParam(request))
    if (!j) return error(reply, 412, 'No records found!')
    const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
    const name = /filename="([^"]*)"/.exec(raw.subarray(0, 4096).toString('latin1'))?.[1] ?? 'upload'
    if (!raw.length) return error(reply, 412, 'Invalid data.', { validation: { file: ['The file field is required.'] } })
    return json(reply, 200, { message: 'File uploaded successfully.', data: { id: db().nextId.resources!++, job_id: j.id, name, size: raw.length }, status: 200 })
  })
  app.get(`${API}/job/:id/resources`, async (request, reply) => paginate(request, reply, [], (r) => r))
  app.post(`${API}/resources/upload`, async (_request, reply) => json(reply, 200, { message: 'File uploaded successfully.', data: { id: db().nextId.resources!++ }, status: 200 }))

  // the rest of the sample
  const list = (path: string, rows: (d: SimData) => Row[]) => app.get(`${API}${path}`, async (request, reply) => paginate(request, reply, rows(db()), (r) => r))
  list('/company/users', (d) => d.users)
  list('/company/trades', (d) => d.trades)
  list('/workflow/stages', (d) => d.stages)
  list('/countries', (d) => d.countries)
  list('/referrals', (d) => d.referrals)
  list('/divisions', (d) => d.divisions)
  list('/appointments', (d) => d.appointments)
  app.get(`${API}/countries/:id/states`, async (request, reply) =>
    paginate(
      request,
      reply,
      db().states.filter((s) => s.country_id === idParam(request)),
      (r) => r,
    ),
  )
  app.post(`${API}/appointments`, async (request, reply) => {
    const d = db()
    const b = body(request)
    if (!b.title) return error(reply, 412, 'Invalid data.', { validation: { title: ['The title field is required.'] } })
    const a = {
      id: d.nextId.appointments!++,
      title: String(b.title),
      job_id: Number(b.job_id ?? 0) || null,
      user_id: 1,
      start_date_time: String(b.start_date_time ?? timestamp(405)),
      end_date_time: String(b.end_date_time ?? timestamp(405, 3600)),
      location: String(b.location ?? ''),
    }
    d.appointments.push(a)
    return json(reply, 200, { message: 'Appointment saved successfully.', appointment: a, status: 200 })
  })
  app.put(`${API}/appointments/:id`, async (request, reply) => {
    const a = db().appointments.find((x) => x.id === idParam(request))
    if (!a) return error(reply, 412, 'No records found!')
    const b = body(request)
    for (const k of ['title', 'location', 'start_date_time', 'end_date_time']) if (b[k] !== undefined) a[k] = String(b[k])
    return json(reply, 200, { message: 'Appointment updated successfully.', data: a, status: 200 })
  })
  app.post(`${API}/prospects`, async (request, reply) => {
    const b = body(request)
    if (!b.first_name) return error(reply, 412, 'Invalid data.', { validation: { first_name: ['The first name field is required.'] } })
    return json(reply, 200, { message: 'Prospect saved successfully.', prospect: { id: db().nextId.prospects!++, ...b }, status: 200 })
  })
}
