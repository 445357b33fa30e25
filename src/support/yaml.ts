/**
 * The YAML parser, loaded on first use: only a YAML configuration file, or a contract without its
 * parsed snapshot (openapi-contract.ts), needs it, so the `keywrap` command and the compiled server
 * start without it.
 */
import { createRequire } from 'node:module'

type YamlModule = typeof import('yaml')

let yaml: YamlModule | undefined

export function parseYaml(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as YamlModule
  return yaml.parse(text)
}
