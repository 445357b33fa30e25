/**
 * The configured keys: alias → provider. Keeps every provider's description fresh on a timer so that
 * requests read version states and the primary without calling the provider.
 */
import type { KeyDescription, KeyProvider } from './key-provider.js'
import type { Logger } from '../support/logger.js'

export interface ProviderStatus {
  readonly alias: string
  readonly uri: string
  readonly ready: boolean
  readonly refreshedAt: string | undefined
  /** Why the last refresh failed, for operators (logs and /readyz); never provider internals to callers. */
  readonly lastError: string | undefined
}

export class KeyRegistry {
  private readonly providers: ReadonlyMap<string, KeyProvider>
  private readonly failures = new Map<string, string>()
  private timer: NodeJS.Timeout | undefined

  constructor(providers: ReadonlyMap<string, KeyProvider>) {
    this.providers = providers
  }

  get(alias: string): KeyProvider | undefined {
    return this.providers.get(alias)
  }

  /** Whether the alias's provider has been read and its last refresh succeeded. */
  isReady(alias: string): boolean {
    const provider = this.providers.get(alias)
    return provider !== undefined && safeDescribe(provider) !== undefined && !this.failures.has(alias)
  }

  aliases(): string[] {
    return [...this.providers.keys()].sort()
  }

  /** Refreshes every provider; returns the aliases whose refresh failed. */
  async refreshAll(logger?: Logger): Promise<string[]> {
    const failed: string[] = []
    await Promise.all(
      [...this.providers].map(async ([alias, provider]) => {
        try {
          await provider.refresh()
          this.failures.delete(alias)
        } catch (error) {
          const reason = (error as Error).message
          this.failures.set(alias, reason)
          failed.push(alias)
          logger?.warn({ alias, uri: provider.uri, reason }, 'key metadata refresh failed')
        }
      }),
    )
    return failed
  }

  /** A real round trip through every provider; alias → whether it worked. Failures are logged. */
  async probeAll(logger?: Logger): Promise<Map<string, boolean>> {
    const results = new Map<string, boolean>()
    await Promise.all(
      [...this.providers].map(async ([alias, provider]) => {
        try {
          await provider.probe()
          results.set(alias, true)
        } catch (error) {
          results.set(alias, false)
          logger?.warn({ alias, uri: provider.uri, reason: (error as Error).message }, 'key provider probe failed')
        }
      }),
    )
    return results
  }

  startRefreshing(intervalSeconds: number, logger?: Logger): void {
    this.stopRefreshing()
    this.timer = setInterval(() => void this.refreshAll(logger), intervalSeconds * 1000)
    this.timer.unref()
  }

  stopRefreshing(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  status(): ProviderStatus[] {
    return this.aliases().map((alias) => {
      const provider = this.providers.get(alias)!
      const description = safeDescribe(provider)
      return {
        alias,
        uri: provider.uri,
        ready: this.isReady(alias),
        refreshedAt: description?.refreshedAt,
        lastError: this.failures.get(alias),
      }
    })
  }

  async close(): Promise<void> {
    this.stopRefreshing()
    await Promise.all([...this.providers.values()].map((provider) => provider.close()))
  }
}

function safeDescribe(provider: KeyProvider): KeyDescription | undefined {
  try {
    return provider.describe()
  } catch {
    return undefined
  }
}
