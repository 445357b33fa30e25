/**
 * Order among a provider's overlapping refreshes (a file watcher's, the registry's timer, a freshen):
 * a read that started earlier and finished later must not put back what a newer one replaced, such
 * as a version just disabled. The newest read started wins.
 */
export class RefreshOrder {
  private started = 0
  private applied = 0

  /** Call as a read starts; pass the answer to isNewest() when it finishes. */
  begin(): number {
    return ++this.started
  }

  /** Whether the read that began as `read` is newer than any applied so far; if so, it counts as applied. */
  isNewest(read: number): boolean {
    if (read <= this.applied) return false
    this.applied = read
    return true
  }
}
