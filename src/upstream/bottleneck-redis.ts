// Bottleneck's Redis datastore recovers from a lost settings key (Redis restarted without persistence,
// keys deleted) and from an unknown client id by comparing the script error's message with "===".
// Redis 7 words script errors differently, so the comparison fails and every later call errors
// (bottleneck issues #205, #212). This wrapper matches the markers anywhere in the message.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

interface RedisDatastoreProto {
  runScript: (this: RedisDatastoreProto, name: string, args: unknown[]) => Promise<unknown>
  prepareInitSettings(clear: boolean): unknown[]
  instance: { queued(): number }
}

let patched = false

export function redisRecoveryFix(): void {
  if (patched) return
  patched = true
  const RedisDatastore = require('bottleneck/lib/RedisDatastore.js') as { prototype: RedisDatastoreProto }
  const original = RedisDatastore.prototype.runScript
  RedisDatastore.prototype.runScript = function (this: RedisDatastoreProto, name: string, args: unknown[]) {
    return original.call(this, name, args).catch((e: unknown) => {
      const message = String((e as Error)?.message ?? '')
      if (message !== 'SETTINGS_KEY_NOT_FOUND' && message.includes('SETTINGS_KEY_NOT_FOUND')) {
        if (name === 'heartbeat') return undefined
        return this.runScript('init', this.prepareInitSettings(false)).then(() => this.runScript(name, args))
      }
      if (message !== 'UNKNOWN_CLIENT' && message.includes('UNKNOWN_CLIENT')) {
        return this.runScript('register_client', [this.instance.queued()]).then(() => this.runScript(name, args))
      }
      throw e
    })
  }
}
