// The last 15 minutes of the proxy's figures, one sample every 5 s, for the dashboard's charts.
// Counters are cumulative; the page draws their differences.

export interface Sample {
  t: number
  requests: number
  hits: number
  misses: number
  stale: number
  bypass: number
  calls: number
  throttled: number
  unauthorized: number
  queue: number
  budget: number
  bytes: number
}

export class History {
  readonly samples: Sample[] = []
  readonly #max: number
  readonly #take: () => Promise<Omit<Sample, 't'>>
  #timer: NodeJS.Timeout | undefined

  constructor(
    readonly intervalMs: number,
    spanMs: number,
    take: () => Promise<Omit<Sample, 't'>>,
  ) {
    this.#max = Math.ceil(spanMs / intervalMs)
    this.#take = take
  }

  start(): void {
    // a sample that fails (Redis away while reading the budget) is skipped, never an unhandled rejection
    const tick = () => {
      this.sample().catch(() => undefined)
    }
    tick()
    this.#timer = setInterval(tick, this.intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  async sample(): Promise<void> {
    this.samples.push({ t: Date.now(), ...(await this.#take()) })
    if (this.samples.length > this.#max) this.samples.shift()
  }
}
