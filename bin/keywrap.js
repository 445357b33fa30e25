#!/usr/bin/env node
// The command-line tool (`npx keywrap …`); runs the TypeScript sources through tsx.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli/main.ts')
