/**
 * The YAML parser, loaded on first use: the compiled server reads its contract from a JSON snapshot
 * and most deployments configure with JSON or the environment, so start-up need not load it (~45 ms).
 */
import { createRequire } from 'node:module'

type YamlModule = typeof import('yaml')

let yaml: YamlModule | undefined

export function parseYaml(text: string): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as YamlModule
  return yaml.parse(text)
}
