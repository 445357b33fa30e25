/** What the CLI's client commands (encrypt, decrypt, rewrap, keys retire) read from the environment when no option says otherwise. */
export interface ClientEnvironment {
  /** KEYWRAP_URL: the service's address. */
  readonly url: string | undefined
  /** KEYWRAP_TOKEN: a bearer token (safer than --token, which other users can see in the process list). */
  readonly token: string | undefined
}

export function clientEnvironment(env: NodeJS.ProcessEnv = process.env): ClientEnvironment {
  return { url: env.KEYWRAP_URL?.trim() || undefined, token: env.KEYWRAP_TOKEN?.trim() || undefined }
}
