/** Chunks received and not yet used, taken from the front in sizes of the reader's choosing without copying more than once. */
export class ByteQueue {
  #chunks: Buffer[] = []
  #length = 0

  get length(): number {
    return this.#length
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#length += chunk.length
  }

  /** The first `count` bytes (fewer when fewer are queued), left in the queue. */
  peek(count: number): Buffer {
    const first = this.#chunks[0]
    if (first && first.length >= count) return first.subarray(0, count)
    return Buffer.concat(this.#chunks, Math.min(count, this.#length))
  }

  /** Removes and returns the first `count` bytes (all when fewer are queued). */
  take(count: number): Buffer {
    const size = Math.min(count, this.#length)
    const first = this.#chunks[0]
    let taken: Buffer
    if (first && first.length >= size) {
      taken = first.subarray(0, size)
      if (first.length === size) this.#chunks.shift()
      else this.#chunks[0] = first.subarray(size)
    } else {
      taken = Buffer.allocUnsafe(size)
      let filled = 0
      while (filled < size) {
        const chunk = this.#chunks[0]!
        const part = Math.min(chunk.length, size - filled)
        chunk.copy(taken, filled, 0, part)
        filled += part
        if (part === chunk.length) this.#chunks.shift()
        else this.#chunks[0] = chunk.subarray(part)
      }
    }
    this.#length -= size
    return taken
  }
}
