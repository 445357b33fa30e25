/** What the CLI's client commands (rewrap, keys retire) read from the environment. */

/** The bearer token of KEYWRAP_TOKEN, when set and not empty. */
export function tokenFromEnvironment(): string | undefined {
  const token = process.env.KEYWRAP_TOKEN?.trim()
  return token ? token : undefined
}
