/**
 * Each alias's generation in an epoch (`<prefix>gen:<mac>`, 16 random bytes, TTL two epochs): entry
 * names mix it in, and a purge replaces it, so that no instance finds the old entries once it has
 * re-read the generation. Read (or created, SET NX GET) at most once per `memoMs`; while Redis cannot
 * be reached, the last reading serves for `graceMs`.
 */
import { generationName, newGeneration, type EpochKeys } from './cache-crypto.js'
import type { EpochState } from './epoch-secrets.js'
import type { GuardedRedis } from './guarded-redis.js'
import { SingleFlight } from './single-flight.js'

/** What an entry's name depends on besides the DEK's own key: the epoch and the alias's generation. */
export interface CacheScope {
  readonly epoch: number
  readonly generation: Buffer
  readonly keys: EpochKeys
  /** The epoch and generation as text: what L1 entries are stamped with, so a purge anywhere hides them too. */
  readonly stamp: string
}

export interface ScopeResult {
  readonly scope: CacheScope
  /** false: Redis could not be reached just now, and the scope is the last one read (within the grace). */
  readonly online: boolean
}

interface EpochGenerations {
  /** Bumped by each purge here, so that a read that started before it is not kept. */
  purges: number
  readonly known: Map<string, { scope: CacheScope; confirmedAt: number }>
  readonly flights: SingleFlight<ScopeResult | undefined>
}

export interface GenerationsOptions {
  readonly prefix: string
  readonly memoMs: number
  readonly graceMs: number
  readonly recordTtlMs: number
  readonly now: () => number
}

export class Generations {
  /** Per epoch state: a state replaced (its record changed) takes its generations with it. */
  private readonly epochs = new WeakMap<EpochState, EpochGenerations>()

  constructor(
    private readonly redis: GuardedRedis,
    private readonly options: GenerationsOptions,
  ) {}

  /** The alias's scope in this epoch. `online` false: the epoch could not be confirmed just now, so Redis is not tried. */
  async scope(state: EpochState, alias: string, online: boolean): Promise<ScopeResult | undefined> {
    const generations = this.of(state)
    const known = generations.known.get(alias)
    const now = this.options.now()
    if (known && now - known.confirmedAt < this.options.memoMs) return { scope: known.scope, online }
    if (!online) return known && now - known.confirmedAt < this.options.graceMs ? { scope: known.scope, online: false } : undefined
    return generations.flights.run(alias, async () => {
      const started = this.options.now()
      const purges = generations.purges
      const candidate = newGeneration()
      const read = await this.redis.run('generation', (redis) => redis.setBuffer(this.key(state, alias), candidate, 'PX', this.options.recordTtlMs, 'NX', 'GET'))
      const current = generations.known.get(alias)
      if (!read.ok) return current && started - current.confirmedAt < this.options.graceMs ? { scope: current.scope, online: false } : undefined
      // A purge here while the read was on its way has already put the newer generation in the memo.
      if (generations.purges !== purges && current) return { scope: current.scope, online: true }
      const token = Buffer.isBuffer(read.value) ? read.value : candidate
      const scope = current?.scope.generation.equals(token) ? current.scope : scopeOf(state, token)
      generations.known.set(alias, { scope, confirmedAt: started })
      return { scope, online: true }
    })
  }

  /** Replaces the alias's generation in this epoch; false when Redis could not be written. `now`: when the purge began. */
  async replace(state: EpochState, alias: string, now: number): Promise<boolean> {
    const token = newGeneration()
    const written = await this.redis.run('purge', (redis) => redis.set(this.key(state, alias), token, 'PX', this.options.recordTtlMs))
    if (!written.ok) return false
    const generations = this.of(state)
    generations.purges++
    generations.known.set(alias, { scope: scopeOf(state, token), confirmedAt: now })
    return true
  }

  private of(state: EpochState): EpochGenerations {
    let generations = this.epochs.get(state)
    if (!generations) this.epochs.set(state, (generations = { purges: 0, known: new Map(), flights: new SingleFlight() }))
    return generations
  }

  private key(state: EpochState, alias: string): string {
    return `${this.options.prefix}gen:${generationName(state.keys, alias)}`
  }
}

function scopeOf(state: EpochState, generation: Buffer): CacheScope {
  return { epoch: state.epoch, generation, keys: state.keys, stamp: `${state.epoch}.${generation.toString('base64url')}` }
}
