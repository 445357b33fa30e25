/** Draws how much of a file has been read so far, on a terminal. */
export interface Terminal {
  readonly columns?: number
  write(text: string): unknown
}

const REDRAW_EVERY_MS = 100

export class ProgressBar {
  #done = 0
  #drawnAt = -Infinity

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly terminal: Terminal,
    private readonly now: () => number = Date.now,
  ) {}

  /** `bytes` more are done; redrawn when the last drawing is 100 ms old. */
  advance(bytes: number): void {
    this.#done += bytes
    if (this.now() - this.#drawnAt >= REDRAW_EVERY_MS) this.#draw()
  }

  /** Draws the final state and ends the line. */
  end(): void {
    this.#draw()
    this.terminal.write('\n')
  }

  #draw(): void {
    this.#drawnAt = this.now()
    this.terminal.write(`\r${progressLine(this.label, this.#done, this.total, this.terminal.columns ?? 80)}`)
  }
}

/** `LABEL [#####.....]  45%  450.0/1000.0 MiB`, as wide as the terminal allows. */
export function progressLine(label: string, done: number, total: number, columns: number): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 1
  const figures = `${String(Math.floor(fraction * 100)).padStart(3)}%  ${mebibytes(done)}/${mebibytes(total)} MiB`
  const width = Math.max(10, Math.min(50, columns - label.length - figures.length - 6))
  const filled = Math.round(fraction * width)
  return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${figures}`
}

function mebibytes(bytes: number): string {
  return (bytes / 1048576).toFixed(1)
}
