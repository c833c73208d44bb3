// The simulator behaves like JobProgress where the resource-aware cache relies on it.
import { afterEach, describe, expect, it } from 'vitest'
import { createSimulator, DEMO_TOKEN, type Simulator } from '../../simulator/app.js'

type Json = Record<string, unknown>

describe('simulator: JobProgress resource shapes', () => {
  let sim: Simulator | undefined
  afterEach(async () => {
    await sim?.close()
    sim = undefined
  })
  const get = async (path: string): Promise<Json> => {
    const r = await fetch(sim!.url + path, { headers: { authorization: `Bearer ${DEMO_TOKEN}` } })
    expect(r.status).toBe(200)
    return (await r.json()) as Json
  }
  const send = async (method: string, path: string, body: Json): Promise<Json> => {
    const r = await fetch(sim!.url + path, { method, headers: { authorization: `Bearer ${DEMO_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    expect(r.status).toBe(200)
    return (await r.json()) as Json
  }

  it('each include adds one top-level key and changes nothing else; dotted includes nest', async () => {
    sim = createSimulator()
    await sim.listen()
    const plain = (await get('/jobs/5')).data as Json
    const wide = (await get('/jobs/5?includes[]=customer&includes[]=address')).data as Json
    expect(Object.keys(wide)).toEqual([...Object.keys(plain), 'address', 'customer'])
    for (const k of Object.keys(plain)) expect(wide[k]).toEqual(plain[k])
    const dotted = (await get('/jobs/5?includes[]=customer.phones')).data as Json
    expect(Object.keys(dotted)).toEqual([...Object.keys(plain), 'customer'])
    expect((dotted.customer as Json).phones).toMatchObject({ data: expect.any(Array) })
    expect((wide.customer as Json).phones).toBeUndefined()
  })

  it('list items have the item shape', async () => {
    sim = createSimulator()
    await sim.listen()
    const list = (await get('/jobs?limit=3&includes[]=address')).data as Json[]
    const item = (await get(`/jobs/${String(list[0]!.id)}?includes[]=address`)).data as Json
    expect(list[0]).toEqual(item)
    expect(Object.keys(list[0]!)).toEqual(Object.keys(item))
  })

  it('an update answers {"data":...} in the plain shape, a create {"job":...} / {"customer":...}', async () => {
    sim = createSimulator()
    await sim.listen()
    const upd = await send('PUT', '/jobs/7', { name: 'Renamed' })
    expect(upd.data).toEqual((await get('/jobs/7')).data)
    const created = await send('POST', '/jobs', { customer_id: 3, name: 'New one' })
    const job = created.job as Json
    expect(job).toEqual((await get(`/jobs/${String(job.id)}`)).data)
    const cust = await send('POST', '/customers', { first_name: 'Zed' })
    expect(cust.customer).toEqual((await get(`/customers/${String((cust.customer as Json).id)}`)).data)
  })

  it('render() answers in-process without counting a call', async () => {
    sim = createSimulator({ rateLimit: 1 })
    await sim.listen()
    const direct = await get('/jobs/9?includes[]=reps')
    const rendered = await sim.render('/jobs/9?includes[]=reps')
    expect(rendered.status).toBe(200)
    expect(JSON.parse(rendered.body)).toEqual(direct)
    expect(sim.count()).toBe(1)
    expect((await sim.render('/jobs/9')).status).toBe(200) // not throttled either
  })

  it('the includesChangeBase quirk makes a narrower answer differ from the wider one beyond the included keys', async () => {
    sim = createSimulator()
    await sim.listen()
    sim.quirks.includesChangeBase = true
    const plain = (await get('/jobs/5')).data as Json
    const wide = (await get('/jobs/5?includes[]=customer')).data as Json
    expect(wide.description).not.toEqual(plain.description)
  })
})
