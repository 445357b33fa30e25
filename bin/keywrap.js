#!/usr/bin/env node
// The command-line tool (`npx keywrap …`): the TypeScript sources through tsx in a checkout, or the
// compiled CLI in the container image, which ships without dev dependencies.
let tsx
try {
  tsx = await import('tsx/esm/api')
} catch {
  tsx = undefined
}
if (tsx) {
  tsx.register()
  await import('../src/cli/main.ts')
} else {
  await import('../dist/src/cli/main.js')
}
