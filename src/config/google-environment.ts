/**
 * Google's client libraries probe the GCE metadata server to find a project id or credentials. Off
 * Google Cloud that probe times out and prints MetadataLookupWarning, so unless the operator chose a
 * mode, keywrap says "none" off Cloud Run and "assume-present" on it (K_SERVICE is set there), where
 * Application Default Credentials come from the metadata server without probing first.
 */
export function settleMetadataServerDetection(env: NodeJS.ProcessEnv = process.env): void {
  if (env.METADATA_SERVER_DETECTION) return
  env.METADATA_SERVER_DETECTION = env.K_SERVICE ? 'assume-present' : 'none'
}

/** host[:port] of the GCE metadata server: GCE_METADATA_HOST when set (as Google's libraries read it). */
export function metadataServerHost(env: NodeJS.ProcessEnv = process.env): string {
  return env.GCE_METADATA_HOST || 'metadata.google.internal'
}
