// The version, read from package.json: src/version.ts (tsx) and dist/version.js (node, the image)
// both sit one directory below it. One source for --version, the --help banner and /_proxy/status.
import { readFileSync } from 'node:fs'

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
