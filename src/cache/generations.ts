/**
 * Each alias's generation in an epoch (`<prefix>gen:<mac>`, TTL two epochs): entry names mix in its
 * random token, and a purge replaces it, so that no instance finds the old entries once it has
 * re-read the generation. Read (or created, SET NX GET) at most once per `memoMs`; while Redis cannot
 * be reached, the last reading serves for `graceMs`.
 *
 * Purges stay purged. A record carries a counter that only moves forward (by a purge, or by the
 * replacement of a refused record, below), and is MAC'd under the epoch's keys (cache-crypto), so
 * whoever writes Redis without the epoch secret can neither forge one nor move one to another alias. Each instance remembers the highest counter it has seen
 * per alias and epoch, and refuses a record with a lower one (an old generation put back to make
 * purged entries hits again) or with a bad MAC: it logs once and replaces the record with a new
 * generation above every counter it knows, as a purge would. So the first instance that saw the
 * purge ends the rollback for the fleet, and never by putting back a token of its own that a purge
 * it has not seen yet may have replaced; the entries cached since the last purge are lost, which is
 * the price. An instance that has seen no newer record (one started after the rollback) cannot tell.
 *
 * A purge writes with a compare-and-set (a Lua script: replace the value only if it is still the one
 * read): two concurrent purges cannot both build on the same counter, and the one that loses reads
 * again. The counter goes inside the MAC'd record, so Redis needs no second key to keep it.
 */
import type { Metrics } from '../metrics/metrics.js'
import type { Logger } from '../support/logger.js'
import { generationName, newGeneration, openGenerationRecord, sealGenerationRecord, type EpochKeys, type GenerationRecord } from './cache-crypto.js'
import type { EpochState } from './epoch-secrets.js'
import type { GuardedRedis, Outcome } from './guarded-redis.js'
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

interface KnownGeneration {
  readonly scope: CacheScope
  readonly confirmedAt: number
  /** The highest counter this instance has seen for the alias in this epoch. */
  readonly counter: number
}

interface EpochGenerations {
  /** Bumped by each purge here, so that a read that started before it is not kept. */
  purges: number
  readonly known: Map<string, KnownGeneration>
  /** Aliases whose refused record has been logged in this epoch: one line each, not one per read. */
  readonly refusalsLogged: Set<string>
  readonly flights: SingleFlight<ScopeResult | undefined>
}

export interface GenerationsOptions {
  readonly prefix: string
  readonly memoMs: number
  readonly graceMs: number
  readonly recordTtlMs: number
  readonly now: () => number
  readonly logger?: Logger
  readonly metrics?: Metrics
}

/** Replaces the value only if it is still the one read ('' for none): a purge never builds on a counter another purge moved. */
const COMPARE_AND_SET = `local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`

/** A purge whose compare-and-set keeps losing to others gives up (and reports failure) after this many reads. */
const PURGE_ATTEMPTS = 10

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
      const key = this.key(state, alias)
      const candidate = sealGenerationRecord(state.keys, key, { counter: (known?.counter ?? 0) + 1, token: newGeneration() })
      const read = await this.redis.run('generation', (redis) => redis.setBuffer(key, candidate, 'PX', this.options.recordTtlMs, 'NX', 'GET'))
      const current = generations.known.get(alias)
      if (!read.ok) return current && started - current.confirmedAt < this.options.graceMs ? { scope: current.scope, online: false } : undefined
      // A purge here while the read was on its way has already put the newer generation in the memo.
      if (generations.purges !== purges && current) return { scope: current.scope, online: true }
      const stored = Buffer.isBuffer(read.value) ? read.value : candidate
      const opened = openGenerationRecord(state.keys, key, stored)
      if (opened && opened.counter >= (current?.counter ?? 0)) return { scope: this.remember(state, alias, opened, started), online: true }

      this.refused(state, alias, opened ? `counter ${opened.counter}, lower than ${current?.counter} seen before` : 'not sealed with the epoch’s keys')
      const { swapped, next } = await this.advance('generation', state, alias, key, stored, opened)
      if (!swapped.ok || !swapped.value || generations.purges !== purges) return undefined
      return { scope: this.remember(state, alias, next, started), online: true }
    })
  }

  /** Replaces the alias's generation in this epoch with the next counter; false when Redis could not be written. `now`: when the purge began. */
  async replace(state: EpochState, alias: string, now: number): Promise<boolean> {
    const key = this.key(state, alias)
    const generations = this.of(state)
    for (let attempt = 0; attempt < PURGE_ATTEMPTS; attempt++) {
      const read = await this.redis.run('purge', (redis) => redis.getBuffer(key))
      if (!read.ok) return false
      const stored = read.value ?? undefined
      const opened = stored && openGenerationRecord(state.keys, key, stored)
      const { swapped, next } = await this.advance('purge', state, alias, key, stored, opened)
      if (!swapped.ok) return false
      if (!swapped.value) continue
      generations.purges++
      generations.known.set(alias, { scope: scopeOf(state, next.token), confirmedAt: now, counter: next.counter })
      return true
    }
    return false
  }

  /**
   * Writes a new generation whose counter is past both the record read (`opened`) and the highest this
   * instance has seen, if Redis still holds `stored`: swapped.value false when another write came first.
   */
  private async advance(
    operation: string,
    state: EpochState,
    alias: string,
    key: string,
    stored: Buffer | undefined,
    opened: GenerationRecord | undefined,
  ): Promise<{ swapped: Outcome<boolean>; next: GenerationRecord }> {
    const next = { counter: Math.max(opened?.counter ?? 0, this.of(state).known.get(alias)?.counter ?? 0) + 1, token: newGeneration() }
    return { swapped: await this.compareAndSet(operation, key, stored, sealGenerationRecord(state.keys, key, next)), next }
  }

  private remember(state: EpochState, alias: string, opened: GenerationRecord, confirmedAt: number): CacheScope {
    const generations = this.of(state)
    const current = generations.known.get(alias)
    const scope = current?.scope.generation.equals(opened.token) ? current.scope : scopeOf(state, opened.token)
    generations.known.set(alias, { scope, confirmedAt, counter: opened.counter })
    return scope
  }

  private refused(state: EpochState, alias: string, why: string): void {
    this.options.metrics?.redisErrors.inc({ operation: 'generation_refused' })
    const logged = this.of(state).refusalsLogged
    if (logged.has(alias)) return
    logged.add(alias)
    this.options.logger?.warn(
      { alias, epoch: state.epoch, why },
      'The shared cache (Redis) holds a generation record of this alias that keywrap refuses: an old one put back (which would undo a purge) or one not written by keywrap. It is replaced by a new generation, as a purge would do. Check who can write to Redis.',
    )
  }

  private compareAndSet(operation: string, key: string, expected: Buffer | undefined, next: Buffer): Promise<Outcome<boolean>> {
    return this.redis.run(operation, async (redis) => (await redis.eval(COMPARE_AND_SET, 1, key, expected ?? '', next, String(this.options.recordTtlMs))) === 1)
  }

  private of(state: EpochState): EpochGenerations {
    let generations = this.epochs.get(state)
    if (!generations) this.epochs.set(state, (generations = { purges: 0, known: new Map(), refusalsLogged: new Set(), flights: new SingleFlight() }))
    return generations
  }

  private key(state: EpochState, alias: string): string {
    return `${this.options.prefix}gen:${generationName(state.keys, alias)}`
  }
}

function scopeOf(state: EpochState, generation: Buffer): CacheScope {
  return { epoch: state.epoch, generation, keys: state.keys, stamp: `${state.epoch}.${generation.toString('base64url')}` }
}
