/** Whether a URL's hostname names this machine: localhost, [::1] or 127.x.y.z (where http:// is allowed instead of https://). */
export function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname)
}
