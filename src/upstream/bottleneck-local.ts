// Bottleneck's in-process datastore yields to the event loop with setTimeout(0) before each of its
// operations, to behave like its Redis datastore. setTimeout(0) is at least 1 ms, and a job takes
// several of them: measured +4 ms on every upstream call and ~4 ms between the calls of a burst
// (bench/results). Yielding with setImmediate keeps the same ordering without the timer floor.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const LocalDatastore = require('bottleneck/lib/LocalDatastore.js') as {
  prototype: { yieldLoop(t?: number): Promise<void>; Promise: PromiseConstructor }
}

let patched = false

export function fastLocalYield(): void {
  if (patched) return
  patched = true
  LocalDatastore.prototype.yieldLoop = function (t = 0) {
    return new this.Promise<void>((resolve) => (t > 0 ? setTimeout(resolve, t) : setImmediate(resolve)))
  }
}
