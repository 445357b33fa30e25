/**
 * The signature algorithms a token may use: asymmetric ones only (RFC 8725 §3.1). `none` and the HMAC
 * family are never accepted: with HS256 the issuer's public key would become a shared secret.
 */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'] as const

export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number]

export function isAsymmetricAlgorithm(value: unknown): value is AsymmetricAlgorithm {
  return typeof value === 'string' && (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(value)
}

/** The algorithms a public key of this type and curve can verify (node:crypto's asymmetricKeyType). */
export function algorithmsForKeyType(keyType: string | undefined, curve?: string): readonly AsymmetricAlgorithm[] {
  switch (keyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512']
    case 'ec':
      if (curve === 'prime256v1' || curve === 'P-256') return ['ES256']
      if (curve === 'secp384r1' || curve === 'P-384') return ['ES384']
      return []
    case 'ed25519':
      return ['EdDSA']
    default:
      return []
  }
}
