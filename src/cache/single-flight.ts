/** Concurrent calls with the same key share one execution of the work. */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>()

  isRunning(key: string): boolean {
    return this.inFlight.has(key)
  }

  run(key: string, work: () => Promise<T>): Promise<T> {
    const existing = this.inFlight.get(key)
    if (existing) return existing
    const started = work().finally(() => this.inFlight.delete(key))
    this.inFlight.set(key, started)
    return started
  }
}
