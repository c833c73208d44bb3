// Deterministic JobProgress-shaped data (see docs/jobprogress.md). The same seed gives the same data.

export type Row = Record<string, unknown>

export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const FIRST = ['Ava', 'Ben', 'Cara', 'Dan', 'Eve', 'Finn', 'Gia', 'Hank', 'Ivy', 'Jon', 'Kim', 'Leo', 'Mia', 'Ned', 'Oli']
const LAST = ['Smith', 'Jones', 'Brown', 'Garcia', 'Miller', 'Davis', 'Lopez', 'Wilson', 'Moore', 'Clark']
const CITIES = ['Austin', 'Denver', 'Tampa', 'Boise', 'Reno', 'Omaha', 'Tulsa']
const STAGES = [
  { name: 'Lead', color: 'cl-blue', code: 'LEAD' },
  { name: 'Estimate', color: 'cl-purple', code: 'EST' },
  { name: 'Contract', color: 'cl-green', code: 'CON' },
  { name: 'Production', color: 'cl-orange', code: 'PROD' },
  { name: 'Paid', color: 'cl-gray', code: 'PAID' },
]

export function timestamp(day: number, second = 0): string {
  const d = new Date(Date.UTC(2021, 0, 1) + day * 86_400_000 + second * 1000)
  return d.toISOString().replace('T', ' ').slice(0, 19)
}

export interface SimData {
  users: Row[]
  trades: Row[]
  stages: Row[]
  countries: Row[]
  states: Row[]
  referrals: Row[]
  divisions: Row[]
  customers: Row[]
  jobs: Row[]
  notes: Row[]
  appointments: Row[]
  addresses: Map<number, Row>
  nextId: Record<string, number>
}

export function makeData(seed = 42): SimData {
  const rnd = prng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!
  const users = Array.from({ length: 8 }, (_, i) => ({
    id: i + 1,
    first_name: FIRST[i % FIRST.length],
    last_name: LAST[i % LAST.length],
    full_name: `${FIRST[i % FIRST.length]} ${LAST[i % LAST.length]}`,
    email: `user${i + 1}@example.com`,
    group_id: i === 0 ? 1 : 2,
  }))
  const trades = ['Roofing', 'Siding', 'Gutters', 'Windows', 'Painting'].map((name, i) => ({ id: i + 1, name }))
  const stages = STAGES.map((s, i) => ({ id: i + 1, ...s, position: i + 1 }))
  const countries = [
    { id: 1, name: 'United States', code: 'US', currency_name: 'Dollar', currency_symbol: '$' },
    { id: 2, name: 'Canada', code: 'CA', currency_name: 'Dollar', currency_symbol: '$' },
  ]
  const states = [
    { id: 1, name: 'Texas', code: 'TX', country_id: 1 },
    { id: 2, name: 'Colorado', code: 'CO', country_id: 1 },
    { id: 3, name: 'Florida', code: 'FL', country_id: 1 },
    { id: 4, name: 'Ontario', code: 'ON', country_id: 2 },
  ]
  const referrals = ['Website', 'Yard sign', 'Neighbor', 'Insurance'].map((name, i) => ({ id: i + 1, name }))
  const divisions = ['North', 'South'].map((name, i) => ({ id: i + 1, name, code: name.slice(0, 1) }))
  const addresses = new Map<number, Row>()
  let addressId = 0
  const address = (): Row => {
    const id = ++addressId
    const state = pick(states.slice(0, 3))
    const a = {
      id,
      address: `${100 + Math.floor(rnd() * 900)} ${pick(LAST)} St`,
      address_line_1: '',
      city: pick(CITIES),
      state_id: state.id,
      state,
      country_id: 1,
      country: countries[0],
      zip: String(10000 + Math.floor(rnd() * 89999)),
      lat: Number((30 + rnd() * 10).toFixed(6)),
      long: Number((-100 + rnd() * 10).toFixed(6)),
    }
    addresses.set(id, a)
    return a
  }
  const customers = Array.from({ length: 57 }, (_, i) => {
    const first = pick(FIRST)
    const last = pick(LAST)
    const day = i * 3
    return {
      id: i + 1,
      company_name: i % 5 === 0 ? `${last} Holdings` : '',
      first_name: first,
      last_name: last,
      email: `${first.toLowerCase()}.${last.toLowerCase()}${i + 1}@example.com`,
      additional_emails: [],
      referred_by_type: pick(['referral', 'customer', 'other']),
      call_required: rnd() < 0.3,
      appointment_required: rnd() < 0.5,
      note: '',
      is_commercial: i % 5 === 0 ? 1 : 0,
      created_at: timestamp(day, 36000),
      updated_at: timestamp(day + 1, 36000),
      deleted_at: null,
      _address_id: address().id,
      _rep_id: 1 + (i % users.length),
      _phones: [{ label: 'cell', number: `555${String(1000000 + i * 7919).slice(0, 7)}`, ext: null }],
    }
  })
  const jobs = Array.from({ length: 150 }, (_, i) => {
    const customer = customers[i % customers.length]!
    const day = 10 + i * 2
    return {
      id: i + 1,
      name: `${customer.last_name} ${pick(['roof', 'siding', 'gutters', 'windows'])}`,
      number: `2101-${String(i + 1).padStart(4, '0')}`,
      customer_id: customer.id,
      description: `Job ${i + 1} for ${customer.first_name} ${customer.last_name}`,
      created_by: 1 + (i % users.length),
      created_at: timestamp(day, 40000),
      updated_at: timestamp(day + 1, 40000),
      call_required: rnd() < 0.2,
      appointment_required: rnd() < 0.4,
      tax_rate: pick([null, '6.25', '8.00']),
      alt_id: null,
      lead_number: String(5000 + i),
      duration: pick(['0:0:1', '0:0:2', '0:1:0']),
      completion_date: null,
      contract_signed_date: i % 3 === 0 ? timestamp(day + 5) : null,
      current_stage: STAGES[i % STAGES.length],
      insurance: i % 4 === 0 ? 1 : 0,
      archived: null,
      _address_id: address().id,
      _trade_ids: [1 + (i % trades.length)],
      _rep_ids: [1 + (i % users.length)],
      _division_id: 1 + (i % divisions.length),
      _stage: i % STAGES.length,
    }
  })
  const notes: Row[] = []
  for (const job of jobs) {
    const n = (job.id as number) % 4
    for (let k = 0; k < n; k++) {
      notes.push({ id: notes.length + 1, job_id: job.id, note: `Note ${k + 1} on job ${job.id}`, created_by: 1, created_at: timestamp(20 + (job.id as number), k * 60) })
    }
  }
  const appointments = Array.from({ length: 20 }, (_, i) => ({
    id: i + 1,
    title: `Inspection ${i + 1}`,
    job_id: 1 + i * 3,
    user_id: 1 + (i % users.length),
    start_date_time: timestamp(200 + i, 32400),
    end_date_time: timestamp(200 + i, 36000),
    location: `${100 + i} Main St`,
  }))
  return {
    users,
    trades,
    stages,
    countries,
    states,
    referrals,
    divisions,
    customers,
    jobs,
    notes,
    appointments,
    addresses,
    nextId: { customers: 58, jobs: 151, notes: notes.length + 1, appointments: 21, prospects: 1, resources: 1 },
  }
}
