/**
 * The YAML parser, loaded on first use: only a YAML configuration file, or a contract without its
 * parsed snapshot (openapi-contract.ts), needs it, so the `keywrap` command starts without it. (The
 * server loads it all the same, with @fastify/swagger.)
 */
import { createRequire } from 'node:module'

type YamlModule = typeof import('yaml')

let yaml: YamlModule | undefined

export function parseYaml(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as YamlModule
  return yaml.parse(text)
}
