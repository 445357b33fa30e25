/** Who is calling, as established by a verified token. */
export interface Principal {
  /** The name grants match: the token's `sub` (or a verified email, for issuers that vouch for one). */
  readonly id: string
  readonly issuer: string
  /**
   * The token's string claims that grants compare context values with (`{"claim": NAME}`), and no
   * others; absent when no grant names a claim.
   */
  readonly claims?: Readonly<Record<string, string>>
}
