/** Text cut to `max` characters, with a marker saying how many were left out; shorter text unchanged. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…[+${text.length - max} chars]`
}
