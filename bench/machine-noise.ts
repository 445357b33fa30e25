/**
 * How steadily this machine runs a process: a 1 ms timer in the otherwise idle bench process, counting
 * the wake-ups that came more than 5 ms late. A stall of the server delays every request in flight by
 * as much, so stalls like these set a floor under any p99 measured here.
 */
export async function timerStalls(seconds: number): Promise<{ over5Ms: number; longestMs: number }> {
  let over5Ms = 0
  let longestMs = 0
  let previous = performance.now()
  const end = previous + seconds * 1000
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now()
      const late = now - previous - 1
      if (late > 5) over5Ms++
      longestMs = Math.max(longestMs, late)
      previous = now
      if (now >= end) {
        clearInterval(timer)
        resolve()
      }
    }, 1)
  })
  return { over5Ms, longestMs: Math.round(longestMs) }
}
