/**
 * Every step of cloudbuild.yaml and every instruction of the Dockerfile has what it runs: the programs
 * (from a table of the images used and what each has; an image not in the table fails) and the files
 * (a Dockerfile RUN or CMD uses only what the stage copied or built). `npm test` runs every program the
 * tests spawn and the README walkthrough's commands, so those are read from the sources.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse } from 'yaml'
import { REPO_ROOT } from '../support/processes.js'

const read = (name: string) => readFile(join(REPO_ROOT, name), 'utf8')

/** Debian's essential utilities: in every Debian-based image, slim ones included. */
const DEBIAN_BASE = [
  'bash',
  'sh',
  'cp',
  'mv',
  'rm',
  'mkdir',
  'cat',
  'find',
  'xargs',
  'grep',
  'sed',
  'tar',
  'gzip',
  'sleep',
  'env',
  'mktemp',
  'head',
  'tail',
  'tr',
  'sort',
  'seq',
  'date',
  'ls',
  'touch',
  'chmod',
  'wc',
  'cut',
  'dirname',
  'basename',
  'apt-get',
  'dpkg',
  'test',
  'true',
]

/** Images the pipeline may use, each with the programs it has and the entrypoint it runs by default. */
const IMAGES: Readonly<Record<string, { readonly tools: readonly string[]; readonly entrypoint?: string }>> = {
  // The official Node images' slim variant: Node, npm and Debian's base, without curl, git, openssl or ps.
  'node:24-slim': { tools: [...DEBIAN_BASE, 'node', 'npm', 'npx', 'corepack'], entrypoint: 'node' },
  'node:22-slim': { tools: [...DEBIAN_BASE, 'node', 'npm', 'npx', 'corepack'], entrypoint: 'node' },
  'gcr.io/cloud-builders/docker': { tools: [...DEBIAN_BASE, 'docker'], entrypoint: 'docker' },
  'gcr.io/google.com/cloudsdktool/cloud-sdk:slim': { tools: [...DEBIAN_BASE, 'gcloud', 'gsutil', 'curl', 'python3', 'git'], entrypoint: 'bash' },
}

/** Debian packages a step may install, and the programs each brings. */
const DEBIAN_PACKAGES: Readonly<Record<string, readonly string[]>> = {
  'redis-server': ['redis-server', 'redis-cli'],
  curl: ['curl'],
  'ca-certificates': [],
  openssl: ['openssl'],
  chromium: ['chromium'],
}

/** Shell words that are not programs. */
const SHELL_BUILTINS = new Set([
  'export',
  'echo',
  'cd',
  'set',
  'source',
  '.',
  'exit',
  'read',
  'printf',
  'local',
  'return',
  'if',
  'then',
  'fi',
  'for',
  'do',
  'done',
  'while',
  'wait',
  'kill',
  'trap',
  'unset',
  'shift',
  ':',
  'break',
  'continue',
  'until',
  'else',
  'elif',
  'case',
  'esac',
  'in',
  'jobs',
  'true',
  'false',
])

function imageOf(name: string) {
  const image = IMAGES[name]
  assert.ok(image, `${name}: not in the table of known images; add it with the programs it has`)
  return image
}

