/** Every `keywrap` command, in the order `keywrap help` lists them. */
import { auditVerifyCommand } from './audit-verify.js'
import type { Command } from './command.js'
import { kmsPluginCommand } from './kms-plugin.js'
import { keysDisableCommand, keysEnableCommand, keysListCommand, keysRotateCommand } from './keys.js'
import { tokenCommand } from './token.js'

export const COMMANDS: readonly Command[] = [
  tokenCommand,
  keysListCommand,
  keysRotateCommand,
  keysDisableCommand,
  keysEnableCommand,
  auditVerifyCommand,
  kmsPluginCommand,
]