/** The programs a shell script runs: the first word of each simple command, minus builtins and its own functions. */
function programsOf(script: string): string[] {
  const functions = new Set([...script.matchAll(/^\s*([A-Za-z_][\w-]*)\(\)\s*\{/gm)].map((match) => match[1]!))
  const withoutComments = script
    .replace(/(^|\s)#.*$/gm, '$1')
    .replace(/'[^']*'/g, "''")
    .replace(/\\\n/g, ' ')
  const programs = new Set<string>()
  for (const command of withoutComments.split(/\n|&&|\|\||;|\||\$\(|`|&(?!>)|\{|\}/)) {
    const words = command
      .trim()
      .split(/\s+/)
      .filter((word) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(word) && !/^[<>]|^\d?>/.test(word))
    const first = words[0]?.replace(/^["(]+|[")]+$/g, '')
    if (!first || first.startsWith('$') || first.startsWith('-') || SHELL_BUILTINS.has(first) || functions.has(first)) continue
    if (/^[a-z][\w.+-]*$|^\/[\w/.-]+$/.test(first)) programs.add(first)
  }
  return [...programs]
}

/** Packages named by `apt-get install` in a script. */
function installedBy(script: string): string[] {
  return [...script.matchAll(/apt-get install ([^&;|>]+)/g)].flatMap((match) => match[1]!.split(/\s+/).filter((word) => word && !word.startsWith('-')))
}

/** Programs `npm test` runs: what the tests spawn, and the README walkthrough blocks they run. */
async function programsTheTestsRun(): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  const files = (await readdir(join(REPO_ROOT, 'test'), { recursive: true })).filter((name) => name.endsWith('.ts'))
  for (const file of files) {
    const source = await read(join('test', file))
    const patterns = [
      /(?<![.\w])(?:spawn|spawnSync|execFile|execFileSync|execFileAsync)\(\s*'([^']+)'/g,
      /\bcommand: \[\s*'([^']+)'/g,
      /'\/usr\/bin\/([a-z][\w-]*)'/g,
    ]
    for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.set(match[1]!, `test/${file}`)
  }
  const readme = await read('README.md')
  const readmeTest = await read('test/readme.test.ts')
  for (const [, name, block] of readme.matchAll(/<!-- ([\w-]+):start -->\n```sh\n([\s\S]*?)```/g)) {
    // The blocks test/readme.test.ts runs, named by their markers.
    if (!readmeTest.includes(`shellBlock('${name}')`) && !readmeTest.includes(`<!-- ${name}:start -->`)) continue
    for (const program of programsOf(block!)) found.set(program, `README.md ${name}`)
  }
  return found
}

interface Step {
  id: string
  name: string
  entrypoint?: string
  args?: string[]
}

/** The scripts of package.json, expanded: `npm run X` and `npm test` stand for what X runs. */
async function npmScripts(): Promise<Record<string, string>> {
  return (JSON.parse(await read('package.json')) as { scripts: Record<string, string> }).scripts
}

/** Programs an npm command runs, through its scripts; programs installed by `npm ci` (node_modules/.bin) are not counted. */
async function programsOfNpm(args: readonly string[]): Promise<string[]> {
  const scripts = await npmScripts()
  const name = args[0] === 'run' ? args[1] : args[0] === 'test' || args[0] === 'start' ? args[0] : undefined
  if (name === undefined) return []
  const script = scripts[name]
  assert.ok(script !== undefined, `npm ${args.join(' ')}: package.json has no script ${name}`)
  const bin = new Set(await readdir(join(REPO_ROOT, 'node_modules/.bin')))
  const programs = programsOf(script.replace(/^exec /, '')).filter((program) => !bin.has(program))
  for (const nested of script.matchAll(/npm run ([\w:-]+)/g)) programs.push(...(await programsOfNpm(['run', nested[1]!])))
  return programs.filter((program) => program !== 'npm')
}

test('cloudbuild.yaml: every step runs only programs its image has or the step installs', async () => {
  const pipeline = parse(await read('cloudbuild.yaml')) as { steps: Step[] }
  const testPrograms = await programsTheTestsRun()
  assert.ok(testPrograms.has('curl'), 'the README walkthrough runs curl: the scan of the tests should have found it')
  for (const step of pipeline.steps) {
    const image = imageOf(step.name)
    const available = new Set(image.tools)
    const entrypoint = step.entrypoint ?? image.entrypoint!
    assert.ok(available.has(entrypoint), `${step.id}: ${step.name} has no ${entrypoint}`)
    const args = step.args ?? []
    const script = ['bash', 'sh'].includes(entrypoint) && args[0] === '-c' ? args[1]! : undefined
    for (const pkg of script ? installedBy(script) : []) {
      assert.ok(DEBIAN_PACKAGES[pkg], `${step.id}: installs ${pkg}, which is not in the table of Debian packages`)
      for (const tool of DEBIAN_PACKAGES[pkg]!) available.add(tool)
    }
    const needed = new Map<string, string>()
    const npmCommands = script
      ? [...script.matchAll(/(?:^|&&|;)\s*npm ([\w:-]+(?: [\w:-]+)?)/g)].map((match) => match[1]!.split(' '))
      : entrypoint === 'npm'
        ? [args]
        : []
    for (const program of script ? programsOf(script) : []) needed.set(program, 'the step itself')
    for (const npmArgs of npmCommands) {
      for (const program of await programsOfNpm(npmArgs)) needed.set(program, `npm ${npmArgs.join(' ')}`)
      if (npmArgs[0] === 'test') for (const [program, where] of testPrograms) needed.set(program, `npm test (${where})`)
    }
    for (const [program, why] of needed) {
      const name = program.startsWith('/usr/bin/') ? program.slice('/usr/bin/'.length) : program
      assert.ok(available.has(name), `${step.id}: ${why} runs ${name}, which ${step.name} does not have and the step does not install`)
    }
  }
})

test('cloudbuild.yaml: the test step makes the Chromium test run, not skip', async () => {
  const pipeline = parse(await read('cloudbuild.yaml')) as { steps: (Step & { env?: string[] })[] }
  const step = pipeline.steps.find((s) => s.id === 'test')!
  assert.ok(step.env?.includes('CI=true'))
})

interface Stage {
  readonly image: string
  readonly name: string | undefined
  readonly files: Set<string>
}

test('Dockerfile: every COPY source exists and is not ignored; every RUN and the CMD have their programs and files', async () => {
  const dockerfile = (await read('Dockerfile')).replace(/\\\n/g, ' ')
  const ignored = (await read('.dockerignore')).split('\n').filter(Boolean)
  const scripts = await npmScripts()
  const tsconfigBuild = JSON.parse(await read('tsconfig.build.json')) as { extends?: string; include: string[] }
  /** What `npm run build` reads: its tsconfig (and the one it extends), the folders it compiles, and the files its script names. */
  const buildInputs = [
    'tsconfig.build.json',
    ...(tsconfigBuild.extends ? [tsconfigBuild.extends.replace(/^\.\//, '')] : []),
    ...tsconfigBuild.include,
    ...[...scripts.build!.matchAll(/(?:^|\s)([\w.-]+\.(?:yaml|json))(?=\s|$)/g)].map((match) => match[1]!).filter((file) => existsSync(join(REPO_ROOT, file))),
  ]
  const needs: Readonly<Record<string, { files: string[]; makes: string[] }>> = {
    'npm ci': { files: ['package.json', 'package-lock.json'], makes: ['node_modules'] },
    'npm run build': { files: [...buildInputs, 'node_modules'], makes: ['dist'] },
    'npm prune --omit=dev': { files: ['package.json', 'package-lock.json', 'node_modules'], makes: [] },
  }
  const stages: Stage[] = []
  for (const line of dockerfile.split('\n').map((l) => l.trim())) {
    const [instruction, ...rest] = line.split(/\s+/)
    if (instruction === 'FROM') {
      stages.push({ image: rest[0]!, name: rest[1] === 'AS' ? rest[2] : undefined, files: new Set() })
      imageOf(rest[0]!)
      continue
    }
    const stage = stages.at(-1)
    if (!stage) continue
    if (instruction === 'COPY') {
      const from = rest.find((word) => word.startsWith('--from='))?.slice('--from='.length)
      const paths = rest.filter((word) => !word.startsWith('--'))
      const sources = paths.slice(0, -1)
      for (const source of sources) {
        const path = source.replace(/^\/app\//, '').replace(/\/$/, '')
        if (from) {
          const origin = stages.find((s) => s.name === from)
          assert.ok(origin, `COPY --from=${from}: no such stage`)
          assert.ok(origin.files.has(path), `COPY --from=${from} ${source}: that stage neither copied nor built ${path}`)
        } else {
          assert.ok(existsSync(join(REPO_ROOT, path)), `COPY ${source}: not in the repository`)
          assert.ok(!ignored.includes(path), `COPY ${source}: excluded by .dockerignore`)
        }
        stage.files.add(path)
        if (from === undefined && path === 'src') stage.files.add('src')
      }
    } else if (instruction === 'RUN') {
      for (const command of rest
        .join(' ')
        .split('&&')
        .map((c) => c.trim())) {
        const program = command.split(' ')[0]!
        assert.ok(imageOf(stage.image).tools.includes(program), `RUN ${command}: ${stage.image} has no ${program}`)
        const need = needs[command.replace(/ --no-(audit|fund)\b/g, '')]
        assert.ok(need, `RUN ${command}: this test does not know what it needs; add it to the table`)
        for (const file of need.files) assert.ok(stage.files.has(file), `RUN ${command}: the stage has not copied ${file} before it`)
        for (const made of need.makes) stage.files.add(made)
      }
    } else if (instruction === 'CMD') {
      const command = JSON.parse(rest.join(' ')) as string[]
      assert.ok(imageOf(stage.image).tools.includes(command[0]!), `CMD: ${stage.image} has no ${command[0]}`)
      const entry = command[1]!
      assert.ok(stage.files.has(entry.split('/')[0]!), `CMD ${command.join(' ')}: the image does not copy ${entry}`)
      // What the compiled server and CLI read at run time besides their code: package.json (version) and the dependencies.
      for (const file of ['package.json', 'node_modules', 'bin']) assert.ok(stage.files.has(file), `the image does not copy ${file}`)
    }
  }
  assert.ok(stages.length >= 2)
})

test('the checks above fail on what they are for: a step with curl on node:24-slim, an unknown image, a file the image lacks', () => {
  assert.deepEqual(programsOf('apt-get update -qq && apt-get install -y curl && npm test'), ['apt-get', 'npm'])
  assert.deepEqual(programsOf('json() { node -e "x"; }\nGEN=$(curl -s "$KW" | json a)\nexport T=$(npx keywrap token)'), ['node', 'curl', 'npx'])
  assert.ok(!imageOf('node:24-slim').tools.includes('curl'))
  assert.throws(() => imageOf('node:latest'), /not in the table of known images/)
  assert.deepEqual(installedBy('apt-get install -y -qq redis-server curl >/dev/null && npm test'), ['redis-server', 'curl'])
})
